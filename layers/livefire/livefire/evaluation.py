"""The Assess step: load the samples a window wrote to S3 and judge them (the math is in ``livefire.assessment``).

The fault records give the instants as brackets [request sent, answer received]: the fault phase starts when the
first injection request was sent and the recovery phase when the last restore request was sent; the answers
close the brackets (docs/architecture.md §5, §7)."""

from __future__ import annotations

from livefire.assessment import assess, steady_state
from livefire.assessment.dry_run import with_dry_run
from livefire.assessment.regression import HISTORY_LOOKBACK, recent_rtos, with_recent_rtos
from livefire.contracts import AssessRequest, AssessSummary, ProbeSummary, SteadyRequest, SteadyResult
from livefire.datachecks.cleanup import is_cleanup
from livefire.datachecks.markers import load_markers
from livefire.probing.chunks import load_samples
from livefire.runtime import Runtime
from livefire.telemetry.client import PrometheusApi
from livefire.telemetry.measure import with_telemetry


def _keys(summaries: list[ProbeSummary]) -> list[str]:
    return [key for summary in summaries for key in summary.sample_keys]


def _saved(runtime: Runtime, key: str, document: object) -> str:
    runtime.put_json(key, document)
    return key


def check_steady(request: SteadyRequest, runtime: Runtime) -> SteadyResult:
    spec = runtime.spec(request.plan)
    samples = load_samples(runtime.s3, runtime.settings.bucket, _keys(request.baseline))
    return steady_state(spec, samples, expected_targets=[t.name for t in request.plan.targets])


def evaluate_drill(request: AssessRequest, runtime: Runtime) -> AssessSummary:
    plan = request.plan
    spec = runtime.spec(plan)
    keys = _keys(request.observations)
    samples = load_samples(runtime.s3, runtime.settings.bucket, keys)
    marker_keys = [key for summary in request.observations for key in summary.marker_keys]
    markers = load_markers(runtime.s3, runtime.settings.bucket, marker_keys)
    faults = [f for f in runtime.store.faults_of(plan.drill_id) if not is_cleanup(f.planned)]
    injected = [f.injected_at_ms for f in faults if f.injected_at_ms is not None]
    injection_answered = [f.injection_answered_at_ms for f in faults if f.injection_answered_at_ms is not None]
    restores = [f for f in faults if f.restored_at_ms is not None]
    restore_sent = [f.restore_requested_at_ms or f.restored_at_ms or 0 for f in restores]
    restore_answered = [f.restored_at_ms or 0 for f in restores]
    assessment = assess(
        spec, plan, samples,
        injected_at_ms=min(injected) if injected else None,
        injection_answered_at_ms=max(injection_answered) if injected and injection_answered else None,
        restored_at_ms=max(restore_sent) if injected and restores else None,
        restore_answered_at_ms=max(restore_answered) if injected and restores else None,
        sample_keys=keys,
        markers=markers,
        marker_keys=marker_keys,
    )
    if plan.mode == "dry-run":  # nothing was injected: what Inject's checks found is the finding
        assessment = with_dry_run(assessment, faults)
    elif spec.telemetry is not None:  # the mesh's own metrics, held against the probes
        assessment = with_telemetry(assessment, spec, samples, PrometheusApi(spec.telemetry),
                                    lambda name, doc: _saved(runtime, f"{plan.evidence_prefix}{name}", doc))
    history = runtime.store.history(plan.service, limit=HISTORY_LOOKBACK)  # the service's recent drills
    assessment = with_recent_rtos(assessment, spec, recent_rtos(history, plan.drill_id, plan.pattern))
    key = f"{plan.evidence_prefix}assessment.json"
    runtime.put_json(key, assessment.model_dump(mode="json"))
    failed = sum(1 for finding in assessment.findings if finding.status == "FAIL")
    return AssessSummary(verdict=assessment.verdict, rto_seconds=assessment.rto_seconds,
                         outage_observed=assessment.outage_observed, assessment_key=key,
                         findings=len(assessment.findings), failed_findings=failed)
