"""``parse_spec``: a spec document (already parsed from YAML or JSON) to a ``DrillSpec``, or ``InvalidDrillSpec``.

It is the single entry point of validation: it raises ``InvalidDrillSpec`` with one line per problem, each
naming its field path (``fault.abort.percent: ...``), and never lets another exception escape.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from livefire.errors import InvalidDrillSpec
from livefire.spec.drill import DrillSpec


def _path_part(part: Any) -> str:
    text = str(part)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else repr(text)


def _describe(error: Any) -> str:
    path = ".".join(_path_part(part) for part in error["loc"]) or "(spec)"
    message = " ".join(str(error["msg"]).split())
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return f"{path}: {message}"


def parse_spec(document: Any) -> DrillSpec:
    """Validate a spec document (already parsed from YAML/JSON); raise InvalidDrillSpec on any problem."""
    if not isinstance(document, dict):
        raise InvalidDrillSpec(f"(spec): must be a mapping, got {type(document).__name__}")
    try:
        return DrillSpec.model_validate(document)
    except ValidationError as exc:
        raise InvalidDrillSpec("; ".join(_describe(e) for e in exc.errors())) from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidDrillSpec(f"(spec): {exc}") from None
