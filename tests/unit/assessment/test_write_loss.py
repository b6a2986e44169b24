"""Write loss on failback on synthetic marker streams whose truth is known: the standby takes a marker every
interval, each reaches the primary ``lag`` seconds later (not while the primary fails), a lossy failback drops
what the standby took while the primary failed, and the primary is looked at every interval for every marker not
yet seen there."""

from __future__ import annotations

import math
from dataclasses import dataclass

from livefire.assessment.model import DataCheckResult, Finding, WriteLoss
from livefire.assessment.rpo import measure, region_write_loss, write_loss_finding
from livefire.datachecks.markers import MarkerSample
from livefire.spec import DrillSpec, parse_spec
from tests.conftest import sandbox_spec_document

T0 = 1_700_000_000_000.0
STANDBY = "us-west-2"


@dataclass(frozen=True)
class Failback:
    """Seconds from T0: the primary fails at ``failed_s`` and is restored at ``restored_s``; the standby serves from
    ``serving_s``; ``lossy``: what it took while the primary failed never reaches the primary."""

    lag_s: float = 0.3
    interval_s: float = 0.2
    failed_s: float = 5.0
    serving_s: float = 5.6
    restored_s: float = 8.0
    lossy: bool = False
    looks_until_s: float = 14.0
    end_s: float = 14.0

    def reaches_primary_s(self, written_s: float) -> float | None:
        """When marker written at ``written_s`` is first held by the primary (None: never)."""
        if self.lossy and self.failed_s <= written_s < self.restored_s:
            return None
        arrives = written_s + self.lag_s
        return max(arrives, self.restored_s) if self.failed_s <= arrives < self.restored_s else arrives

    @property
    def true_lost(self) -> list[int]:
        return [seq for seq, at in self.written() if self.serving_s <= at < self.restored_s
                and self.reaches_primary_s(at) is None]

    def written(self) -> list[tuple[int, float]]:
        return [(seq, seq * self.interval_s) for seq in range(math.ceil(self.end_s / self.interval_s))]

    def samples(self) -> list[MarkerSample]:
        writes = [MarkerSample(check="orders", region=STANDBY, op="standby-write", scheduled_ms=T0 + at * 1e3,
                               sent_ms=T0 + at * 1e3, ended_ms=T0 + at * 1e3 + 1.0, ok=True, seq=seq,
                               marker_ms=T0 + at * 1e3) for seq, at in self.written()]
        looks: list[MarkerSample] = []
        seen: set[int] = set()
        for index in range(math.ceil(self.looks_until_s / self.interval_s)):
            at = index * self.interval_s + 0.011
            asked = [seq for seq, written in self.written() if written + 0.001 < at and seq not in seen]
            held = [seq for seq in asked if (arrival := self.reaches_primary_s(seq * self.interval_s)) is not None
                    and arrival <= at]
            seen.update(held)
            looks.append(MarkerSample(check="orders", region=STANDBY, op="confirm", scheduled_ms=T0 + at * 1e3,
                                      sent_ms=T0 + at * 1e3, ended_ms=T0 + at * 1e3 + 2.0, ok=True, asked=asked,
                                      held=held))
        return writes + looks

    def measure(self, serving: bool = True, restored: bool = True, settle_s: float = 0.0) -> WriteLoss:
        samples = self.samples()
        return region_write_loss(STANDBY, [s for s in samples if s.op == "standby-write"],
                                 [s for s in samples if s.op == "confirm"], failed_at_ms=T0 + self.failed_s * 1e3,
                                 serving_from_ms=T0 + self.serving_s * 1e3 if serving else None,
                                 restored_ms=T0 + self.restored_s * 1e3 if restored else None, settle_s=settle_s)


def spec(standby_writes: bool = True) -> DrillSpec:
    document = sandbox_spec_document()
    document["dataChecks"] = [{"name": "orders", "kind": "http", "interval": "200ms", "standbyWrites": standby_writes,
                               "http": {"writeUrl": "http://markers.payments.sandbox/m",
                                        "readUrls": {STANDBY: "http://usw2.markers.payments.sandbox/m"}}}]
    return parse_spec(document)


def judged(failback: Failback, standby_writes: bool = True) -> tuple[list[DataCheckResult], Finding]:
    results = measure(spec(standby_writes), failback.samples(), injected_ms=T0 + failback.failed_s * 1e3,
                      restored_ms=T0 + failback.restored_s * 1e3, serving={STANDBY: T0 + failback.serving_s * 1e3},
                      marker_keys=["markers/local-0000.jsonl.gz"])
    return results, write_loss_finding(results)


def test_markers_that_all_reach_the_primary_after_the_failback_lose_nothing_and_pass() -> None:
    failback = Failback()

    results, finding = judged(failback)

    loss = results[0].write_loss[0]
    taken = [seq for seq, at in failback.written() if failback.serving_s <= at < failback.restored_s]
    assert (loss.lost, loss.written, loss.reached, loss.lost_seqs) == (0, len(taken), len(taken), [])
    assert (finding.status, finding.measured, finding.threshold) == ("PASS", 0, 0)


def test_a_lossy_failback_names_exactly_the_markers_the_primary_never_got_and_fails() -> None:
    failback = Failback(lossy=True)

    results, finding = judged(failback)

    loss = results[0].write_loss[0]
    assert failback.true_lost and loss.lost_seqs == failback.true_lost
    assert loss.lost == len(failback.true_lost) and loss.reached == 0
    assert (finding.status, finding.measured, finding.unit) == ("FAIL", len(failback.true_lost), "markers")
    assert "never reached the primary" in finding.detail and finding.evidence.target == "dataCheck:orders"


def test_writes_before_the_takeover_or_after_the_restore_are_not_counted_as_taken_while_serving() -> None:
    failback = Failback(lossy=True, failed_s=5.0, serving_s=6.0, restored_s=7.0)

    loss = failback.measure()

    assert loss.lost_seqs == [30, 31, 32, 33, 34]  # written at 6.0 ... 6.8 s; the ones from 5.0 s never served
    assert loss.written == 5


def test_a_primary_never_looked_at_after_the_restore_leaves_the_loss_unobserved_never_zero() -> None:
    failback = Failback(lossy=True, looks_until_s=7.9)

    results, finding = judged(failback)

    loss = results[0].write_loss[0]
    assert loss.lost is None and loss.unchecked == loss.written > 0
    assert (finding.status, finding.measured) == ("INCONCLUSIVE", None)
    assert "were never looked for in the primary" in finding.detail


def test_a_marker_looked_for_only_while_it_may_still_be_replicating_back_is_not_taken_as_lost() -> None:
    failback = Failback(lossy=True, looks_until_s=9.0)

    settled, replicating = failback.measure(settle_s=0.5), failback.measure(settle_s=1.5)

    assert settled.lost == len(failback.true_lost)
    assert replicating.lost is None and replicating.unchecked == replicating.written


def test_no_takeover_or_no_restore_leaves_the_loss_unobserved_with_its_reason() -> None:
    failback = Failback()

    never_served, never_restored = failback.measure(serving=False), failback.measure(restored=False)

    assert never_served.lost is None and "never answered the entrypoint" in never_served.note
    assert never_restored.lost is None and "no restore was sent" in never_restored.note


def test_a_data_check_without_standby_writes_measures_no_write_loss() -> None:
    results, finding = judged(Failback(), standby_writes=False)

    assert results[0].write_loss == []
    assert finding.status == "INCONCLUSIVE" and finding.detail == "no data check wrote in a standby"
