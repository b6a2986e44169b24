"""The execution input that carries a drill: ``{"spec": {...}}`` (console, schedules, ``livefire run`` and
``livefire start``) or the spec document itself, plus ``anchorAt`` for an external drill."""

from __future__ import annotations

from typing import Any

from livefire.errors import InvalidDrillSpec
from livefire.spec.document import parse_spec
from livefire.spec.drill import DrillSpec

# An anchorAt before 2001-09-09 is surely seconds (or nonsense), not epoch milliseconds.
EARLIEST_ANCHOR_MS = 1_000_000_000_000


def spec_document(execution_input: dict[str, Any]) -> Any:
    """The spec document of an execution input; InvalidDrillSpec when there is none."""
    if "spec" in execution_input:
        return execution_input["spec"]
    if "apiVersion" in execution_input:
        return execution_input
    raise InvalidDrillSpec('spec: missing (start the execution with {"spec": {...drill spec...}})')


def anchor_at(execution_input: dict[str, Any], spec: DrillSpec) -> int | None:
    """``anchorAt`` (epoch ms) of the execution input: when an observed incident began, for external drills."""
    if "anchorAt" not in execution_input:
        return None
    value = execution_input["anchorAt"]
    if spec.fault.kind != "external":
        raise InvalidDrillSpec(f"anchorAt: only valid with fault kind external (this drill injects {spec.fault.kind} "
                               "and measures from its own injection)")
    if isinstance(value, bool) or not isinstance(value, int) or value < EARLIEST_ANCHOR_MS:
        raise InvalidDrillSpec(f"anchorAt: must be an epoch time in milliseconds (got {str(value)[:40]!r})")
    return value


def parse_execution_input(execution_input: dict[str, Any]) -> tuple[DrillSpec, int | None]:
    """The drill an execution input starts and its anchorAt; InvalidDrillSpec naming the field otherwise."""
    spec = parse_spec(spec_document(execution_input))
    return spec, anchor_at(execution_input, spec)
