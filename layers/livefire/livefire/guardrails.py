"""Stop conditions beyond the probes' own error rate: the CloudWatch alarms named in ``guardrails.alarms``.

While the drill window is probed, a background thread calls ``cloudwatch:DescribeAlarms`` for the named alarms,
in each alarm's own region (at most once per second: CloudWatch's API quota is a few calls per second per account
and region), so the probe loop only reads a flag at each base tick and never waits on CloudWatch. Any named alarm
in ALARM stops the window; so does a named alarm that does not exist (or, named by ARN, is another alarm), or
alarms that cannot be read for several polls in a row: a stop condition that cannot be evaluated must not let the
fault run unguarded. An alarm in a region whose spec region names ``cluster.assumeRole`` is read through that
role (``cloudwatch_for``; docs/campaigns.md "Cross-account drills").
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from livefire.accounts import client_in, role_for
from livefire.errors import MeshAccessError
from livefire.spec import Alarm, AlarmRef, DrillSpec, resolve_alarm
from livefire.spec.aws import is_region_code

StopCheck = Callable[[], str | None]
ALARM_POLL_S = 1.0
# Consecutive failed polls (a DescribeAlarms call failed in some region) before the alarms count as not evaluable
# (a breach).
MAX_POLL_FAILURES = 3


def cloudwatch_in(region: str) -> Any:
    """The CloudWatch client of one region, with the function's own credentials."""
    return client_in("cloudwatch", region, None)


def cloudwatch_for(spec: DrillSpec) -> Callable[[str], Any]:
    """The spec's CloudWatch clients by region: through the role of the spec region of that name
    (``accounts.role_for``), else with the function's own credentials."""
    return lambda region: client_in("cloudwatch", region, role_for(spec, region))


def home_region(execution_arn: str) -> str:
    """The region of the drill's state machine, where the deployment runs: a plain alarm name is read there,
    whichever vantage probes (the Lambda's own region when the ARN names none)."""
    parts = execution_arn.split(":")
    if len(parts) > 3 and is_region_code(parts[3]):
        return parts[3]
    return os.environ.get("AWS_REGION", "")


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return "an unknown time"


class AlarmWatch:
    """Watches the alarms for the duration of a ``with`` block; ``check()`` gives the breach, if any. Each alarm is
    read with a CloudWatch client of its own region (``guardrails.alarms``: a plain name is in ``home_region``)."""

    def __init__(self, alarms: Sequence[str | AlarmRef], *, home_region: str,
                 clients: Callable[[str], Any] = cloudwatch_in, period_s: float = ALARM_POLL_S) -> None:
        resolved = {resolve_alarm(alarm, home_region) for alarm in alarms}
        self.by_region: dict[str, list[Alarm]] = {}
        for alarm in sorted(resolved, key=lambda alarm: (alarm.region, alarm.name, alarm.arn or "")):
            self.by_region.setdefault(alarm.region, []).append(alarm)
        self.period_s = period_s
        self._clients = clients
        self._breach: str | None = None
        self._failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> str | None:
        return self._breach

    def poll(self) -> str | None:
        """One DescribeAlarms call per region; returns (and keeps) the breach it found."""
        if self._breach is not None:
            return self._breach
        for region, alarms in self.by_region.items():
            try:
                response = self._clients(region).describe_alarms(
                    AlarmNames=sorted({alarm.name for alarm in alarms}), AlarmTypes=["MetricAlarm", "CompositeAlarm"])
            except (ClientError, BotoCoreError, MeshAccessError) as exc:  # MeshAccessError: the role was refused
                self._failures += 1
                if self._failures >= MAX_POLL_FAILURES:
                    self._breach = (f"guardrail alarms could not be evaluated ({self._failures} polls failed, last: "
                                    f"DescribeAlarms in {region}: {type(exc).__name__}: {exc})")
                return self._breach
            self._breach = self._judge(region, alarms, response)
            if self._breach is not None:
                return self._breach
        self._failures = 0
        return None

    @staticmethod
    def _judge(region: str, alarms: list[Alarm], response: dict[str, Any]) -> str | None:
        found = {alarm["AlarmName"]: alarm
                 for alarm in [*response.get("MetricAlarms", []), *response.get("CompositeAlarms", [])]}
        missing = [alarm.name for alarm in alarms if alarm.name not in found]
        if missing:
            return f"guardrail alarms cannot be evaluated: no CloudWatch alarm named {', '.join(missing)} in {region}"
        for alarm in alarms:
            state = found[alarm.name]
            if alarm.arn is not None and state.get("AlarmArn") != alarm.arn:
                return (f"guardrail alarms cannot be evaluated: CloudWatch alarm {alarm.name} in {region} is "
                        f"{state.get('AlarmArn')}, not the alarm the spec names ({alarm.arn})")
            if state.get("StateValue") == "ALARM":
                reason = " ".join(str(state.get("StateReason", "")).split())[:300]
                return (f"guardrail alarm breached: CloudWatch alarm {alarm.name} is in ALARM in {region} since "
                        f"{_when(state.get('StateUpdatedTimestamp'))} ({reason})")
        return None

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            if self.poll() is not None:
                return

    def __enter__(self) -> AlarmWatch:
        if self.by_region:
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
