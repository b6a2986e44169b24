"""What each state of the campaign does (statemachines/campaign.asl.json): Plan reads and validates every spec and
writes the rounds the Distributed Map reads; Admit starts a drill or records it SKIPPED by the stop rule; Record
keeps how the child execution ended. Objects: ``campaigns/<id>/`` holds ``specs/`` (the validated copies),
``rounds/<round>/<index>.json`` (the items) and ``results/<index>.<class>.<drill id>.json`` (one per drill)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from livefire.artifacts import evidence_prefix
from livefire.campaign.model import (
    RAN,
    SKIPPED,
    Admission,
    AdmitRequest,
    Campaign,
    CampaignDrill,
    CampaignInput,
    DrillResult,
    PlanCampaignRequest,
    RecordRequest,
    campaign_prefix,
)
from livefire.campaign.schedule import Planned, campaign_drill_id, plan_rounds
from livefire.campaign.stop_rule import Ended, stop_reason
from livefire.errors import InvalidCampaign, InvalidDrillSpec, SpecDigestMismatch
from livefire.evidence.manifest import ASSESSMENT_NAME, MANIFEST_NAME
from livefire.runtime import Runtime
from livefire.spec import DrillSpec, load_document, parse_spec

# A campaign's drills at most: a Distributed Map reads any number, but the plan is written by one invocation.
MAX_DRILLS = 5000
_RESULTS = "results/"


def _one_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "input"
    return f"{field}: {error['msg']}"


def _listed(runtime: Runtime, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in runtime.s3.get_paginator("list_objects_v2").paginate(Bucket=runtime.settings.bucket, Prefix=prefix):
        keys += [str(obj["Key"]) for obj in page.get("Contents", []) if not str(obj["Key"]).endswith("/")]
    return keys


def _read_spec(runtime: Runtime, key: str) -> tuple[Any, DrillSpec]:
    try:
        body = runtime.s3.get_object(Bucket=runtime.settings.bucket, Key=key)["Body"].read()
        document = load_document(body.decode("utf-8"), source=key)
        return document, parse_spec(document)
    except InvalidDrillSpec as exc:
        raise InvalidCampaign(f"{key}: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidCampaign(f"{key}: not UTF-8 text") from None
    except runtime.s3.exceptions.NoSuchKey:
        raise InvalidCampaign(f"specs.keys: no object {key}") from None


def plan_campaign(request: PlanCampaignRequest, runtime: Runtime) -> Campaign:
    """Validate the input and every spec (InvalidCampaign names the first problem: nothing starts), then write the
    validated specs and one item per drill under its round."""
    try:
        given = CampaignInput.model_validate(request.campaign_input)
    except ValidationError as exc:
        raise InvalidCampaign(_one_line(exc)) from None
    keys = given.specs.keys if given.specs.keys is not None else _listed(runtime, str(given.specs.prefix))
    if not keys:
        raise InvalidCampaign(f"specs.prefix: no spec under {given.specs.prefix}")
    if len(keys) > MAX_DRILLS:
        raise InvalidCampaign(f"specs: {len(keys)} specs, more than {MAX_DRILLS}: split the campaign")
    read = [_read_spec(runtime, key) for key in keys]
    prefix = campaign_prefix(request.campaign_id)
    rounds = plan_rounds([Planned(i, spec.metadata.name, spec.metadata.service) for i, (_, spec) in enumerate(read)],
                         given.rules)
    for number, members in enumerate(rounds):
        for planned in members:
            document, spec = read[planned.index]
            spec_key = f"{prefix}specs/{planned.index:04d}.json"
            runtime.put_json(spec_key, document)
            drill = CampaignDrill(index=planned.index, round=number, name=planned.name, service=planned.service,
                                  drill_id=campaign_drill_id(request.campaign_id, planned.index, planned.service),
                                  pattern=spec.pattern, source_key=keys[planned.index], spec_key=spec_key,
                                  spec_digest=spec.digest())
            runtime.put_json(f"{prefix}rounds/{number}/{planned.index:04d}.json", drill.to_state())
    return Campaign(campaign_id=request.campaign_id, bucket=runtime.settings.bucket, prefix=prefix,
                    rounds=len(rounds), drills=len(keys), max_concurrency=given.rules.max_concurrency,
                    rules=given.rules)


def ended_so_far(runtime: Runtime, campaign: Campaign) -> list[Ended]:
    """The drills that ended, from the result keys alone (``<index>.<class>.<drill id>.json``): a listing, no reads."""
    ended = []
    for key in _listed(runtime, campaign.prefix + _RESULTS):
        _index, result_class, drill_id = key.rsplit("/", 1)[1].split(".")[:3]
        ended.append(Ended(drill_id=drill_id, result_class=result_class))
    return ended


def _write_result(runtime: Runtime, campaign: Campaign, result: DrillResult) -> DrillResult:
    name = f"{result.index:04d}.{result.result_class}.{result.drill_id}.json"
    runtime.put_json(f"{campaign.prefix}{_RESULTS}{name}", result.to_state())
    return result


def _result(drill: CampaignDrill, **fields: Any) -> DrillResult:
    return DrillResult(index=drill.index, round=drill.round, drill_id=drill.drill_id, name=drill.name,
                       service=drill.service, pattern=drill.pattern, **fields)


def admit(request: AdmitRequest, runtime: Runtime) -> Admission:
    """Start the drill unless the stop rule tripped; then record it SKIPPED (nothing is started or injected)."""
    drill = CampaignDrill.model_validate(runtime.get_json(request.key))
    ended = ended_so_far(runtime, request.campaign)
    reason = stop_reason(ended, request.campaign.rules)
    if reason is not None:
        _write_result(runtime, request.campaign, _result(drill, outcome=SKIPPED, reason=reason))
        return Admission(admitted=False, drill=drill)
    document = runtime.get_json(drill.spec_key)
    if parse_spec(document).digest() != drill.spec_digest:
        raise SpecDigestMismatch(f"{drill.spec_key} changed since the campaign was planned")
    return Admission(admitted=True, drill=drill, spec=document)


def _child_failure(failure: dict[str, Any] | None) -> tuple[str, str | None]:
    """The child execution's status and error from the task's failure: a `.sync:2` task that fails carries the
    child's DescribeExecution output as its Cause (States.TaskFailed); anything else is the task's own error."""
    if failure is None:
        return "SUCCEEDED", None
    error = str(failure.get("Error", "")) or None
    try:
        described = json.loads(str(failure.get("Cause", "")))
    except ValueError:
        described = None
    if isinstance(described, dict) and "Status" in described:
        return str(described["Status"]), str(described.get("Error") or error)
    return "FAILED", error


def _largest_rpo(runtime: Runtime, prefix: str) -> float | None:
    try:
        assessment = runtime.get_json(prefix + ASSESSMENT_NAME)
    except runtime.s3.exceptions.NoSuchKey:
        return None
    values = [rpo.get("seconds") for check in assessment.get("data_checks", []) for rpo in check.get("rpo", [])]
    measured = [float(v) for v in values if isinstance(v, int | float)]
    return max(measured) if measured else None


def record(request: RecordRequest, runtime: Runtime) -> DrillResult:
    """How the drill ended: the child execution's status, and from the drill's record its verdict, RTO, times and
    manifest digest; its largest RPO from its assessment."""
    drill = request.drill
    status, error = _child_failure(request.failure)
    stored = runtime.store.get_drill(drill.drill_id)
    prefix = evidence_prefix(drill.service, drill.drill_id)
    if stored is None:
        return _write_result(runtime, request.campaign, _result(drill, outcome=RAN, status=status, error=error))
    return _write_result(runtime, request.campaign, _result(
        drill, outcome=RAN, status=status, error=error, verdict=stored.verdict, reason=stored.reason,
        rto_seconds=stored.rto_seconds, rpo_seconds=_largest_rpo(runtime, prefix) if stored.verdict else None,
        started_at_ms=stored.started_at_ms, ended_at_ms=stored.ended_at_ms,
        evidence_prefix=prefix if stored.manifest_key else None, report_key=stored.report_key,
        manifest_key=stored.manifest_key or (prefix + MANIFEST_NAME if stored.manifest_digest else None),
        manifest_digest=stored.manifest_digest,
    ))


def results(runtime: Runtime, campaign: Campaign) -> list[DrillResult]:
    """Every drill's result, in campaign order."""
    found = [DrillResult.model_validate(runtime.get_json(key))
             for key in _listed(runtime, campaign.prefix + _RESULTS)]
    return sorted(found, key=lambda r: r.index)
