"""Faults (apply/restore) against the fake Kubernetes API over HTTP, with the official client."""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from livefire.errors import FaultConflict, FaultInjectionFailed, RollbackFailed
from livefire.mesh.faults import DryRunCheck, apply_fault, check_fault, read_target, restore_fault
from livefire.mesh.patches import DRILL_ID, EXPIRES_AT
from livefire.mesh.posture import PostureFinding, audit_posture
from livefire.spec import Fault
from livefire_local.sandbox.store import ObjectKey, canonical_bytes
from tests.component.kube_fixtures import (
    DEPLOYMENT_KEY,
    SEED,
    VS_KEY,
    Sandbox,
    crd_spec_schema,
    fault_of,
    running_sandbox,
    schema_errors,
)

EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
DR_KEY = ObjectKey("networking.istio.io", "destinationrules", "payments", "payments")
FAULTS: dict[str, dict[str, Any]] = {
    "http-abort": {"abort": {"httpStatus": 503, "percent": 100}},
    "http-delay": {"delay": {"fixedDelay": "1500ms", "percent": 50}},
    "scale-to-zero": {},
    "traffic-shift": {"weights": {"v1": 80, "v2": 20}},
    "circuit-break": {"target": {"destinationRule": "payments"}},
}
OBJECT_KINDS = {
    "http-abort": "VirtualService", "http-delay": "VirtualService", "scale-to-zero": "Deployment",
    "traffic-shift": "VirtualService", "circuit-break": "DestinationRule",
}
OBJECT_NAMES = {
    "http-abort": "payments", "http-delay": "payments", "scale-to-zero": "payments-v1",
    "traffic-shift": "payments", "circuit-break": "payments",
}
KEYS = {
    "http-abort": VS_KEY, "http-delay": VS_KEY, "scale-to-zero": DEPLOYMENT_KEY, "traffic-shift": VS_KEY,
    "circuit-break": DR_KEY,
}
ALL_KINDS = list(FAULTS)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with running_sandbox(monkeypatch) as running:
        yield running


def _drill_id() -> str:
    return f"drill-{uuid.uuid4().hex[:12]}"


def _setup(sandbox: Sandbox, kind: str, **fault_extra: Any) -> tuple[Any, Fault, dict[str, Any]]:
    if kind == "traffic-shift":
        _canary_route(sandbox)
    planned = sandbox.planned(kind, OBJECT_KINDS[kind], OBJECT_NAMES[kind])
    fault = fault_of(kind, **{**FAULTS[kind], **fault_extra})
    before = read_target(sandbox.client, planned)
    return planned, fault, before


def _edit(sandbox: Sandbox, key: ObjectKey, change: Any) -> dict[str, Any]:
    """Change an object behind livefire's back, as another user of the cluster would."""
    with sandbox.store.lock:
        obj = sandbox.store.get(key)
        assert obj is not None
        change(obj)
        return sandbox.store.replace(key, obj)


def _canary_route(sandbox: Sandbox) -> None:
    """The seeded route plus a v2 destination without a weight (Istio: 0 beside another destination)."""
    canary = {"destination": {"host": "payments", "subset": "v2"}}
    _edit(sandbox, VS_KEY, lambda vs: vs["spec"]["http"][0]["route"].append(canary))


def _two_route_virtual_service(sandbox: Sandbox) -> None:
    def add_routes(vs: dict[str, Any]) -> None:
        vs["spec"]["http"] = [
            {
                "name": "checkout",
                "match": [{"uri": {"prefix": "/checkout"}}],
                "route": [{"destination": {"host": "payments", "subset": "v1"}}],
                "fault": {"delay": {"fixedDelay": "50ms", "percentage": {"value": 10}}},
            },
            {"name": "primary", "route": [{"destination": {"host": "payments", "subset": "v1"}, "weight": 100}]},
        ]

    _edit(sandbox, VS_KEY, add_routes)


def _specs_written(sandbox: Sandbox, kind: str, extra: dict[str, Any]) -> list[dict[str, Any]]:
    """The target's spec before the fault, faulted, and restored."""
    planned, fault, before = _setup(sandbox, kind, **extra)
    drill = _drill_id()
    after = apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before).current
    restored = restore_fault(sandbox.client, planned, before, drill_id=drill).current
    return [before["spec"], after["spec"], restored["spec"]]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_apply_then_restore_leaves_every_object_byte_identical(sandbox: Sandbox, kind: str) -> None:
    planned, fault, before = _setup(sandbox, kind)
    cluster_before = sandbox.store.snapshot()
    drill = _drill_id()

    after = apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before).current
    faulted = sandbox.store.snapshot()
    outcome = restore_fault(sandbox.client, planned, before, drill_id=drill)

    assert faulted[KEYS[kind]] != cluster_before[KEYS[kind]]
    assert canonical_bytes(after) == faulted[KEYS[kind]]
    assert outcome.status == "RESTORED"
    assert sandbox.store.snapshot() == cluster_before


def test_http_abort_sets_the_fault_with_percentage_and_ownership_annotations(sandbox: Sandbox) -> None:
    planned, fault, before = _setup(sandbox, "http-abort")
    drill = _drill_id()

    after = apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before).current

    assert after["spec"]["http"][0]["fault"] == {"abort": {"httpStatus": 503, "percentage": {"value": 100}}}
    assert after["metadata"]["annotations"][DRILL_ID] == drill
    assert after["metadata"]["annotations"][EXPIRES_AT] == "2030-01-02T03:04:05Z"
    assert after["spec"]["http"][0]["route"] == before["spec"]["http"][0]["route"]


def test_annotations_already_on_the_object_are_kept_during_and_after_the_drill(sandbox: Sandbox) -> None:
    _edit(sandbox, VS_KEY, lambda vs: vs["metadata"].update(annotations={"example.com/owner": "sre~payments"}))
    planned, fault, before = _setup(sandbox, "http-abort")
    drill = _drill_id()

    after = apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before).current
    outcome = restore_fault(sandbox.client, planned, before, drill_id=drill)

    assert after["metadata"]["annotations"]["example.com/owner"] == "sre~payments"
    assert after["metadata"]["annotations"][DRILL_ID] == drill
    assert outcome.current["metadata"]["annotations"] == {"example.com/owner": "sre~payments"}
    assert canonical_bytes(outcome.current) == canonical_bytes(before)


def test_http_delay_writes_the_fixed_delay_as_an_istio_duration_string(sandbox: Sandbox) -> None:
    planned, fault, before = _setup(sandbox, "http-delay")

    after = apply_fault(sandbox.client, planned, fault, drill_id=_drill_id(), expires_at=EXPIRES, before=before).current

    assert after["spec"]["http"][0]["fault"] == {"delay": {"fixedDelay": "1.5s", "percentage": {"value": 50}}}


def test_scale_to_zero_scales_through_the_scale_subresource_and_restores_the_replicas(sandbox: Sandbox) -> None:
    planned, fault, before = _setup(sandbox, "scale-to-zero")
    drill = _drill_id()

    after = apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before).current
    outcome = restore_fault(sandbox.client, planned, before, drill_id=drill)

    assert after["spec"]["replicas"] == 0
    assert outcome.current["spec"]["replicas"] == 3
    patches = [r for r in sandbox.api.requests if r.method == "PATCH"]
    assert [r.path.rsplit("/", 1)[-1] for r in patches] == ["scale", "scale"]
    assert {r.content_type for r in patches} == {"application/json-patch+json"}


@pytest.mark.parametrize("kind", ["http-abort", "http-delay"])
def test_only_the_named_route_is_faulted_and_a_fault_already_there_survives_the_drill(
    sandbox: Sandbox, kind: str
) -> None:
    _two_route_virtual_service(sandbox)
    planned, fault, before = _setup(sandbox, kind, target={"route": "checkout"})
    existing = copy.deepcopy(before["spec"]["http"][0]["fault"])
    drill = _drill_id()

    after = apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before).current
    outcome = restore_fault(sandbox.client, planned, before, drill_id=drill)

    assert after["spec"]["http"][0]["fault"] != existing
    assert "fault" not in after["spec"]["http"][1]
    assert outcome.status == "RESTORED"
    assert outcome.current["spec"]["http"][0]["fault"] == existing
    assert canonical_bytes(outcome.current) == canonical_bytes(before)


def test_without_a_route_name_every_http_route_is_faulted(sandbox: Sandbox) -> None:
    _two_route_virtual_service(sandbox)
    planned, fault, before = _setup(sandbox, "http-abort")

    after = apply_fault(sandbox.client, planned, fault, drill_id=_drill_id(), expires_at=EXPIRES, before=before).current

    assert [route["fault"]["abort"]["httpStatus"] for route in after["spec"]["http"]] == [503, 503]


def test_a_route_name_that_matches_nothing_fails_without_writing(sandbox: Sandbox) -> None:
    planned, fault, before = _setup(sandbox, "http-abort", target={"route": "no-such-route"})
    snapshot = sandbox.store.snapshot()

    with pytest.raises(FaultInjectionFailed, match="no-such-route"):
        apply_fault(sandbox.client, planned, fault, drill_id=_drill_id(), expires_at=EXPIRES, before=before)

    assert sandbox.store.snapshot() == snapshot


# ---------------------------------------------------------------- dry run


def _dry_run(sandbox: Sandbox, kind: str, **fault_extra: Any) -> tuple[DryRunCheck, dict[ObjectKey, bytes]]:
    planned = sandbox.planned(kind, OBJECT_KINDS[kind], OBJECT_NAMES[kind])
    fault = fault_of(kind, **{**FAULTS[kind], **fault_extra})
    snapshot = sandbox.store.snapshot()
    return check_fault(sandbox.client, planned, fault, drill_id=_drill_id(), expires_at=EXPIRES), snapshot


@pytest.mark.parametrize("kind", ["http-abort", "scale-to-zero", "circuit-break"])
def test_a_dry_run_of_a_fault_that_would_work_sends_its_exact_patch_with_dry_run_and_changes_nothing(
    sandbox: Sandbox, kind: str,
) -> None:
    check, snapshot = _dry_run(sandbox, kind)

    assert check.problems == [] and check.target is not None
    assert sandbox.store.snapshot() == snapshot  # byte-identical
    [patch] = [r for r in sandbox.api.requests if r.method == "PATCH"]
    assert patch.query == {"dryRun": "All"} and patch.content_type == "application/json-patch+json"
    reviews = [r for r in sandbox.api.requests if r.path.endswith("/selfsubjectaccessreviews")]
    assert len(reviews) == 2  # get and patch: what the fault and its restore both need


def test_a_dry_run_on_a_route_that_does_not_exist_names_the_route_and_changes_nothing(sandbox: Sandbox) -> None:
    check, snapshot = _dry_run(sandbox, "http-abort", target={"route": "no-such-route"})

    assert check.problems == ["VirtualService payments/payments on "
                              f"{sandbox.cluster.key} has no http route named 'no-such-route'"]
    assert sandbox.store.snapshot() == snapshot


def test_a_dry_run_under_rbac_that_forbids_the_patch_names_the_verb_and_changes_nothing(sandbox: Sandbox) -> None:
    sandbox.api.rbac.forbid("patch", "networking.istio.io", "virtualservices")

    check, snapshot = _dry_run(sandbox, "http-abort")

    assert len(check.problems) == 2
    assert "refused the patch (dryRun=All): 403 Forbidden" in check.problems[0]
    assert check.problems[1].startswith("RBAC: this function may not patch virtualservices.networking.istio.io")
    assert sandbox.store.snapshot() == snapshot


def test_a_dry_run_of_an_object_that_does_not_exist_says_so(sandbox: Sandbox) -> None:
    planned = sandbox.planned("http-abort", "VirtualService", "no-such-vs")

    check = check_fault(sandbox.client, planned, fault_of("http-abort", **FAULTS["http-abort"]),
                        drill_id=_drill_id(), expires_at=EXPIRES)

    assert check.target is None and check.problems[0].endswith(f"no-such-vs on {sandbox.cluster.key} does not exist")


def test_a_fault_aimed_at_the_wrong_kind_of_object_is_refused_without_writing(sandbox: Sandbox) -> None:
    planned = sandbox.planned("circuit-break", "VirtualService", "payments")
    fault = fault_of("circuit-break", **FAULTS["circuit-break"])
    before = read_target(sandbox.client, planned)

    with pytest.raises(FaultInjectionFailed, match="needs a DestinationRule"):
        apply_fault(sandbox.client, planned, fault, drill_id=_drill_id(), expires_at=EXPIRES, before=before)

    assert not [r for r in sandbox.api.requests if r.method == "PATCH"]


CONCURRENT_EDITS: dict[str, Any] = {
    "http-abort": lambda vs: vs["spec"]["http"][0]["route"][0].update(weight=90),
    "http-delay": lambda vs: vs["spec"]["http"][0]["route"][0].update(weight=90),
    "traffic-shift": lambda vs: vs["spec"]["http"][0]["route"][1].update(weight=50),
    "circuit-break": lambda dr: dr["spec"]["trafficPolicy"]["connectionPool"]["http"].update(http2MaxRequests=7),
}


@pytest.mark.parametrize("kind", list(CONCURRENT_EDITS))
def test_a_concurrent_edit_during_the_drill_is_not_overwritten_and_gives_conflict(
    sandbox: Sandbox, kind: str
) -> None:
    planned, fault, before = _setup(sandbox, kind)
    drill = _drill_id()
    apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before)
    edited = _edit(sandbox, KEYS[kind], CONCURRENT_EDITS[kind])

    outcome = restore_fault(sandbox.client, planned, before, drill_id=drill)

    assert outcome.status == "CONFLICT"
    assert "edited during the drill" in outcome.detail
    assert canonical_bytes(sandbox.store.get(KEYS[kind]) or {}) == canonical_bytes(edited)


def test_an_edit_through_the_api_that_removed_our_annotation_gives_conflict(sandbox: Sandbox) -> None:
    planned, fault, before = _setup(sandbox, "http-abort")
    drill = _drill_id()
    apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before)
    from kubernetes.client import CustomObjectsApi

    CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
        "networking.istio.io", "v1", "payments", "virtualservices", "payments",
        {"metadata": {"annotations": None, "labels": {"team": "payments"}}},
    )
    edited = sandbox.store.get(VS_KEY)

    outcome = restore_fault(sandbox.client, planned, before, drill_id=drill)

    assert outcome.status == "CONFLICT"
    assert "no longer carries" in outcome.detail
    assert sandbox.store.get(VS_KEY) == edited


def test_a_concurrent_scale_during_the_drill_is_not_overwritten(sandbox: Sandbox) -> None:
    planned, fault, before = _setup(sandbox, "scale-to-zero")
    drill = _drill_id()
    apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before)
    _edit(sandbox, DEPLOYMENT_KEY, lambda d: d["spec"].update(replicas=5))

    outcome = restore_fault(sandbox.client, planned, before, drill_id=drill)

    assert outcome.status == "CONFLICT"
    assert (sandbox.store.get(DEPLOYMENT_KEY) or {})["spec"]["replicas"] == 5


@pytest.mark.parametrize(("kind", "path"), [("http-abort", "/virtualservices/payments"),
                                           ("circuit-break", "/destinationrules/payments")])
def test_a_refused_write_on_an_unchanged_object_is_re_read_then_retried_once(sandbox: Sandbox, kind: str,
                                                                             path: str) -> None:
    planned, fault, before = _setup(sandbox, kind)
    sandbox.api.fail_next("PATCH", path, 409)
    drill = _drill_id()

    after = apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before).current

    assert after["metadata"]["annotations"][DRILL_ID] == drill
    assert [r.method for r in sandbox.api.requests] == ["GET", "PATCH", "GET", "PATCH", "GET"]


def test_a_write_refused_twice_raises_fault_conflict_and_writes_nothing(sandbox: Sandbox) -> None:
    planned, fault, before = _setup(sandbox, "http-abort")
    sandbox.api.fail_next("PATCH", "/virtualservices/payments", 409, times=2)
    snapshot = sandbox.store.snapshot()

    with pytest.raises(FaultConflict):
        apply_fault(sandbox.client, planned, fault, drill_id=_drill_id(), expires_at=EXPIRES, before=before)

    assert sandbox.store.snapshot() == snapshot
    assert [r.method for r in sandbox.api.requests].count("PATCH") == 2


@pytest.mark.parametrize("kind", ["http-abort", "scale-to-zero", "traffic-shift", "circuit-break"])
def test_an_object_changed_since_its_snapshot_is_not_faulted(sandbox: Sandbox, kind: str) -> None:
    planned, fault, before = _setup(sandbox, kind)
    _edit(sandbox, KEYS[kind], lambda obj: obj["metadata"].setdefault("labels", {}).update(owner="someone"))
    snapshot = sandbox.store.snapshot()

    with pytest.raises(FaultConflict, match="changed since its snapshot"):
        apply_fault(sandbox.client, planned, fault, drill_id=_drill_id(), expires_at=EXPIRES, before=before)

    assert sandbox.store.snapshot() == snapshot
    assert [r.method for r in sandbox.api.requests].count("PATCH") == 1


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_retried_apply_returns_the_faulted_object_without_writing_again(sandbox: Sandbox, kind: str) -> None:
    planned, fault, before = _setup(sandbox, kind)
    drill = _drill_id()
    first = apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before)

    second = apply_fault(
        sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES + timedelta(seconds=1), before=before
    )

    assert second.current["metadata"]["resourceVersion"] == first.current["metadata"]["resourceVersion"]
    assert canonical_bytes(second.current) == canonical_bytes(first.current)
    assert first.written is not None and second.written is None  # the retry wrote nothing, so it has no bracket


def test_an_object_faulted_by_another_drill_is_not_faulted_again(sandbox: Sandbox) -> None:
    planned, fault, before = _setup(sandbox, "http-abort")
    apply_fault(sandbox.client, planned, fault, drill_id="drill-other", expires_at=EXPIRES, before=before)
    held = read_target(sandbox.client, planned)

    with pytest.raises(FaultConflict, match="drill-other"):
        apply_fault(sandbox.client, planned, fault, drill_id=_drill_id(), expires_at=EXPIRES, before=held)


def test_restore_by_another_drill_leaves_the_fault_alone(sandbox: Sandbox) -> None:
    planned, fault, before = _setup(sandbox, "http-abort")
    apply_fault(sandbox.client, planned, fault, drill_id="drill-owner", expires_at=EXPIRES, before=before)
    faulted = sandbox.store.get(VS_KEY)

    outcome = restore_fault(sandbox.client, planned, before, drill_id="drill-intruder")

    assert outcome.status == "CONFLICT"
    assert "drill-owner" in outcome.detail
    assert sandbox.store.get(VS_KEY) == faulted


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_restore_twice_is_the_same_as_restoring_once(sandbox: Sandbox, kind: str) -> None:
    planned, fault, before = _setup(sandbox, kind)
    drill = _drill_id()
    apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before)
    first = restore_fault(sandbox.client, planned, before, drill_id=drill)
    restored = sandbox.store.snapshot()

    second = restore_fault(sandbox.client, planned, before, drill_id=drill)

    assert (first.status, second.status) == ("RESTORED", "ALREADY_RESTORED")
    assert sandbox.store.snapshot() == restored
    assert [r.method for r in sandbox.api.requests].count("PATCH") == 2


def test_restore_without_a_fault_applied_writes_nothing(sandbox: Sandbox) -> None:
    planned, _fault, before = _setup(sandbox, "http-abort")

    outcome = restore_fault(sandbox.client, planned, before, drill_id=_drill_id())

    assert outcome.status == "ALREADY_RESTORED"
    assert "PATCH" not in [r.method for r in sandbox.api.requests]


def test_a_restore_write_refused_each_time_re_reads_between_attempts_then_raises(sandbox: Sandbox) -> None:
    planned, fault, before = _setup(sandbox, "http-abort")
    drill = _drill_id()
    apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before)
    sandbox.api.requests.clear()
    sandbox.api.fail_next("PATCH", "/virtualservices/payments", 409, times=3)

    with pytest.raises(RollbackFailed):
        restore_fault(sandbox.client, planned, before, drill_id=drill)

    assert [r.method for r in sandbox.api.requests] == ["GET", "PATCH"] * 3
    assert restore_fault(sandbox.client, planned, before, drill_id=drill).status == "RESTORED"


def test_a_restore_refused_once_succeeds_after_re_reading(sandbox: Sandbox) -> None:
    planned, fault, before = _setup(sandbox, "http-delay")
    drill = _drill_id()
    apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before)
    sandbox.api.fail_next("PATCH", "/virtualservices/payments", 422)

    outcome = restore_fault(sandbox.client, planned, before, drill_id=drill)

    assert outcome.status == "RESTORED"
    assert canonical_bytes(outcome.current) == canonical_bytes(before)


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("http-abort", {}),
        ("http-delay", {}),
        ("http-abort", {"target": {"route": "checkout"}}),
        ("http-delay", {"delay": {"fixedDelay": "1ms", "percent": 0.5}, "target": {"route": "primary"}}),
    ],
)
def test_every_virtual_service_written_is_valid_against_the_istio_crd(
    sandbox: Sandbox, kind: str, extra: dict[str, Any]
) -> None:
    schema = crd_spec_schema("VirtualService")
    _two_route_virtual_service(sandbox)

    written = _specs_written(sandbox, kind, extra)

    assert [schema_errors(spec, schema) for spec in written] == [[], [], []]


def test_traffic_shift_sets_the_weight_of_each_named_subset_and_restore_removes_weights_that_were_unset(
    sandbox: Sandbox,
) -> None:
    planned, fault, before = _setup(sandbox, "traffic-shift")
    drill = _drill_id()

    after = apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before).current
    restored = restore_fault(sandbox.client, planned, before, drill_id=drill).current

    assert [d["weight"] for d in after["spec"]["http"][0]["route"]] == [80, 20]
    assert after["metadata"]["annotations"][DRILL_ID] == drill
    assert "weight" not in restored["spec"]["http"][0]["route"][1]
    assert restored["spec"]["http"][0]["route"][0]["weight"] == 100


def test_traffic_shift_touches_only_the_named_route(sandbox: Sandbox) -> None:
    _two_route_virtual_service(sandbox)
    _edit(sandbox, VS_KEY, lambda vs: vs["spec"]["http"][1]["route"].append(
        {"destination": {"host": "payments", "subset": "v2"}, "weight": 0}
    ))
    planned, fault, before = _setup(sandbox, "traffic-shift", weights={"v1": 0, "v2": 100},
                                    target={"route": "primary"})

    after = apply_fault(sandbox.client, planned, fault, drill_id=_drill_id(), expires_at=EXPIRES, before=before).current

    assert after["spec"]["http"][0] == before["spec"]["http"][0]
    assert [d["weight"] for d in after["spec"]["http"][1]["route"]] == [0, 100]


@pytest.mark.parametrize(
    ("weights", "message"),
    [({"v1": 80, "v9": 20}, "no destination with subset v9"), ({"v2": 100}, "would add up to 200, not 100")],
)
def test_weights_the_route_cannot_take_are_refused_without_writing(
    sandbox: Sandbox, weights: dict[str, int], message: str
) -> None:
    _canary_route(sandbox)
    _edit(sandbox, VS_KEY, lambda vs: vs["spec"]["http"][0]["route"][1].update(weight=0))
    planned = sandbox.planned("traffic-shift")
    fault = fault_of("traffic-shift", weights=weights)
    before = read_target(sandbox.client, planned)
    snapshot = sandbox.store.snapshot()

    with pytest.raises(FaultInjectionFailed, match=message):
        apply_fault(sandbox.client, planned, fault, drill_id=_drill_id(), expires_at=EXPIRES, before=before)

    assert sandbox.store.snapshot() == snapshot


def test_circuit_break_squeezes_the_connection_pool_and_keeps_the_rest_of_the_policy(sandbox: Sandbox) -> None:
    _edit(sandbox, DR_KEY, lambda dr: dr["spec"]["trafficPolicy"].update(
        connectionPool={"tcp": {"connectTimeout": "2s", "maxConnections": 500}, "http": {"maxRetries": 3}}
    ))
    planned, fault, before = _setup(sandbox, "circuit-break", connectionPool={"http2MaxRequests": 2})
    drill = _drill_id()

    after = apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before).current
    restored = restore_fault(sandbox.client, planned, before, drill_id=drill).current

    assert after["spec"]["trafficPolicy"]["connectionPool"] == {
        "tcp": {"connectTimeout": "2s", "maxConnections": 500},
        "http": {"maxRetries": 3, "http2MaxRequests": 2},
    }
    assert after["spec"]["trafficPolicy"]["outlierDetection"] == before["spec"]["trafficPolicy"]["outlierDetection"]
    assert after["metadata"]["annotations"][DRILL_ID] == drill
    assert canonical_bytes(restored) == canonical_bytes(before)


def test_circuit_break_on_a_rule_without_traffic_policy_adds_one_and_restore_takes_it_away(sandbox: Sandbox) -> None:
    _edit(sandbox, DR_KEY, lambda dr: dr["spec"].pop("trafficPolicy"))
    planned, fault, before = _setup(sandbox, "circuit-break")
    drill = _drill_id()

    after = apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before).current
    restored = restore_fault(sandbox.client, planned, before, drill_id=drill).current

    assert after["spec"]["trafficPolicy"] == {
        "connectionPool": {
            "tcp": {"maxConnections": 1},
            "http": {"http1MaxPendingRequests": 1, "http2MaxRequests": 1, "maxRequestsPerConnection": 1},
        }
    }
    assert "trafficPolicy" not in restored["spec"]
    assert canonical_bytes(restored) == canonical_bytes(before)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"kind": "traffic-shift"}, "needs weights"),
        ({"kind": "traffic-shift", "weights": {"v1": 70, "v2": 20}}, "add up to 100"),
        ({"kind": "traffic-shift", "weights": {"v1": 101}}, "less than or equal to 100"),
        ({"kind": "circuit-break", "target": {"namespace": "payments", "destinationRule": "payments"},
          "connectionPool": {}}, "set at least one connection pool limit"),
        ({"kind": "circuit-break", "target": {"namespace": "payments", "virtualService": "payments"}},
         "needs target.destinationRule"),
        ({"kind": "circuit-break", "target": {"namespace": "payments", "destinationRule": "payments"},
          "connectionPool": {"http2MaxRequests": 0}}, "greater than or equal to 1"),
        ({"kind": "http-abort", "abort": {}, "weights": {"v1": 100}}, "weights is only valid with kind traffic-shift"),
        ({"kind": "http-delay", "delay": {"fixedDelay": "1s"}, "connectionPool": {"http2MaxRequests": 2}},
         "connectionPool is only valid with kind circuit-break"),
    ],
)
def test_the_spec_refuses_fault_fields_that_do_not_fit_the_kind(fault: dict[str, Any], message: str) -> None:
    document = {"region": "us-east-1", "target": {"namespace": "payments", "virtualService": "payments"}, **fault}

    with pytest.raises(ValidationError, match=message):
        Fault.model_validate(document)


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "traffic-shift", "weights": {"v1": 80, "v2": 20}},
        {"kind": "circuit-break", "target": {"namespace": "payments", "destinationRule": "payments"}},
        {"kind": "circuit-break", "target": {"namespace": "payments", "destinationRule": "payments"},
         "connectionPool": {"http2MaxRequests": 3}},
    ],
)
def test_the_new_fault_fields_survive_the_stored_spec_document(fault: dict[str, Any]) -> None:
    original = Fault.model_validate({"region": "us-east-1", "target": {"namespace": "payments",
                                                                       "virtualService": "payments"}, **fault})

    stored = Fault.model_validate(original.model_dump(mode="json", by_alias=True, exclude_none=True))

    assert stored == original
    assert stored.squeeze == original.squeeze


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("traffic-shift", {}),
        ("traffic-shift", {"weights": {"v1": 0, "v2": 100}}),
        ("circuit-break", {}),
        ("circuit-break", {"connectionPool": {"maxConnections": 2147483647, "http1MaxPendingRequests": 3}}),
    ],
)
def test_every_shift_and_squeeze_written_is_valid_against_the_istio_crd(
    sandbox: Sandbox, kind: str, extra: dict[str, Any]
) -> None:
    schema = crd_spec_schema(OBJECT_KINDS[kind])

    written = _specs_written(sandbox, kind, extra)

    assert [schema_errors(spec, schema) for spec in written] == [[], [], []]


def cluster_seeds() -> list[Path]:
    """The mesh folder's cluster seeds (Kubernetes objects), not its other settings (e.g. the marker stores')."""
    return [path for path in sorted(SEED.parent.glob("*.yaml"))
            if any(isinstance(doc, dict) and "apiVersion" in doc
                   for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")))]


@pytest.mark.parametrize("seed", cluster_seeds(), ids=lambda path: path.stem)
def test_every_istio_object_of_the_sandbox_seeds_is_valid_against_the_crd(seed: Path) -> None:
    documents = [doc for doc in yaml.safe_load_all(seed.read_text(encoding="utf-8")) if doc]
    istio = [doc for doc in documents if doc.get("apiVersion") == "networking.istio.io/v1"]

    assert istio
    for doc in istio:
        assert schema_errors(doc["spec"], crd_spec_schema(doc["kind"])) == [], doc["kind"]


def test_the_crd_validator_rejects_a_fault_istio_would_refuse() -> None:
    schema = crd_spec_schema("VirtualService")
    spec = {
        "hosts": ["payments"],
        "http": [{"fault": {"abort": {"httpStatus": 503, "grpcStatus": "UNAVAILABLE"}, "delay": {"fixedDelay": 2}}}],
    }

    errors = schema_errors(spec, schema)

    assert any("abort" in e and "oneOf" in e for e in errors)
    assert any("fixedDelay" in e and "type string" in e for e in errors)


def test_fault_operations_send_a_bearer_token_that_never_reaches_records_or_logs(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.client.configuration.debug = True
    planned, fault, before = _setup(sandbox, "http-abort")
    drill = _drill_id()

    apply_fault(sandbox.client, planned, fault, drill_id=drill, expires_at=EXPIRES, before=before)
    restore_fault(sandbox.client, planned, before, drill_id=drill)

    captured = capsys.readouterr()
    assert sandbox.client.configuration.debug is False
    assert all(r.had_bearer for r in sandbox.api.requests)
    assert sandbox.token not in repr(sandbox.api.requests)
    assert sandbox.token not in caplog.text
    assert sandbox.token not in captured.out + captured.err


# ---------------------------------------------------------------- posture (read-only)

PA_KEY = ObjectKey("security.istio.io", "peerauthentications", "payments", "default")


def _checks(findings: list[PostureFinding]) -> dict[str, bool]:
    return {f.check: f.ok for f in findings}


@pytest.mark.parametrize("host", ["payments", "payments.payments.svc.cluster.local"])
def test_posture_of_the_seeded_mesh_passes_every_check_and_writes_nothing(sandbox: Sandbox, host: str) -> None:
    findings = audit_posture(sandbox.client, "payments", host)

    assert _checks(findings) == {
        "destination-rule": True, "outlier-detection": True, "locality-failover": True, "mtls-strict": True,
    }
    assert {r.method for r in sandbox.api.requests} == {"GET"}


def test_posture_flags_locality_failover_that_cannot_work_without_outlier_detection(sandbox: Sandbox) -> None:
    _edit(sandbox, DR_KEY, lambda dr: dr["spec"]["trafficPolicy"].pop("outlierDetection"))

    findings = audit_posture(sandbox.client, "payments", "payments")

    checks = _checks(findings)
    assert (checks["outlier-detection"], checks["locality-failover"]) == (False, False)
    assert "without outlierDetection" in next(f.detail for f in findings if f.check == "locality-failover")


def test_posture_flags_permissive_mtls_and_a_host_without_destination_rule(sandbox: Sandbox) -> None:
    _edit(sandbox, PA_KEY, lambda pa: pa["spec"]["mtls"].update(mode="PERMISSIVE"))

    findings = audit_posture(sandbox.client, "payments", "ledger")

    assert _checks(findings) == {
        "destination-rule": False, "outlier-detection": False, "locality-failover": False, "mtls-strict": False,
    }
    assert "PERMISSIVE" in next(f.detail for f in findings if f.check == "mtls-strict")
