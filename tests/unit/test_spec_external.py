"""The fault kinds outside the mesh (fis, webhook, external): their spec sections, what the Plan makes of them,
and how an external drill's timeline is anchored on what was observed (synthetic samples, known ground truth)."""

from __future__ import annotations

from typing import Any

import pytest

from livefire.assessment import Assessment, assess, observed_incident
from livefire.assessment.columns import SampleColumns
from livefire.config import Settings
from livefire.contracts import Plan, ProbeTarget, Sample
from livefire.errors import InvalidDrillSpec
from livefire.evidence.publish import audit_mesh
from livefire.planning import check_blast_radius, planned_faults
from livefire.spec import DrillSpec, Vantage, parse_spec
from livefire.spec.execution import anchor_at

T0 = 1_764_000_000_000.0
USE1, USW2, FAIL = "us-east-1", "us-west-2", "FAIL"
FIS = {"kind": "fis", "region": USE1, "fis": {"experimentTemplateId": "EXT1a2b3c4d5e6f7g8"}}
WEBHOOK = {"kind": "webhook", "region": USE1, "webhook": {
    "inject": {"url": "https://ops.example.com/switch", "query": {"to": "usw2"}, "headersSecret": "ops/token",
               "body": {"a": 1}},
    "rollback": {"url": "https://ops.example.com/switch", "query": {"to": "use1"}, "method": "PUT"},
}}
EXTERNAL = {"kind": "external", "region": USE1}
NO_GUARDS = Settings(bucket="b", table="t", event_bus="default", allowed_namespaces=(), allowed_clusters=())


def document(fault: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A drill whose regions name no cluster: only endpoints."""
    return {
        "apiVersion": "livefire/v1", "kind": "Drill", "metadata": {"name": "audit", "service": "payments"},
        "pattern": "active-passive",
        "regions": [{"name": USE1, "role": "primary", "endpoint": "https://use1.example.com/healthz"},
                    {"name": USW2, "role": "standby", "endpoint": "https://usw2.example.com/healthz"}],
        "entrypoint": "https://payments.example.com/healthz", "fault": fault,
        "phases": {"fault": "20s", "recovery": "20s"},
        "probes": {"interval": "100ms", "burstInterval": "10ms", "sustain": "1s"},
        "objectives": {"rto": "5s"},
    } | overrides


def refusal(doc: dict[str, Any]) -> str:
    with pytest.raises(InvalidDrillSpec) as refused:
        parse_spec(doc)
    return str(refused.value)


# ---------------------------------------------------------------- the spec


@pytest.mark.parametrize("fault", [FIS, WEBHOOK, EXTERNAL], ids=lambda f: f["kind"])
def test_a_fault_outside_the_mesh_needs_no_cluster_no_target_and_no_namespaces(fault: dict[str, Any]) -> None:
    spec = parse_spec(document(fault))

    assert spec.fault.target is None and not spec.fault.in_mesh
    assert parse_spec(spec.to_document()).digest() == spec.digest()  # the normalized form reads back the same


def test_a_webhook_call_keeps_its_own_query_apart_and_keeps_no_answer_unless_asked() -> None:
    spec = parse_spec(document(WEBHOOK))

    assert spec.fault.webhook is not None
    inject = spec.fault.webhook.inject
    assert (inject.url, inject.query, inject.store_response) == ("https://ops.example.com/switch", {"to": "usw2"},
                                                                 False)


@pytest.mark.parametrize(("call", "message"), [
    ({"url": "https://ops.example.com/switch?token=abc"}, "fault.webhook.inject.url: must not carry a query string"),
    ({"url": "https://ops.example.com/switch#abc"}, "fault.webhook.inject.url: must not carry a query string"),
    ({"url": "http://ops.example.com/switch", "headersSecret": "ops/token"},
     "fault.webhook.inject.url: must be https when headersSecret is given"),
    ({"url": "https://bot:t0k3n@ops.example.com/switch"}, "fault.webhook.inject.url: must not carry credentials"),
], ids=["query-in-url", "fragment", "secret-over-http", "credentials"])
def test_a_webhook_call_that_could_leak_a_secret_is_refused_by_its_path(call: dict[str, Any], message: str) -> None:
    fault = {**WEBHOOK, "webhook": {**WEBHOOK["webhook"], "inject": call}}  # type: ignore[dict-item]

    refused = refusal(document(fault))

    assert refused.startswith(message) and "abc" not in refused and "t0k3n" not in refused


def test_the_fis_section_has_bounded_waits_and_defaults_the_region_to_the_faults() -> None:
    spec = parse_spec(document(FIS))

    assert spec.fault.fis is not None
    assert (spec.fault.fis.region, spec.fault.fis.start_timeout, spec.fault.fis.stop_timeout) == (None, 60.0, 60.0)
    slow = {**FIS, "fis": {**FIS["fis"], "stopTimeout": "2m"}}  # type: ignore[dict-item]
    assert refusal(document(slow)) == "fault.fis.stopTimeout: must be at most 90s, one step's time limit (got '2m')"


@pytest.mark.parametrize(("fault", "message"), [
    ({"kind": "fis", "region": USE1}, "fault: kind fis needs a fis section (experimentTemplateId)"),
    ({**FIS, "fis": {"experimentTemplateId": "EXT bad!"}}, "fault.fis.experimentTemplateId: String should match"),
    ({"kind": "webhook", "region": USE1, "webhook": {"inject": {"url": "https://a/b"}}},
     "fault.webhook.rollback: Field required"),
    ({**WEBHOOK, "webhook": {"inject": {"url": "ftp://a/b"}, "rollback": {"url": "https://a/c"}}},
     "fault.webhook.inject.url: must be an http(s) URL like https://host/path (got 'ftp://a/b')"),
    ({**EXTERNAL, "fis": FIS["fis"]}, "fault: fis is only valid with kind fis, not external"),
    ({**EXTERNAL, "target": {"namespace": "payments", "virtualService": "p"}},
     "fault.target: kind external touches no mesh object: remove target"),
], ids=["fis-section", "template-id", "webhook-rollback", "webhook-url", "fis-on-external", "target-on-external"])
def test_a_malformed_section_of_a_fault_outside_the_mesh_is_refused_by_its_path(fault: dict[str, Any],
                                                                               message: str) -> None:
    assert refusal(document(fault)).startswith(message)


def test_a_mesh_fault_still_needs_its_target_a_cluster_and_its_namespace_allowed() -> None:
    abort = {"kind": "http-abort", "region": USE1, "abort": {}}
    target = {"namespace": "payments", "virtualService": "payments"}

    assert refusal(document(abort)).startswith("fault.target: required for kind http-abort")
    assert "has no cluster to inject into" in refusal(document({**abort, "target": target}))
    clustered = document({**abort, "target": target})
    clustered["regions"][0]["cluster"] = {"eks": "payments-use1", "region": USE1}
    assert "guardrails.allowedNamespaces" in refusal(clustered)


def test_the_report_names_what_a_fault_outside_the_mesh_acts_on() -> None:
    assert parse_spec(document(FIS)).fault.subject == "FIS experiment template EXT1a2b3c4d5e6f7g8"
    assert parse_spec(document(WEBHOOK)).fault.subject == "webhook POST https://ops.example.com/switch"
    assert parse_spec(document(EXTERNAL)).fault.subject == "observed only: nothing injected"


def test_the_posture_audit_is_skipped_for_a_fault_outside_the_mesh_and_says_why() -> None:
    audits = audit_mesh(parse_spec(document(FIS)), {})

    assert audits is not None and [a.region for a in audits] == [USE1, USW2]
    assert all("fault kind fis touches no mesh object" in (a.skipped or "") and a.findings == [] for a in audits)


# ---------------------------------------------------------------- the plan


def test_the_plan_leases_the_template_or_the_webhook_and_plans_nothing_for_an_external_drill() -> None:
    [fis] = planned_faults(parse_spec(document(FIS)))
    [hook] = planned_faults(parse_spec(document(WEBHOOK)))

    assert (fis.fault_id, fis.object_kind, fis.cluster, fis.lease_key) == (
        "fis-us-east-1", "FisExperiment", None, "fis:us-east-1/EXT1a2b3c4d5e6f7g8")
    assert (hook.object_kind, hook.lease_key) == ("Webhook", "webhook:https://ops.example.com/switch")
    assert planned_faults(parse_spec(document(EXTERNAL))) == []
    check_blast_radius(parse_spec(document(FIS)), [fis], NO_GUARDS)  # no namespace to allow: nothing refused


def test_anchor_at_is_taken_only_for_external_drills_and_only_as_epoch_milliseconds() -> None:
    external, fis = parse_spec(document(EXTERNAL)), parse_spec(document(FIS))

    assert anchor_at({"spec": {}}, external) is None
    assert anchor_at({"anchorAt": 1764000000000}, external) == 1764000000000
    for wrong in (1764000000, "1764000000000", True, 1.5e12):
        with pytest.raises(InvalidDrillSpec, match=r"^anchorAt: must be an epoch time in milliseconds"):
            anchor_at({"anchorAt": wrong}, external)
    with pytest.raises(InvalidDrillSpec, match=r"^anchorAt: only valid with fault kind external"):
        anchor_at({"anchorAt": 1764000000000}, fis)


# ---------------------------------------------------------------- the assessment of an external drill


def make_plan(spec: DrillSpec, anchor: float | None = None) -> Plan:
    targets = [ProbeTarget(name="entry", url=spec.entrypoint, region=None, role="entrypoint"),
               ProbeTarget(name="useast1", url=spec.regions[0].endpoint, region=USE1, role="primary"),
               ProbeTarget(name="uswest2", url=spec.regions[1].endpoint, region=USW2, role="standby")]
    return Plan(
        drill_id="d-ext", execution_arn="arn:aws:states:us-east-1:123456789012:execution:drill:d-ext",
        service="payments", pattern=spec.pattern, mode="live", spec_key="k", spec_digest=spec.digest(),
        evidence_prefix="drills/payments/d-ext/", started_at_ms=int(T0), vantages=[Vantage(name="local", region=USE1)],
        targets=targets, faults=[], baseline_seconds=1.0, observe_seconds=40.0, lead_wait_seconds=0,
        fault_wait_seconds=20, anchor_at_ms=None if anchor is None else int(T0 + anchor),
    )


def stream(target: str, *pieces: tuple[int, int, str]) -> list[Sample]:
    """A probe every 100 ms over each piece (ms after T0); a piece is served by a region, or FAILs (503)."""
    return [
        Sample(target=target, vantage="local", seq=at // 100, scheduled_ms=T0 + at, sent_ms=T0 + at,
               ended_ms=T0 + at + 5, ok=state != FAIL, status=503 if state == FAIL else 200, latency_ms=5.0,
               served_by=None if state == FAIL else state)
        for start, end, state in pieces for at in range(start, end, 100)
    ]


def incident(primary_back: int = 9000) -> list[Sample]:
    """The primary fails from 2000 ms to ``primary_back``; the entrypoint fails 2100-2400, then the standby
    serves until 14000, then the primary again."""
    return [
        *stream("useast1", (0, 2000, USE1), (2000, primary_back, FAIL), (primary_back, 30000, USE1)),
        *stream("uswest2", (0, 30000, USW2)),
        *stream("entry", (0, 2100, USE1), (2100, 2400, FAIL), (2400, 14000, USW2), (14000, 30000, USE1)),
    ]


def judge(samples: list[Sample], anchor: float | None = None, **objectives: Any) -> Assessment:
    spec = parse_spec(document(EXTERNAL, objectives=objectives or {"rto": "5s", "failbackRto": "10s"}))
    return assess(spec, make_plan(spec, anchor), SampleColumns.of(samples), injected_at_ms=None,
                  restored_at_ms=None, sample_keys=[])


def test_an_external_drill_where_nothing_fails_is_inconclusive_and_says_so() -> None:
    quiet = [*stream("useast1", (0, 30000, USE1)), *stream("uswest2", (0, 30000, USW2)),
             *stream("entry", (0, 30000, USE1))]

    result = judge(quiet)

    assert result.verdict == "INCONCLUSIVE" and result.injected_at_ms is None
    finding = result.finding("faultTookEffect")
    assert finding is not None and finding.status == "INCONCLUSIVE"
    assert "nothing failed at the entrypoint or the endpoint of us-east-1" in finding.detail
    assert result.verdict_reason == finding.detail


def test_an_external_drill_anchors_on_the_first_failure_and_ends_when_the_region_recovers() -> None:
    result = judge(incident())

    assert result.injected_at_ms == T0 + 2000  # the primary's endpoint failed first
    assert result.restored_at_ms == T0 + 9000  # its own first sustained run of successes
    assert result.detection_seconds == 0.0 and result.entrypoint_detection_seconds == pytest.approx(0.1)
    assert result.rto_seconds == pytest.approx(0.4)  # first failure -> the standby's sustained run at 2400
    assert result.rto_bracket is not None and result.rto_bracket.last_failure_ms == T0 + 2300
    assert result.failback_seconds == pytest.approx(5.0)  # region back at 9000 -> primary serves at 14000
    assert result.verdict == "PASS", result.verdict_reason


def test_an_external_drill_anchored_by_the_execution_input_measures_detection_from_the_anchor() -> None:
    result = judge(incident(), anchor=1500)

    assert result.injected_at_ms == T0 + 1500
    assert result.detection_seconds == pytest.approx(0.5)
    assert result.rto_seconds == pytest.approx(0.9)


def test_an_incident_not_over_at_the_end_of_the_window_has_no_end_and_no_failback() -> None:
    samples = incident(primary_back=40000)

    assert observed_incident(parse_spec(document(EXTERNAL)), make_plan(parse_spec(document(EXTERNAL))),
                             SampleColumns.of(samples).groups) == (T0 + 2000, None)
    result = judge(samples, rto="5s")
    assert result.restored_at_ms is None and result.rto_seconds == pytest.approx(0.4)
    coverage = result.finding("sampleCoverage")
    assert coverage is not None and coverage.status == "PASS"  # no recovery phase is asked of an open incident


@pytest.mark.parametrize(("fault", "counted"), [(WEBHOOK, True), ({
    "kind": "http-abort", "region": USE1, "abort": {}, "target": {"namespace": "payments", "virtualService": "p"},
}, False)], ids=["webhook", "mesh"])
def test_a_recovery_served_by_the_faulted_region_counts_only_for_a_fault_outside_the_mesh(
        fault: dict[str, Any], counted: bool) -> None:
    doc = document(fault, guardrails={"allowedNamespaces": ["payments"]})
    for region in doc["regions"]:
        region["cluster"] = {"eks": f"payments-{region['name']}", "region": region["name"]}
    spec = parse_spec(doc)
    # No failover: the entrypoint fails from the injection at 2000 until the primary itself recovers at 3500.
    samples = [*stream("useast1", (0, 2000, USE1), (2000, 3500, FAIL), (3500, 30000, USE1)),
               *stream("uswest2", (0, 30000, USW2)),
               *stream("entry", (0, 2000, USE1), (2000, 3500, FAIL), (3500, 30000, USE1))]

    result = assess(spec, make_plan(spec), SampleColumns.of(samples), injected_at_ms=T0 + 2000,
                    restored_at_ms=T0 + 22000,
                    sample_keys=[])

    if counted:
        assert result.rto_seconds == pytest.approx(1.5)
        assert result.rto_bracket is not None and result.rto_bracket.contains(T0 + 3500)
    else:
        assert result.rto_seconds == pytest.approx(20.0)  # only once the fault was rolled back
