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

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from livefire.datachecks.cleanup import is_cleanup
from livefire.records import FaultRecord

WAIT_FOR_ROLLBACK_S = 5.0  # past the planned end, for a rollback not sent yet
MAX_EXTENSION_S = 60.0  # past the planned end, to watch the recovery after a late rollback whole
POLL_S = 0.5  # how often the fault records are read (on a thread of their own: never on the probes' event loop)
AHEAD_S = 2.0  # while a fault is live, the window's end is kept at least this far ahead

logger = logging.getLogger(__name__)


class RollbackWatch:
    """The wall-clock instant (epoch ms) until which the window must probe, from the drill's fault records."""

    def __init__(self, faults: Callable[[], Sequence[FaultRecord]], recovery_s: float, planned_end_ms: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._faults = faults
        self._give_up_waiting_ms = planned_end_ms + WAIT_FOR_ROLLBACK_S * 1000.0
        self._recovery_ms = recovery_s * 1000.0
        self._clock = clock
        self._live = False
        self._last_restore_sent_ms: float | None = None

    def read(self) -> None:
        """Read the fault records once (blocking: a DynamoDB query)."""
        faults = [record for record in self._faults() if not is_cleanup(record.planned)]
        sent = [record.restore_requested_at_ms for record in faults if record.restore_requested_at_ms is not None]
        self._live = any(record.status == "INJECTED" and record.restore_requested_at_ms is None for record in faults)
        self._last_restore_sent_ms = max(sent) if sent else None

    def wanted_end_ms(self) -> float | None:
        """From the last read (never blocks); None while nothing asks for more than the plan (no fault yet, or
        none that was live)."""
        if self._live:
            return min(self._clock() * 1000.0 + AHEAD_S * 1000.0, self._give_up_waiting_ms)
        if self._last_restore_sent_ms is not None:
            return self._last_restore_sent_ms + self._recovery_ms
        return None

    @contextmanager
    def reading(self) -> Iterator[RollbackWatch]:
        """Read the records every ``POLL_S`` on a daemon thread for the duration of the block. A failed read
        keeps the last one: the window then keeps to what it knew (at worst the plan)."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                try:
                    self.read()
                except Exception as exc:  # a window must never fail for its extension
                    logger.warning("could not read the drill's fault records: %s: %s", type(exc).__name__, exc)
                stop.wait(POLL_S)

        thread = threading.Thread(target=loop, name="rollback-watch", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=5.0)
