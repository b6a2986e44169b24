"""Durations as users write them: ``250ms``, ``30s``, ``2m``, ``1h`` (or a number of seconds).

Every duration field has a minimum, a maximum and a resolution (``bounded``): a value outside the bounds, or
finer than the field can act on (``1ms`` where the field counts whole seconds), is an error, never rounded.
Values are read exactly (decimal milliseconds), so ``0.3s`` is 300 ms, not a float just below it.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_DURATION = re.compile(r"^\s*(\d{1,15}(?:\.\d{1,9})?)\s*(ms|s|m|h)\s*$")
_TOO_LARGE_S = 10**15  # the most digits a duration string may have, as a number of seconds
_UNIT_MS = {"ms": Decimal(1), "s": Decimal(1000), "m": Decimal(60_000), "h": Decimal(3_600_000)}
# A Lambda step runs at most 120 s (the state machine's task timeout): every wait of a step stays well inside.
MAX_STEP_WAIT_S = 90.0
MS = 0.001
SECOND = 1.0
MINUTE = 60.0
HOUR = 3600.0
DAY = 24 * HOUR


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _milliseconds(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("must be a duration like 250ms, 30s or 2m")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"must be a finite duration (got {value})")
        if abs(value) >= _TOO_LARGE_S:
            raise ValueError(f"is far too large for a duration (got {_shown(value)})")
        try:
            return Decimal(str(value)) * 1000
        except InvalidOperation:
            raise ValueError(f"must be a duration like 250ms, 30s or 2m (got {_shown(value)})") from None
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"must be a non-negative duration like 250ms, 30s or 2m (got {_shown(value)})")
        return Decimal(match.group(1)) * _UNIT_MS[match.group(2)]
    raise ValueError(f"must be a duration like 250ms, 30s or 2m (got {type(value).__name__})")


def parse_duration(value: Any) -> float:
    """Turn ``250ms`` / ``30s`` / ``2m`` / ``1h`` (or a number of seconds) into seconds."""
    milliseconds = _milliseconds(value)
    if milliseconds < 0:
        raise ValueError(f"must not be negative (got {_shown(value)})")
    return float(milliseconds / 1000)


def format_duration(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    if seconds < 1 or not float(seconds).is_integer():
        return f"{round(seconds * 1000)}ms"
    return f"{int(seconds)}s"


def _human(seconds: float) -> str:
    """A limit in words: ``1h``, ``15m``, ``90s``, ``10ms``."""
    for unit, size in (("h", HOUR), ("m", MINUTE)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return format_duration(seconds)


def bounded(minimum: float, maximum: float, resolution: float = MS, *, exclusive_minimum: bool = False,
            why_maximum: str = "") -> BeforeValidator:
    """The validator of one duration field (``Annotated[float, bounded(...), AS_DURATION]``): at least ``minimum``
    (above it when ``exclusive_minimum``), at most ``maximum`` (``why_maximum`` says why, in the error), and a
    whole multiple of ``resolution`` (all in seconds)."""
    step_ms = Decimal(str(resolution)) * 1000

    def check(value: Any) -> float:
        milliseconds = _milliseconds(value)
        if milliseconds < 0:
            raise ValueError(f"must not be negative (got {_shown(value)})")
        seconds = float(milliseconds / 1000)
        if seconds > maximum:
            why = f", {why_maximum}" if why_maximum else ""
            raise ValueError(f"must be at most {_human(maximum)}{why} (got {_shown(value)})")
        if milliseconds % step_ms:
            unit = "a whole number of seconds" if resolution == SECOND else f"a multiple of {_human(resolution)}"
            raise ValueError(f"must be {unit}: {_human(resolution)} is this field's resolution (got {_shown(value)})")
        if seconds < minimum or (exclusive_minimum and seconds == minimum):
            relation = "greater than" if exclusive_minimum else "at least"
            raise ValueError(f"must be {relation} {_human(minimum)} (got {_shown(value)})")
        return seconds

    return BeforeValidator(check)


AS_DURATION = PlainSerializer(format_duration)


# The general-purpose durations (the spec's sections use ``bounded`` for their own limits).
Duration = Annotated[float, bounded(0.0, HOUR), AS_DURATION]
PositiveDuration = Annotated[float, bounded(0.0, HOUR, exclusive_minimum=True), AS_DURATION]
# A wait inside one step (an FIS experiment starting, a webhook answering).
StepWait = Annotated[float, bounded(100 * MS, MAX_STEP_WAIT_S, why_maximum="one step's time limit"), AS_DURATION]
