"""Synthetic sample streams whose ground truth is known exactly, for the assessment's unit tests.

Times in the scenarios are milliseconds relative to T0; every stream is built by ``stream`` from pieces
``(from_ms, to_ms, state)`` where state is the region that answered or FAIL. Canary and blue-green streams are
built by ``versions`` from pieces whose ``pick(at)`` gives the (ok, version) of each probe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from livefire.assessment import Assessment, assess
from livefire.assessment.columns import SampleColumns
from livefire.contracts import Plan, ProbeTarget, Sample
from livefire.spec import DrillSpec, Vantage, parse_spec

T0 = 1_700_000_000_000.0
USE1, USW2, FAIL = "us-east-1", "us-west-2", "FAIL"
INJECT, RESTORE, END = 3000, 23000, 43000
KEYS = [
    "drills/payments/d-1/samples/local/baseline-0000.jsonl.gz",
    "drills/payments/d-1/samples/local/drill-0000.jsonl.gz",
    "drills/payments/d-1/samples/far/drill-0000.jsonl.gz",
]


def make_spec(**overrides: Any) -> DrillSpec:
    document: dict[str, Any] = {
        "apiVersion": "livefire/v1",
        "kind": "Drill",
        "metadata": {"name": "payments-ap", "service": "payments"},
        "pattern": "active-passive",
        "regions": [
            {"name": USE1, "role": "primary", "cluster": {"sandbox": "use1"}, "endpoint": "http://use1/healthz"},
            {"name": USW2, "role": "standby", "cluster": {"sandbox": "usw2"}, "endpoint": "http://usw2/healthz"},
        ],
        "entrypoint": "http://entry/healthz",
        "fault": {
            "kind": "http-abort",
            "region": USE1,
            "target": {"namespace": "payments", "virtualService": "payments"},
            "abort": {"httpStatus": 503, "percent": 100},
        },
        "phases": {"baseline": "3s", "lead": "0s", "fault": "20s", "recovery": "20s"},
        "probes": {"interval": "100ms", "burstInterval": "10ms", "sustain": "1s"},
        "objectives": {"rto": "5s", "failbackRto": "15s", "availability": 90},
        "guardrails": {"allowedNamespaces": ["payments"]},
    }
    document.update(overrides)
    return parse_spec(document)


def active_active_spec(**objectives: Any) -> DrillSpec:
    """Both regions active, the fault on us-east-1."""
    return make_spec(
        pattern="active-active",
        regions=[
            {"name": USE1, "role": "active", "cluster": {"sandbox": "use1"}, "endpoint": "http://use1/healthz"},
            {"name": USW2, "role": "active", "cluster": {"sandbox": "usw2"}, "endpoint": "http://usw2/healthz"},
        ],
        objectives=objectives,
    )


def make_plan(spec: DrillSpec, vantages: Iterable[str] = ("local",)) -> Plan:
    targets = [ProbeTarget(name="entry", url=spec.entrypoint, region=None, role="entrypoint")]
    targets += [
        ProbeTarget(name=r.name.replace("-", ""), url=r.endpoint, region=r.name, role=r.role) for r in spec.regions
    ]
    return Plan(
        drill_id="d-1",
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:drill:d-1",
        service=spec.metadata.service,
        pattern=spec.pattern,
        mode="live",
        spec_key="drills/payments/d-1/spec.json",
        spec_digest=spec.digest(),
        evidence_prefix="drills/payments/d-1/",
        started_at_ms=int(T0),
        vantages=[Vantage(name=v, region=USE1) for v in vantages],
        targets=targets,
        faults=[],
        baseline_seconds=3.0,
        observe_seconds=40.0,
        lead_wait_seconds=0,
        fault_wait_seconds=20,
    )


def stream(
    target: str,
    *pieces: tuple[int, int, str],
    step: int = 100,
    vantage: str = "local",
    latency: float = 20.0,
) -> list[Sample]:
    """Probes every ``step`` ms over each piece; a piece's state is the serving region or FAIL (a 503)."""
    samples: list[Sample] = []
    for start, end, state in pieces:
        for at in range(start, end, step):
            failed = state == FAIL
            samples.append(
                Sample(
                    target=target,
                    vantage=vantage,
                    seq=len(samples),
                    scheduled_ms=T0 + at,
                    sent_ms=T0 + at,
                    ended_ms=T0 + at + latency,
                    ok=not failed,
                    status=503 if failed else 200,
                    latency_ms=latency,
                    served_by=None if failed else state,
                    version="v1",
                )
            )
    return samples


def regions(vantage: str = "local", *, faulted_fails: bool = True) -> list[Sample]:
    use1_fault = FAIL if faulted_fails else USE1
    return [
        *stream("useast1", (0, INJECT, USE1), (INJECT, RESTORE, use1_fault), (RESTORE, END, USE1), vantage=vantage),
        *stream("uswest2", (0, END, USW2), vantage=vantage),
    ]


def failover_entry(
    outage_end: int = 5200, failback_at: int = 25000, vantage: str = "local", step: int = 100
) -> list[Sample]:
    """Primary until just after the injection, fails from 3100 to outage_end, standby, then primary again."""
    return stream(
        "entry",
        (0, INJECT + 100, USE1),
        (INJECT + 100, outage_end, FAIL),
        (outage_end, failback_at, USW2),
        (failback_at, END, USE1),
        vantage=vantage,
        step=step,
    )


def run(spec: DrillSpec, samples: list[Sample], vantages: Iterable[str] = ("local",), **times: Any) -> Assessment:
    timeline = {"injected_at_ms": T0 + INJECT, "restored_at_ms": T0 + RESTORE} | times
    return assess(spec, make_plan(spec, vantages), SampleColumns.of(samples), sample_keys=KEYS, **timeline)


def status(assessment: Assessment, finding_id: str) -> str:
    finding = assessment.finding(finding_id)
    assert finding is not None, f"no finding {finding_id}"
    return finding.status


Pick = Callable[[int], tuple[bool, str]]


def versions(target: str, *pieces: tuple[int, int, Pick], step: int = 100, burst: bool = False) -> list[Sample]:
    """Probes every ``step`` ms; ``pick(at)`` gives (ok, version) of the probe sent at ``at`` ms, served by USE1.

    A failure still names its version, as the sandbox's broken canary does (an app error, not the mesh)."""
    samples: list[Sample] = []
    for start, end, pick in pieces:
        for at in range(start, end, step):
            ok, version = pick(at)
            samples.append(
                Sample(
                    target=target, vantage="local", seq=len(samples), scheduled_ms=T0 + at, sent_ms=T0 + at,
                    ended_ms=T0 + at + 20, ok=ok, status=200 if ok else 500, error=None if ok else "http_5xx",
                    latency_ms=20.0, served_by=USE1, version=version, burst=burst,
                )
            )
    return samples


def only(version: str) -> Pick:
    return lambda _at: (True, version)


def canary_every_fifth(failing_canaries: int = 2) -> Pick:
    """v2 for the probe at every 500 ms + 200 (20%); every ``failing_canaries``-th v2 answer fails."""

    def pick(at: int) -> tuple[bool, str]:
        if at % 500 != 200:
            return True, "v1"
        return (at // 500) % failing_canaries != 0, "v2"

    return pick


def shift_spec(pattern: str, weights: dict[str, int], **objectives: Any) -> DrillSpec:
    return make_spec(
        pattern=pattern,
        regions=[{"name": USE1, "role": "primary", "cluster": {"sandbox": "use1"}, "endpoint": "http://use1/healthz"}],
        fault={
            "kind": "traffic-shift", "region": USE1, "weights": weights,
            "target": {"namespace": "payments", "virtualService": "payments"},
        },
        objectives={"failbackRto": "5s", **objectives},
    )


def canary_run(during: Pick, after: tuple[int, Pick] = (RESTORE + 300, only("v1")), **objectives: Any) -> Assessment:
    spec = shift_spec("canary", {"v1": 80, "v2": 20}, **objectives)
    revert_at, settled = after
    pieces = [(0, INJECT + 200, only("v1")), (INJECT + 200, revert_at, during), (revert_at, END, settled)]
    return run(spec, [*versions("entry", *pieces), *versions("useast1", *pieces)])


def blue_green_run(entry: list[tuple[int, int, Pick]], **objectives: Any) -> Assessment:
    spec = shift_spec("blue-green", {"v1": 0, "v2": 100}, **objectives)
    region = [
        (0, INJECT + 100, only("v1")), (INJECT + 100, RESTORE + 100, only("v2")), (RESTORE + 100, END, only("v1")),
    ]
    return run(spec, [*versions("entry", *entry), *versions("useast1", *region)])


CLEAN_CUTOVER = [
    (0, INJECT + 100, only("v1")), (INJECT + 100, RESTORE + 400, only("v2")), (RESTORE + 400, END, only("v1")),
]
