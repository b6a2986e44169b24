"""Stop conditions beyond the probes' own error rate: the CloudWatch alarms named in ``guardrails.alarms``.

While the drill window is probed, a background thread calls ``cloudwatch:DescribeAlarms`` for the named alarms
(at most once per second: CloudWatch's API quota is a few calls per second per account), so the probe loop only
reads a flag at each base tick and never waits on CloudWatch. Any named alarm in ALARM stops the window; so does
a named alarm that does not exist, or alarms that cannot be read for several polls in a row: a stop condition
that cannot be evaluated must not let the fault run unguarded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache
from types import TracebackType
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

StopCheck = Callable[[], str | None]
ALARM_POLL_S = 1.0
# Consecutive failed DescribeAlarms calls before the alarms count as not evaluable (a breach).
MAX_POLL_FAILURES = 3


@cache
def _cloudwatch() -> Any:
    return boto3.client("cloudwatch")


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return "an unknown time"


class AlarmWatch:
    """Watches the named alarms for the duration of a ``with`` block; ``check()`` gives the breach, if any."""

    def __init__(self, names: Sequence[str], client: Any | None = None, period_s: float = ALARM_POLL_S) -> None:
        self.names = sorted(set(names))
        self.period_s = period_s
        self._client = client
        self._breach: str | None = None
        self._failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> str | None:
        return self._breach

    def poll(self) -> str | None:
        """One DescribeAlarms call; returns (and keeps) the breach it found."""
        if self._breach is not None or not self.names:
            return self._breach
        client = self._client if self._client is not None else _cloudwatch()
        try:
            response = client.describe_alarms(AlarmNames=self.names, AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        except (ClientError, BotoCoreError) as exc:
            self._failures += 1
            if self._failures >= MAX_POLL_FAILURES:
                self._breach = (f"guardrail alarms could not be evaluated ({self._failures} DescribeAlarms calls "
                                f"failed, last: {type(exc).__name__}: {exc})")
            return self._breach
        self._failures = 0
        alarms = [*response.get("MetricAlarms", []), *response.get("CompositeAlarms", [])]
        found = {alarm["AlarmName"]: alarm for alarm in alarms}
        missing = [name for name in self.names if name not in found]
        if missing:
            self._breach = f"guardrail alarms cannot be evaluated: no CloudWatch alarm named {', '.join(missing)}"
            return self._breach
        for name in self.names:
            alarm = found[name]
            if alarm.get("StateValue") == "ALARM":
                reason = " ".join(str(alarm.get("StateReason", "")).split())[:300]
                self._breach = (f"guardrail alarm breached: CloudWatch alarm {name} is in ALARM since "
                                f"{_when(alarm.get('StateUpdatedTimestamp'))} ({reason})")
                return self._breach
        return None

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            if self.poll() is not None:
                return

    def __enter__(self) -> AlarmWatch:
        if self.names:
            self.poll()  # an alarm already firing (or missing) stops the window at its first tick
            self._thread = threading.Thread(target=self._run, name="livefire-alarm-watch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.period_s + 30.0)
            self._thread = None


def first_breach(*checks: StopCheck | None) -> StopCheck | None:
    """One stop condition from several: the first that reports a breach wins."""
    active = [check for check in checks if check is not None]
    if not active:
        return None

    def check() -> str | None:
        for each in active:
            reason = each()
            if reason:
                return reason
        return None

    return check
