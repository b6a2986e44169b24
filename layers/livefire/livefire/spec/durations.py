"""Durations as users write them: ``250ms``, ``30s``, ``2m``, ``1h`` (or a number of seconds)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# A Lambda step runs at most 120 s (the state machine's task timeout): every wait of a step stays well inside.
MAX_STEP_WAIT_S = 90.0


def parse_duration(value: Any) -> float:
    """Turn ``250ms`` / ``30s`` / ``2m`` / ``1h`` (or a number of seconds) into seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 250ms, 30s or 2m")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"must be a non-negative duration like 250ms, 30s or 2m (got {value!r})")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"must be a duration like 250ms, 30s or 2m (got {type(value).__name__})")
    if seconds < 0:
        raise ValueError(f"must not be negative (got {value!r})")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    if seconds < 1 or not float(seconds).is_integer():
        return f"{round(seconds * 1000)}ms"
    return f"{int(seconds)}s"


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be greater than zero")
    return seconds


def _step_wait(seconds: float) -> float:
    if seconds > MAX_STEP_WAIT_S:
        raise ValueError(f"must be at most {format_duration(MAX_STEP_WAIT_S)} (one step's time limit)")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
PositiveDuration = Annotated[
    float, BeforeValidator(lambda v: _positive(parse_duration(v))), PlainSerializer(format_duration)
]
StepWait = Annotated[PositiveDuration, AfterValidator(_step_wait)]
