"""Each recommendation rule fires on the measurements that justify it, with their numbers and the Istio YAML, and
stays silent when the drill met its objectives with margin."""

from __future__ import annotations

from typing import Any

import yaml

from livefire.assessment import Assessment, with_posture
from livefire.assessment.model import DataCheckResult, LagStats
from livefire.assessment.recommendations import recommend, suggested_outlier
from livefire.spec import DrillSpec
from tests.unit.assessment.scenarios import (
    FAIL,
    INJECT,
    RESTORE,
    USE1,
    USW2,
    canary_every_fifth,
    canary_run,
    failover_entry,
    make_spec,
    regions,
    run,
    stream,
)

SLOW_OUTLIER = {"consecutive5xxErrors": 5, "interval": "10s", "baseEjectionTime": "30s"}
QUICK_OUTLIER = {"consecutive5xxErrors": 3, "interval": "1s", "baseEjectionTime": "5s"}


def audit(region: str, outlier: dict[str, Any] | None = None, *, mtls: bool = True,
          rule_name: str | None = "payments") -> dict[str, Any]:
    """One region's posture audit as the Evidence step stores it (posture.json)."""
    findings: list[dict[str, Any]] = []
    if rule_name is not None:
        findings.append({"check": "destination-rule", "ok": True, "detail": f"DestinationRule payments/{rule_name}",
                         "settings": {"name": rule_name, "host": "payments"}})
    findings.append({"check": "outlier-detection", "ok": outlier is not None, "settings": outlier or {},
                     "detail": "set" if outlier else f"{rule_name} has no trafficPolicy.outlierDetection"})
    findings.append({"check": "mtls-strict", "ok": mtls,
                     "detail": "namespace payments/default: STRICT" if mtls else "namespace payments/default: "
                                                                                 "PERMISSIVE"})
    return {"region": region, "cluster": f"sandbox:{region}", "namespace": "payments", "host": "payments",
            "findings": findings}


def ids(spec: DrillSpec, assessment: Assessment, audits: list[dict[str, Any]] | None) -> list[str]:
    return [r.id for r in recommend(spec, assessment, audits)]


def passing_failover() -> tuple[DrillSpec, Assessment]:
    """RTO 2.2 s (objective 5 s), failback 2 s (objective 15 s): both within half their objective."""
    spec = make_spec()
    return spec, run(spec, [*regions(), *failover_entry(outage_end=5200, failback_at=25000)])


def test_a_region_without_outlier_detection_gets_it_added_with_the_yaml() -> None:
    spec = make_spec()
    never_failed_over = run(spec, [*regions(), *stream("entry", (0, INJECT + 100, USE1), (INJECT + 100, RESTORE, FAIL),
                                                       (RESTORE, 43000, USE1))])

    found = recommend(spec, never_failed_over, [audit(USE1, None), audit(USW2, QUICK_OUTLIER)])

    assert [(r.id, r.region) for r in found] == [("addOutlierDetection", USE1)]
    assert "standbyServedDuringFault FAIL" in found[0].because
    assert found[0].yaml is not None
    patch = yaml.safe_load(found[0].yaml)
    assert found[0].yaml.startswith("# kubectl --context <sandbox:us-east-1> -n payments patch destinationrule "
                                    "payments --type merge")
    assert patch == {"spec": {"trafficPolicy": {"outlierDetection": {
        "consecutive5xxErrors": 5, "interval": "2s", "baseEjectionTime": "7s"}}}}


def test_a_region_with_no_destination_rule_gets_a_whole_one() -> None:
    spec, judged = passing_failover()

    found = recommend(spec, judged, [audit(USW2, None, rule_name=None)])

    document = yaml.safe_load(found[0].yaml or "")
    assert (document["kind"], document["spec"]["host"]) == ("DestinationRule", "payments")
    assert "outlierDetection" in document["spec"]["trafficPolicy"]


def test_regions_with_outlier_detection_need_nothing_added() -> None:
    spec, judged = passing_failover()

    assert ids(spec, judged, [audit(USE1, QUICK_OUTLIER), audit(USW2, QUICK_OUTLIER)]) == []


def test_a_slow_rto_with_slow_outlier_detection_asks_for_faster_ejection() -> None:
    spec = make_spec()
    slow = run(spec, [*regions(), *failover_entry(outage_end=8000)])  # RTO 5 s against 5 s

    found = recommend(spec, slow, [audit(USE1, SLOW_OUTLIER)])

    assert [r.id for r in found] == ["fasterEjection"]
    assert "RTO 5.000 s is over 0.5 x the objective 5 s" in found[0].because
    assert "consecutive5xxErrors 5, interval 10s" in found[0].because
    patch = yaml.safe_load(found[0].yaml or "")
    assert patch["spec"]["trafficPolicy"]["outlierDetection"] == {"consecutive5xxErrors": 5, "interval": "2s"}


def test_a_slow_rto_is_not_blamed_on_outlier_detection_that_is_already_quick() -> None:
    spec = make_spec()
    slow = run(spec, [*regions(), *failover_entry(outage_end=8000)])

    assert ids(spec, slow, [audit(USE1, QUICK_OUTLIER)]) == []


def test_a_failback_held_by_a_long_base_ejection_time_asks_for_a_shorter_one() -> None:
    spec = make_spec()
    late = run(spec, [*regions(), *failover_entry(failback_at=RESTORE + 11000)])  # failback 11 s against 15 s

    found = recommend(spec, late, [audit(USE1, {**QUICK_OUTLIER, "baseEjectionTime": "10s"})])

    assert [r.id for r in found] == ["shorterEjection"]
    assert "stays ejected at least its baseEjectionTime 10s" in found[0].because
    assert yaml.safe_load(found[0].yaml or "")["spec"]["trafficPolicy"]["outlierDetection"] == {
        "baseEjectionTime": "7s"}


def test_a_quick_failback_keeps_its_base_ejection_time() -> None:
    spec, judged = passing_failover()

    assert ids(spec, judged, [audit(USE1, {**QUICK_OUTLIER, "baseEjectionTime": "10s"})]) == []


def test_a_permissive_namespace_gets_a_strict_peer_authentication() -> None:
    spec, judged = passing_failover()

    found = recommend(spec, judged, [audit(USE1, QUICK_OUTLIER), audit(USW2, QUICK_OUTLIER, mtls=False)])

    assert [(r.id, r.region) for r in found] == [("strictMtls", USW2)]
    assert "PERMISSIVE" in found[0].because
    document = yaml.safe_load(found[0].yaml or "")
    assert (document["kind"], document["spec"]) == ("PeerAuthentication", {"mtls": {"mode": "STRICT"}})


def test_no_audit_means_no_posture_recommendation() -> None:
    spec, judged = passing_failover()

    assert ids(spec, judged, None) == []


def test_a_drifted_canary_split_is_reported_with_its_shares() -> None:
    drifted = canary_run(lambda at: (True, "v2" if at % 200 == 0 else "v1"))  # 50% v2 against a 20% weight

    found = recommend(make_spec(), drifted, [])

    assert [r.id for r in found] == ["canarySplitDrift"]
    assert "against weight 20%" in found[0].because


def test_a_canary_on_its_weights_is_left_alone() -> None:
    assert ids(make_spec(), canary_run(canary_every_fifth(failing_canaries=10)), []) == []


def with_lag(p99_s: float) -> tuple[DrillSpec, Assessment]:
    """A failover drill with an RPO objective of 10 s whose data check saw ``p99_s`` of lag before the fault."""
    spec = make_spec(objectives={"rto": "5s", "rpo": "10s"}, dataChecks=[{
        "name": "orders", "kind": "http", "http": {"writeUrl": "http://markers/m", "readUrls": {USW2: "http://r/m"}}}])
    lag = [LagStats(region=USW2, phase="baseline", reads=200, failed_reads=0, p50_s=p99_s / 2, p99_s=p99_s,
                    max_s=p99_s)]
    check = DataCheckResult(check="orders", kind="http", interval_s=0.5, writes=80, acknowledged=80, lag=lag,
                            timeline=[], rpo=[], marker_keys=[])
    judged = run(spec, [*regions(), *failover_entry()])
    return spec, judged.model_copy(update={"data_checks": [check]})


def test_replication_lag_near_the_rpo_objective_is_flagged() -> None:
    spec, judged = with_lag(8.2)

    found = recommend(spec, judged, [])

    assert [(r.id, r.region) for r in found] == [("replicationLagNearRpo", USW2)]
    assert "p99 replication lag to us-west-2 8.200 s over 200 reads" in found[0].because
    assert found[0].yaml is None


def test_replication_lag_well_inside_the_rpo_objective_is_not() -> None:
    spec, judged = with_lag(1.0)

    assert ids(spec, judged, []) == []


def test_suggested_outlier_never_loosens_the_current_settings() -> None:
    spec = make_spec(objectives={"rto": "60s", "failbackRto": "2m"})
    _, judged = passing_failover()

    assert suggested_outlier(spec, judged, QUICK_OUTLIER) == QUICK_OUTLIER


def test_with_posture_adds_the_recommendations_to_the_assessment() -> None:
    spec, judged = passing_failover()

    result = with_posture(judged, spec, [audit(USE1, None)])

    assert [r.id for r in result.recommendations] == ["addOutlierDetection"]
    assert result.verdict == judged.verdict
    assert with_posture(judged, spec, [audit(USE1, QUICK_OUTLIER)]) is judged
