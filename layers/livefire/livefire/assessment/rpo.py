"""Data checks to measurements and findings: replication lag per region and phase, and the RPO at the failover
instant (docs/architecture.md §7; the result's shape: ``model.py`` ``DataCheckResult``).

Lag: each read of a region saw the newest marker it held; its lag is the read's send instant minus that marker's
send instant (now - newest marker visible). RPO: the primary failed at the injection's send instant; a region
took over when it first answered the entrypoint after it; the RPO is the span of acknowledged writes it did not
hold then, bracketed by the reads around that instant and by the marker interval (``Rpo``). Write loss on
failback (``standbyWrites``): the markers a region acknowledged while it served, from its takeover to the restore,
that were looked for in the primary after the restore and never seen there by the window's end (``WriteLoss``).
A value that was not observed is absent with a reason: no markers, no failover, no read around it, no look after
the failback.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from livefire.assessment.columns import Probe
from livefire.assessment.model import (
    PHASES,
    DataCheckResult,
    EvidencePointer,
    Finding,
    LagPoint,
    LagStats,
    PhaseName,
    Rpo,
    Status,
    WriteLoss,
    rule,
)
from livefire.assessment.sufficiency import percentile_samples_needed
from livefire.assessment.timeline import percentile
from livefire.datachecks.markers import MarkerSample
from livefire.spec import DrillSpec

TIMELINE_POINTS = 300  # per region: the lag timeline keeps the largest lag of each bucket
LOST_LISTED = 50  # lost markers named per region
LAG_REQUIRED_READS = percentile_samples_needed(99)


def serving_starts(samples: Iterable[Probe], entrypoint: str | None, injected_ms: float | None) -> dict[str, float]:
    """Per region: the send instant of its first good answer at the entrypoint after the injection (any vantage)."""
    starts: dict[str, float] = {}
    if entrypoint is None or injected_ms is None:
        return starts
    for sample in samples:
        if sample.target == entrypoint and sample.ok and sample.served_by and sample.sent_ms >= injected_ms:
            starts[sample.served_by] = min(starts.get(sample.served_by, math.inf), sample.sent_ms)
    return starts


def _phase(at_ms: float, injected_ms: float | None, restored_ms: float | None) -> PhaseName:
    if injected_ms is None or at_ms < injected_ms:
        return "baseline"
    return "fault" if restored_ms is None or at_ms < restored_ms else "recovery"


def _lag_s(read: MarkerSample, first_write_ms: float | None) -> float | None:
    if not read.ok:
        return None
    since = read.marker_ms if read.marker_ms is not None else first_write_ms
    return None if since is None or read.sent_ms < since else (read.sent_ms - since) / 1000.0


def _lag_stats(region: str, reads: Sequence[MarkerSample], first_write_ms: float | None,
               injected_ms: float | None, restored_ms: float | None) -> list[LagStats]:
    stats = []
    for phase in PHASES:
        in_phase = [r for r in reads if _phase(r.sent_ms, injected_ms, restored_ms) == phase]
        lags = [lag for lag in (_lag_s(r, first_write_ms) for r in in_phase) if lag is not None]
        stats.append(LagStats(region=region, phase=phase, reads=len(lags),
                              failed_reads=sum(1 for r in in_phase if not r.ok), p50_s=percentile(lags, 50),
                              p99_s=percentile(lags, 99), max_s=max(lags, default=None)))
    return stats


def _timeline(region: str, reads: Sequence[MarkerSample], first_write_ms: float | None) -> list[LagPoint]:
    points = [(r.sent_ms, lag) for r in reads if (lag := _lag_s(r, first_write_ms)) is not None]
    if not points:
        return []
    start, end = points[0][0], points[-1][0]
    width = max((end - start) / TIMELINE_POINTS, 1e-9)
    buckets: dict[int, tuple[float, float]] = {}
    for at_ms, lag in points:
        bucket = min(int((at_ms - start) / width), TIMELINE_POINTS - 1)
        if bucket not in buckets or lag > buckets[bucket][1]:
            buckets[bucket] = (at_ms, lag)
    return [LagPoint(region=region, at_ms=at, lag_s=round(lag, 6)) for at, lag in sorted(buckets.values())]


def region_rpo(region: str, writes: Sequence[MarkerSample], reads: Sequence[MarkerSample], *,
               failed_at_ms: float | None, serving_from_ms: float | None) -> Rpo:
    """The RPO of one region taking over (``Rpo`` explains the bracket). ``writes`` and ``reads`` in send order."""
    if failed_at_ms is None:
        return Rpo(region=region, seconds=None, note="nothing was injected: no failover to measure")
    acked = [w for w in writes if w.ok and w.seq is not None and w.sent_ms <= failed_at_ms]
    if not acked:
        return Rpo(region=region, seconds=None, failed_at_ms=failed_at_ms,
                   note="no marker was acknowledged by the primary before it failed")
    last = max(acked, key=lambda w: w.seq or 0)
    base = Rpo(region=region, seconds=None, failed_at_ms=failed_at_ms, serving_from_ms=serving_from_ms,
               last_acked_seq=last.seq, last_acked_ms=last.sent_ms, note="")
    if serving_from_ms is None:
        return base.model_copy(update={"note": f"{region} never answered the entrypoint after the injection: "
                                               "no failover to it, no RPO"})
    before = [r for r in reads if r.ok and r.ended_ms <= serving_from_ms]
    after = [r for r in reads if r.ok and r.sent_ms >= serving_from_ms]
    if not before or not after:
        return base.model_copy(update={"note": f"no successful read of {region} "
                                               f"{'before' if not before else 'after'} it started serving"})
    held_seq = max((r.seq for r in before if r.seq is not None), default=None)
    first_after = min(after, key=lambda r: r.sent_ms)  # it held no more at the takeover than this read saw
    at_most_seq = first_after.seq if first_after.seq is not None else -1
    sent = {w.seq: w.sent_ms for w in writes if w.seq is not None}
    first_ms = min(sent.values())
    held_ms = sent.get(held_seq, first_ms) if held_seq is not None else first_ms
    missing = [w for w in acked if (w.seq or 0) > at_most_seq]
    low = 0.0 if not missing else max(0.0, (failed_at_ms - min(w.sent_ms for w in missing)) / 1000.0)
    high = max(0.0, (failed_at_ms - held_ms) / 1000.0) if held_seq is None or held_seq < (last.seq or 0) else 0.0
    low = min(low, high)
    lost = sum(1 for w in acked if held_seq is None or (w.seq or 0) > held_seq)
    seconds = round((low + high) / 2.0, 6)
    note = (f"{region} started serving {(serving_from_ms - failed_at_ms) / 1000.0:.3f} s after the primary failed "
            f"holding marker {held_seq if held_seq is not None else 'none'}; the primary had acknowledged up to "
            f"{last.seq}: RPO {seconds:.3f} s in [{low:.3f}, {high:.3f}] s")
    return base.model_copy(update={"seconds": seconds, "low_s": round(low, 6), "high_s": round(high, 6),
                                   "held_seq": held_seq, "held_ms": held_ms, "lost_markers": lost, "note": note})


def region_write_loss(region: str, standby_writes: Sequence[MarkerSample], confirms: Sequence[MarkerSample], *,
                      failed_at_ms: float | None, serving_from_ms: float | None,
                      restored_ms: float | None, settle_s: float = 0.0) -> WriteLoss:
    """Write loss on failback of one region (``WriteLoss``): its ``standby-write`` samples and the ``confirm``
    looks in the primary for them. A look decides only once sent ``settle_s`` after the restore (the replication
    lag measured before the fault), so a marker still on its way back is not taken as lost."""
    base = WriteLoss(region=region, serving_from_ms=serving_from_ms, until_ms=restored_ms, note="")
    if failed_at_ms is None:
        return base.model_copy(update={"note": "nothing was injected: no failover, no failback to check"})
    if serving_from_ms is None:
        return base.model_copy(update={"note": f"{region} never answered the entrypoint after the injection: it "
                                               "took no writes in the primary's place"})
    if restored_ms is None:
        return base.model_copy(update={"note": "no restore was sent: no failback to check"})
    taken = sorted({w.seq for w in standby_writes
                    if w.ok and w.seq is not None and serving_from_ms <= w.sent_ms < restored_ms})
    if not taken:
        return base.model_copy(update={"note": f"{region} acknowledged no marker while it served "
                                               f"({(restored_ms - serving_from_ms) / 1000.0:.3f} s before the "
                                               "restore): nothing to look for in the primary"})
    looks = [c for c in confirms if c.ok]
    seen = {seq for c in looks for seq in c.held or ()}
    looked_after = {seq for c in looks if c.sent_ms >= restored_ms + settle_s * 1000.0 for seq in c.asked or ()}
    lost = [seq for seq in taken if seq not in seen and seq in looked_after]
    unchecked = [seq for seq in taken if seq not in seen and seq not in looked_after]
    last_look = max((c.sent_ms for c in looks), default=None)
    measured = base.model_copy(update={"written": len(taken), "reached": len(taken) - len(lost) - len(unchecked),
                                       "lost_seqs": lost[:LOST_LISTED], "unchecked": len(unchecked),
                                       "last_look_ms": last_look})
    span = f"the {len(taken)} markers {region} acknowledged while it served"
    if lost:
        late = (last_look - restored_ms) / 1000.0 if last_look is not None else 0.0
        shown = ", ".join(map(str, lost[:LOST_LISTED])) + (", ..." if len(lost) > LOST_LISTED else "")
        return measured.model_copy(update={"lost": len(lost), "note": (
            f"{len(lost)} of {span} never reached the primary (looked for from {settle_s:.3f} s to {late:.3f} s "
            "after the restore): "
            f"markers {shown}" + (f"; {len(unchecked)} never looked for" if unchecked else ""))})
    if unchecked:
        return measured.model_copy(update={"note": f"{len(unchecked)} of {span} were never looked for in the "
                                                   f"primary {settle_s:.3f} s or more after the restore: write "
                                                   "loss not observed"})
    return measured.model_copy(update={"lost": 0, "note": f"all {span} reached the primary"})


def measure(spec: DrillSpec, markers: Iterable[MarkerSample], *, injected_ms: float | None,
            restored_ms: float | None, serving: Mapping[str, float],
            marker_keys: Sequence[str]) -> list[DataCheckResult]:
    """Every data check's lag and RPO; ``serving``: when each region started serving (``serving_starts``)."""
    ordered = sorted(markers, key=lambda m: (m.sent_ms, m.seq or 0))
    results = []
    for check in spec.data_checks:
        mine = [m for m in ordered if m.check == check.name]
        writes = [m for m in mine if m.op == "write"]
        first_ms = min((w.sent_ms for w in writes), default=None)
        lag: list[LagStats] = []
        timeline: list[LagPoint] = []
        rpos: list[Rpo] = []
        losses: list[WriteLoss] = []
        for region in check.read_regions:
            reads = [m for m in mine if m.op == "read" and m.region == region]
            lag += _lag_stats(region, reads, first_ms, injected_ms, restored_ms)
            timeline += _timeline(region, reads, first_ms)
            rpos.append(region_rpo(region, writes, reads, failed_at_ms=injected_ms,
                                   serving_from_ms=serving.get(region)))
            if check.standby_writes:
                losses.append(region_write_loss(
                    region, [m for m in mine if m.op == "standby-write" and m.region == region],
                    [m for m in mine if m.op == "confirm" and m.region == region], failed_at_ms=injected_ms,
                    serving_from_ms=serving.get(region), restored_ms=restored_ms,
                    settle_s=next((s.p99_s or 0.0 for s in lag if s.region == region and s.phase == "baseline"),
                                  0.0)))
        results.append(DataCheckResult(check=check.name, kind=check.kind, interval_s=check.interval,
                                       writes=len(writes), acknowledged=sum(1 for w in writes if w.ok), lag=lag,
                                       timeline=timeline, rpo=rpos, write_loss=losses,
                                       marker_keys=sorted(marker_keys)))
    return results


def _pointer(results: Sequence[DataCheckResult], check: str | None, from_ms: float | None = None,
             to_ms: float | None = None) -> EvidencePointer:
    keys = sorted({key for result in results for key in result.marker_keys})
    return EvidencePointer(target=f"dataCheck:{check}" if check else "dataChecks", from_ms=from_ms, to_ms=to_ms,
                           sample_keys=keys)


@rule("RPO: for each data check and each region that answered the entrypoint after the injection, the span of "
      "acknowledged writes it did not hold when it started serving (the middle of its bracket); the worst must be "
      "at most the objective. No markers, no failover to a read region, or no read around the takeover: "
      "INCONCLUSIVE, never 0.")
def rpo_finding(results: Sequence[DataCheckResult], objective_s: float) -> Finding:
    title = f"Data lost at failover (RPO) at most {objective_s:g} s"
    measured = [(result, rpo) for result in results for rpo in result.rpo if rpo.seconds is not None]
    notes = [f"{result.check}/{rpo.region}: {rpo.note}" for result in results for rpo in result.rpo]
    if not measured:
        return Finding(id="rpo", title=title, measured=None, unit="s", threshold=objective_s, status="INCONCLUSIVE",
                       detail="; ".join(notes) or "no data check wrote a marker", evidence=_pointer(results, None),
                       samples=0, required_samples=1)
    result, worst = max(measured, key=lambda item: item[1].seconds or 0.0)
    status: Status = "FAIL" if (worst.seconds or 0.0) > objective_s else "PASS"
    if status == "PASS" and len(measured) < sum(len(r.rpo) for r in results):
        status = "INCONCLUSIVE"  # a region that took over was not measured: the worst may be missing
    return Finding(id="rpo", title=title, measured=worst.seconds, unit="s", threshold=objective_s, status=status,
                   detail="; ".join(notes), evidence=_pointer(results, result.check, worst.failed_at_ms,
                                                              worst.serving_from_ms),
                   samples=len(measured), required_samples=1)


@rule(f"Replication lag p99: for each data check and read region, the nearest-rank p99 of the lag of the reads "
      f"before the fault (now - newest marker visible) must be at most the objective; a region needs "
      f"{LAG_REQUIRED_READS} reads to be judged, else INCONCLUSIVE.")
def replication_lag_finding(results: Sequence[DataCheckResult], objective_s: float) -> Finding:
    title = f"Replication lag p99 before the fault at most {objective_s:g} s"
    baseline = [(result, stats) for result in results for stats in result.lag if stats.phase == "baseline"]
    judged = [(r, s) for r, s in baseline if s.reads >= LAG_REQUIRED_READS and s.p99_s is not None]
    texts = [f"{r.check}/{s.region}: p99 {s.p99_s if s.p99_s is not None else '-'} s over {s.reads} reads"
             for r, s in baseline]
    valued = [(r, s) for r, s in baseline if s.p99_s is not None]
    headline = max(judged or valued, key=lambda item: item[1].p99_s or 0.0, default=None)
    if any((s.p99_s or 0.0) > objective_s for _, s in judged):
        status: Status = "FAIL"
    elif baseline and len(judged) == len(baseline):
        status = "PASS"
    else:
        status = "INCONCLUSIVE"
    return Finding(id="replicationLagP99", title=title, measured=headline[1].p99_s if headline else None, unit="s",
                   threshold=objective_s, status=status, detail="; ".join(texts) or "no read of any region",
                   evidence=_pointer(results, headline[0].check if headline else None),
                   required_samples=LAG_REQUIRED_READS, samples=min((s.reads for _, s in baseline), default=0))


@rule("Write loss on failback (data checks with standbyWrites): every marker a region that took over acknowledged "
      "while it served (from its first answer at the entrypoint after the injection to the restore's send) must be "
      "seen in the primary by the window's end; one looked for after the restore (plus the region's replication "
      "lag p99 before the fault) and never seen there is lost, "
      "and any loss FAILs. No failover to a read region, no restore, no marker taken while serving, or one never "
      "looked for after the restore: INCONCLUSIVE, never 0.")
def write_loss_finding(results: Sequence[DataCheckResult]) -> Finding:
    title = "Writes the standby took while serving reached the primary after failback"
    losses = [(result, loss) for result in results for loss in result.write_loss]
    measured = [(result, loss) for result, loss in losses if loss.lost is not None]
    detail = "; ".join(f"{result.check}/{loss.region}: {loss.note}" for result, loss in losses)
    if not measured:
        return Finding(id="writeLossOnFailback", title=title, measured=None, unit="markers", threshold=0,
                       status="INCONCLUSIVE", detail=detail or "no data check wrote in a standby",
                       evidence=_pointer(results, None), samples=0, required_samples=1)
    result, worst = max(measured, key=lambda item: item[1].lost or 0)
    lost = sum(loss.lost or 0 for _, loss in measured)
    status: Status = "FAIL" if lost else "PASS" if len(measured) == len(losses) else "INCONCLUSIVE"
    return Finding(id="writeLossOnFailback", title=title, measured=lost, unit="markers", threshold=0,
                   status=status, detail=detail,
                   evidence=_pointer(results, result.check, worst.until_ms, worst.last_look_ms),
                   samples=sum(loss.written for _, loss in measured), required_samples=1)
