"""What one drill costs at list prices: Step Functions state transitions and Lambda (arm64) usage.

Everything is read from the execution's history (``GetExecutionHistory``): one state transition per state
entered (every Map iteration and Parallel branch included) plus one per Task retry, as Step Functions bills a
Standard workflow; Lambda duration per invocation is the time from ``TaskStarted`` to the task's end (an upper
bound of the billed duration, which also covers a cold start's init), rounded up to the millisecond and
priced per GB-second at each function's memory size. Measured durations can be given instead. Free tiers,
S3, DynamoDB, EventBridge, CloudWatch and X-Ray charges are left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_TASK_ENDS = ("TaskSucceeded", "TaskFailed", "TaskTimedOut")


class CostModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PriceList(CostModel):
    """On-demand list prices in USD, US East (N. Virginia), as published on the sources' pages on ``as_of``."""

    as_of: str = "2026-11-25"
    region: str = "us-east-1"
    state_transition: float = 0.025 / 1000  # Step Functions Standard: $0.025 per 1,000 state transitions
    lambda_gb_second: float = 0.0000133334  # Lambda arm64, first pricing tier
    lambda_request: float = 0.20 / 1_000_000  # Lambda: $0.20 per 1M requests
    fis_action_minute: float = 0.10  # AWS FIS: $0.10 per action-minute
    sources: tuple[str, ...] = (
        "https://aws.amazon.com/step-functions/pricing/",
        "https://aws.amazon.com/lambda/pricing/",
        "https://aws.amazon.com/fis/pricing/",
    )

    def describe(self) -> str:
        return (
            f"List prices of {self.as_of} ({self.region}): Step Functions Standard "
            f"${self.state_transition * 1000:g} per 1,000 state transitions; Lambda arm64 "
            f"${self.lambda_gb_second:g} per GB-s and ${self.lambda_request * 1_000_000:g} per 1M requests "
            f"({', '.join(self.sources[:2])}). Free tiers and S3, DynamoDB, EventBridge, CloudWatch and X-Ray "
            "charges are not included."
        )


LIST_PRICES = PriceList()


class FunctionUse(CostModel):
    function: str
    invocations: int
    billed_ms: int
    memory_mb: int

    @property
    def gb_seconds(self) -> float:
        return self.memory_mb / 1024.0 * self.billed_ms / 1000.0


class DrillCost(CostModel):
    state_transitions: int
    retries: int
    functions: list[FunctionUse]
    prices: PriceList

    @property
    def lambda_invocations(self) -> int:
        return sum(f.invocations for f in self.functions)

    @property
    def lambda_gb_seconds(self) -> float:
        return sum(f.gb_seconds for f in self.functions)

    @property
    def transitions_usd(self) -> float:
        return self.state_transitions * self.prices.state_transition

    def function_usd(self, use: FunctionUse) -> float:
        return use.gb_seconds * self.prices.lambda_gb_second + use.invocations * self.prices.lambda_request

    @property
    def lambda_usd(self) -> float:
        return sum(self.function_usd(f) for f in self.functions)

    @property
    def total_usd(self) -> float:
        return self.transitions_usd + self.lambda_usd

    def to_report(self) -> CostReport:
        """The document the evidence step stores as cost.json and the reports render (total, lines, note)."""
        lines = [CostLine(
            item="Step Functions state transitions",
            quantity=f"{self.state_transitions} ({self.retries} retries)",
            usd=round(self.transitions_usd, 8),
        )]
        lines += [CostLine(
            item=f"Lambda {f.function}",
            quantity=f"{f.invocations} x {f.memory_mb} MB, {f.billed_ms} ms = {f.gb_seconds:.3f} GB-s",
            usd=round(self.function_usd(f), 8),
        ) for f in self.functions]
        return CostReport(
            total_usd=round(self.total_usd, 8), state_transitions=self.state_transitions,
            lambda_gb_seconds=round(self.lambda_gb_seconds, 6), lambda_invocations=self.lambda_invocations,
            lines=lines, note=self.prices.describe(),
        )


class CostLine(CostModel):
    """One priced item of a drill."""

    item: str = Field(description="What was used, e.g. 'Lambda ProbeFunction'.")
    quantity: str = Field(description="How much of it, in words and numbers.")
    usd: float = Field(description="Its price in USD.")


class CostReport(CostModel):
    """cost.json: what the drill cost, as both reports show it."""

    total_usd: float = Field(description="The drill's total price in USD.")
    state_transitions: int = Field(description="Step Functions state transitions billed.")
    lambda_gb_seconds: float = Field(description="Lambda duration billed, in GB-seconds.")
    lambda_invocations: int = Field(description="Lambda invocations billed.")
    lines: list[CostLine] = Field(description="One line per priced item.")
    note: str = Field(description="What the prices are and what is left out.")


def _event_type(event: Mapping[str, Any]) -> str:
    return str(event.get("type", ""))


def _seconds(timestamp: Any) -> float:
    if isinstance(timestamp, datetime):
        return timestamp.timestamp()
    if isinstance(timestamp, int | float):
        return float(timestamp)
    return datetime.fromisoformat(str(timestamp)).timestamp()


def count_state_transitions(events: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(state transitions, of which Task retries): one per state entered, one more per re-scheduled task."""
    by_id = {event.get("id"): event for event in events}
    entered = sum(1 for e in events if _event_type(e).endswith("StateEntered"))
    retries = 0
    for event in events:
        if _event_type(event) != "TaskScheduled":
            continue
        previous = by_id.get(event.get("previousEventId"))
        if previous is not None and not _event_type(previous).endswith("StateEntered"):
            retries += 1
    return entered + retries, retries


def _function_name(scheduled: Mapping[str, Any]) -> str:
    details = scheduled.get("taskScheduledEventDetails") or {}
    try:
        parameters = json.loads(details.get("parameters") or "{}")
    except ValueError:
        parameters = {}
    name = str(parameters.get("FunctionName") or details.get("resource") or "unknown")
    return name.rsplit(":function:", 1)[-1].split(":", 1)[0]


def lambda_durations(events: Sequence[Mapping[str, Any]]) -> list[tuple[str, float]]:
    """(function name, seconds) of every Lambda task that ended: from TaskStarted to its end event."""
    by_id = {event.get("id"): event for event in events}
    durations = []
    for end in events:
        if _event_type(end) not in _TASK_ENDS:
            continue
        started = by_id.get(end.get("previousEventId"))
        if started is None or _event_type(started) != "TaskStarted":
            continue
        scheduled = by_id.get(started.get("previousEventId"))
        if scheduled is None or (scheduled.get("taskScheduledEventDetails") or {}).get("resourceType") != "lambda":
            continue
        durations.append((_function_name(scheduled), _seconds(end["timestamp"]) - _seconds(started["timestamp"])))
    return durations


def _memory_of(function: str, memory_mb: Mapping[str, int], default_mb: int) -> int:
    """A key matches a function whose name equals or contains it (``AssessFunction`` in ``stack-AssessFunction-1X``)."""
    if function in memory_mb:
        return memory_mb[function]
    return next((mb for key, mb in memory_mb.items() if key in function), default_mb)


def drill_cost(
    events: Sequence[Mapping[str, Any]],
    *,
    memory_mb: Mapping[str, int] | None = None,
    default_memory_mb: int = 512,
    durations: Iterable[tuple[str, float]] | None = None,
    prices: PriceList = LIST_PRICES,
) -> DrillCost:
    """Price an execution history; ``durations`` (function, seconds) replaces the history's Lambda timings."""
    transitions, retries = count_state_transitions(events)
    uses: dict[str, list[int]] = {}
    for function, seconds in lambda_durations(events) if durations is None else durations:
        use = uses.setdefault(function, [0, 0])
        use[0] += 1
        use[1] += max(1, math.ceil(seconds * 1000.0 - 1e-6))  # billed per started millisecond
    functions = [
        FunctionUse(function=name, invocations=count, billed_ms=billed,
                    memory_mb=_memory_of(name, memory_mb or {}, default_memory_mb))
        for name, (count, billed) in sorted(uses.items())
    ]
    return DrillCost(
        state_transitions=transitions, retries=retries, functions=functions, prices=prices
    )


def fis_cost(action_seconds: Iterable[float], prices: PriceList = LIST_PRICES) -> float:
    """AWS FIS for the same faults: each action's duration rounded to the nearest minute, as its pricing page
    says; an action shorter than 30 s is taken to bill one minute (the page does not say it bills none)."""
    minutes = sum(max(1, math.floor(seconds / 60.0 + 0.5)) for seconds in action_seconds)
    return minutes * prices.fis_action_minute


def execution_history(sfn_client: Any, execution_arn: str, *, max_pages: int = 100) -> list[dict[str, Any]]:
    """Every event of an execution so far (paginated, bounded)."""
    events: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(max_pages):
        page = sfn_client.get_execution_history(
            executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            break
    return events
