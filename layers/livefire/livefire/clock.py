"""The one wall clock of the runtime: UTC epoch milliseconds, as every record, sample and bracket stores them."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Now, in integer UTC epoch milliseconds."""
    return time.time_ns() // 1_000_000
