"""The posture audit's mTLS rule follows Istio's PeerAuthentication precedence, and posture.require turns an
audited item into a finding that gates the verdict."""

from __future__ import annotations

from typing import Any

from livefire.assessment import with_posture
from livefire.assessment.posture import posture_findings
from livefire.mesh.posture import mtls_finding
from tests.unit.assessment.scenarios import failover_entry, make_spec, regions, run, status

LABELS = {"app": "payments"}


def policy(name: str, namespace: str, mode: str, selector: dict[str, str] | None = None,
           created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    spec: dict[str, Any] = {"mtls": {"mode": mode}}
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": created}, "spec": spec}


def decide(namespace_policies: list[dict[str, Any]], root_policies: list[dict[str, Any]]) -> tuple[bool, str]:
    finding = mtls_finding(namespace_policies, root_policies, "payments", "istio-system", LABELS)
    return finding.ok, finding.detail


def test_a_mesh_wide_strict_policy_in_the_root_namespace_passes() -> None:
    ok, detail = decide([], [policy("default", "istio-system", "STRICT")])

    assert ok is True
    assert detail == "mesh-wide istio-system/default: STRICT"


def test_a_permissive_namespace_policy_overrides_the_mesh_wide_strict_one() -> None:
    ok, detail = decide([policy("default", "payments", "PERMISSIVE")], [policy("default", "istio-system", "STRICT")])

    assert ok is False
    assert detail == "namespace payments/default: PERMISSIVE"


def test_a_workload_policy_overrides_the_namespace_and_an_unset_mode_inherits() -> None:
    strict_workload = [policy("payments", "payments", "STRICT", {"app": "payments"}),
                       policy("default", "payments", "PERMISSIVE")]
    unset_workload = [policy("payments", "payments", "UNSET", {"app": "payments"}),
                      policy("default", "payments", "PERMISSIVE")]
    other_workload = [policy("ledger", "payments", "STRICT", {"app": "ledger"}),
                      policy("default", "payments", "PERMISSIVE")]

    assert decide(strict_workload, [])[0] is True
    assert decide(unset_workload, []) == (False, "namespace payments/default: PERMISSIVE over workload "
                                                 "payments/payments: UNSET")
    assert decide(other_workload, [])[0] is False


def test_without_any_policy_the_default_is_permissive() -> None:
    ok, detail = decide([], [])

    assert ok is False
    assert "Istio's default is PERMISSIVE" in detail


def test_the_oldest_of_two_namespace_policies_applies() -> None:
    policies = [policy("newer", "payments", "PERMISSIVE", created="2026-02-01T00:00:00Z"),
                policy("older", "payments", "STRICT", created="2026-01-01T00:00:00Z")]

    assert decide(policies, [])[0] is True


def test_the_root_namespace_is_configurable() -> None:
    finding = mtls_finding([], [policy("default", "mesh-root", "STRICT")], "payments", "mesh-root", LABELS)

    assert finding.ok is True


def audit(region: str, check: str, ok: bool, skipped: str | None = None) -> dict[str, Any]:
    findings = [] if skipped else [{"check": check, "ok": ok, "detail": f"{check} in {region}"}]
    return {"region": region, "cluster": f"sandbox:{region}", "namespace": "payments", "host": "payments",
            "findings": findings, "skipped": skipped}


def test_a_required_item_failing_in_one_region_fails_its_finding_and_the_verdict() -> None:
    spec = make_spec(posture={"require": ["mtlsStrict"]})
    audits = [audit("us-east-1", "mtls-strict", True), audit("us-west-2", "mtls-strict", False)]

    result = with_posture(run(spec, [*regions(), *failover_entry()]), spec, audits)

    finding = result.finding("postureMtlsStrict")
    assert finding is not None
    assert (finding.status, finding.measured, finding.threshold) == ("FAIL", 1.0, 2.0)
    assert "us-west-2: mtls-strict in us-west-2" in finding.detail
    assert result.verdict == "FAIL"


def test_a_region_that_could_not_be_audited_leaves_a_required_item_inconclusive() -> None:
    spec = make_spec(posture={"require": ["outlierDetection", "localityFailover"]})
    audits = [audit("us-east-1", "outlier-detection", True), audit("us-west-2", "", False, skipped="403")]

    findings = posture_findings(spec, audits)

    assert [(f.id, f.status) for f in findings] == [
        ("postureOutlierDetection", "INCONCLUSIVE"), ("postureLocalityFailover", "INCONCLUSIVE"),
    ]


def test_posture_is_reported_but_judges_nothing_unless_required() -> None:
    audits = [audit("us-east-1", "mtls-strict", False)]

    result = with_posture(run(make_spec(), [*regions(), *failover_entry()]), make_spec(), audits)

    assert not [f for f in result.findings if f.id.startswith("posture")]
    assert result.verdict == "PASS", result.verdict_reason


def test_the_evidence_step_folds_required_posture_into_the_verdict() -> None:
    spec = make_spec(posture={"require": ["mtlsStrict"]})
    judged = run(spec, [*regions(), *failover_entry()])

    folded = with_posture(judged, spec, [audit("us-east-1", "mtls-strict", False)])

    assert judged.verdict == "PASS"
    assert (folded.verdict, folded.verdict_reason) == ("FAIL", "failed: postureMtlsStrict")
    assert with_posture(folded, spec, [audit("us-east-1", "mtls-strict", True)]).verdict == "PASS"


def test_a_required_item_with_no_audit_at_all_leaves_the_drill_inconclusive() -> None:
    spec = make_spec(posture={"require": ["localityFailover"]})

    result = with_posture(run(spec, [*regions(), *failover_entry()]), spec, None)

    assert status(result, "postureLocalityFailover") == "INCONCLUSIVE"
    assert result.verdict == "INCONCLUSIVE"
