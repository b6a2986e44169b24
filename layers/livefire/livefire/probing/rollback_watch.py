"""How long a drill window keeps probing: until the recovery phase has been watched whole after the rollback that
really happened, not only after the planned one (docs/architecture.md §6).

A drill window is planned as lead + fault + recovery (+ a little slack). A Rollback that runs late (a cold Lambda,
a slow API server, a loaded machine) would eat into the recovery phase, and a failback the window closed on cannot
be judged. So the window reads the drill's fault records while it runs: while an injected fault has no restore
request yet, it keeps going, for at most ``WAIT_FOR_ROLLBACK_S`` past the plan (a rollback later than that is a
failure path: the emergency rollback or the guardian ends the fault, and some of them run only once the window has
ended); once every fault has its request, it runs until the last request's send + the recovery phase. The window
that owns the watch bounds it (``MAX_EXTENSION_S`` past the plan, and the invocation's deadline).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from livefire.datachecks.cleanup import is_cleanup
from livefire.records import FaultRecord

WAIT_FOR_ROLLBACK_S = 5.0  # past the planned end, for a rollback not sent yet
MAX_EXTENSION_S = 60.0  # past the planned end, to watch the recovery after a late rollback whole
POLL_S = 0.5  # the fault records are read at most this often
AHEAD_S = 2.0  # while a fault is live, the window's end is kept at least this far ahead


class RollbackWatch:
    """The wall-clock instant (epoch ms) until which the window must probe, from the drill's fault records."""

    def __init__(self, faults: Callable[[], Sequence[FaultRecord]], recovery_s: float, planned_end_ms: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._faults = faults
        self._give_up_waiting_ms = planned_end_ms + WAIT_FOR_ROLLBACK_S * 1000.0
        self._recovery_ms = recovery_s * 1000.0
        self._clock = clock
        self._read_at_ms: float | None = None
        self._wanted_ms: float | None = None

    def wanted_end_ms(self) -> float | None:
        """None while nothing asks for more than the plan (no fault yet, or none that was live)."""
        now_ms = self._clock() * 1000.0
        if self._read_at_ms is not None and now_ms - self._read_at_ms < POLL_S * 1000.0:
            return self._wanted_ms
        self._read_at_ms = now_ms
        faults = [record for record in self._faults() if not is_cleanup(record.planned)]
        if any(record.status == "INJECTED" and record.restore_requested_at_ms is None for record in faults):
            self._wanted_ms = min(now_ms + AHEAD_S * 1000.0, self._give_up_waiting_ms)
        else:
            sent = [record.restore_requested_at_ms for record in faults if record.restore_requested_at_ms is not None]
            self._wanted_ms = max(sent) + self._recovery_ms if sent else None
        return self._wanted_ms
