"""What every step re-reads: the stored spec, checked against the digest the Plan recorded."""

from __future__ import annotations

import json

import pytest

from livefire.config import Settings
from livefire.contracts import Plan
from livefire.errors import SpecDigestMismatch
from livefire.planning import planned_faults, probe_targets
from livefire.runtime import Runtime
from livefire.spec import DrillSpec, parse_spec
from tests.conftest import sandbox_spec_document
from tests.fakes import InMemoryS3

SETTINGS = Settings(bucket="evidence", table="drills", event_bus="default", allowed_namespaces=("payments",),
                    allowed_clusters=())


def runtime_with_store() -> tuple[Runtime, InMemoryS3]:
    runtime = Runtime(settings=SETTINGS)
    s3 = InMemoryS3()
    runtime.s3 = s3
    return runtime, s3


def plan_of(spec: DrillSpec) -> Plan:
    return Plan(
        drill_id="d-1", execution_arn="arn:aws:states:us-east-1:1:execution:sm:d-1", service="payments",
        pattern=spec.pattern, mode=spec.mode, spec_key="drills/payments/d-1/spec.json", spec_digest=spec.digest(),
        evidence_prefix="drills/payments/d-1/", started_at_ms=1, vantages=[], targets=probe_targets(spec),
        faults=planned_faults(spec), baseline_seconds=1.0, observe_seconds=10.0, lead_wait_seconds=1,
        fault_wait_seconds=3,
    )


def test_the_stored_spec_is_read_when_its_digest_matches_the_plan() -> None:
    runtime, _ = runtime_with_store()
    spec = parse_spec(sandbox_spec_document())
    plan = plan_of(spec)
    runtime.put_json(plan.spec_key, spec.to_document())

    assert runtime.spec(plan) == spec


def test_a_stored_spec_changed_after_planning_is_refused_by_name() -> None:
    runtime, s3 = runtime_with_store()
    spec = parse_spec(sandbox_spec_document())
    plan = plan_of(spec)
    changed = spec.to_document()
    changed["fault"]["abort"]["percent"] = 50
    s3.objects[plan.spec_key] = json.dumps(changed).encode()

    with pytest.raises(SpecDigestMismatch, match=r"spec\.json has digest .* the stored spec was changed"):
        runtime.spec(plan)


def test_a_plan_with_another_digest_is_checked_again_not_served_from_the_cache() -> None:
    runtime, _ = runtime_with_store()
    spec = parse_spec(sandbox_spec_document())
    plan = plan_of(spec)
    runtime.put_json(plan.spec_key, spec.to_document())
    runtime.spec(plan)

    with pytest.raises(SpecDigestMismatch):
        runtime.spec(plan.model_copy(update={"spec_digest": "0" * 64}))
