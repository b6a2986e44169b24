"""Every execution is bounded: the state machine's overall timeout covers the longest drill the spec accepts, and
not much more (docs/architecture.md §9)."""

from __future__ import annotations

import json

from livefire.spec import MAX_APPROVAL_S
from livefire.spec.limits import MAX_OBSERVE_S
from tests.conftest import ROOT

LONGEST_BASELINE_S = 15 * 60  # spec/sections.py: phases.baseline is at most 15m
STEP_ALLOWANCE_S = 30 * 60  # Plan, steadiness, Assess, Evidence and their retries, with room to spare


def _timeout() -> int:
    definition = json.loads((ROOT / "statemachines" / "drill.asl.json").read_text())
    return int(definition["TimeoutSeconds"])


def test_the_state_machine_outlives_the_longest_drill_the_spec_accepts() -> None:
    assert _timeout() >= LONGEST_BASELINE_S + MAX_APPROVAL_S + MAX_OBSERVE_S + STEP_ALLOWANCE_S


def test_the_state_machine_timeout_is_bounded_to_a_few_hours_past_the_longest_drill() -> None:
    assert _timeout() <= LONGEST_BASELINE_S + MAX_OBSERVE_S + 3 * 3600
