"""The Assess step: read the samples the windows wrote to S3 and judge them (the math is in ``livefire.assessment``).

The samples are found by prefix (``<drill>/samples/<vantage>/<window>-<chunk>.jsonl.gz``): the state carries no list
of chunk keys. They are read chunk by chunk, on a few threads, into columns (``livefire.assessment.columns``); the
recovery check also bins both windows into the report's timeline chart (timeline.json), so the Evidence step
draws it without reading the samples again.

The fault records give the instants as brackets [request sent, answer received]: the fault phase starts when the
first injection request was sent and the recovery phase when the last restore request was sent; the answers
close the brackets (docs/architecture.md §5, §7)."""

from __future__ import annotations

from livefire.artifacts import marker_prefix, sample_prefix
from livefire.assessment import assess, steady_state
from livefire.assessment.chart import CHART_NAME, chart_gap_ms, timeline_chart
from livefire.assessment.columns import SampleColumns
from livefire.assessment.dry_run import with_dry_run
from livefire.assessment.regression import HISTORY_LOOKBACK, recent_rtos, with_recent_rtos
from livefire.contracts import AssessRequest, AssessSummary, Plan, SteadyRequest, SteadyResult, Window
from livefire.datachecks.cleanup import is_cleanup
from livefire.datachecks.markers import load_markers
from livefire.probing.chunks import list_chunks, read_chunks
from livefire.runtime import Runtime
from livefire.telemetry.client import api_for
from livefire.telemetry.measure import with_telemetry


def _window_keys(runtime: Runtime, plan: Plan, window: Window) -> list[str]:
    """The keys of every sample chunk of the window: vantage by vantage as planned, each in chunk order."""
    return [key for vantage in plan.vantages
            for key in list_chunks(runtime.s3, runtime.settings.bucket,
                                   sample_prefix(plan.evidence_prefix, vantage.name, window))]


def _columns(runtime: Runtime, keys: list[str]) -> SampleColumns:
    columns = SampleColumns()
    for key, rows in read_chunks(runtime.s3, runtime.settings.bucket, keys):
        try:
            columns.add_rows(rows)
        except ValueError as exc:
            raise ValueError(f"sample chunk {key}: {exc}") from exc
    return columns


def _saved(runtime: Runtime, key: str, document: object) -> str:
    runtime.put_json(key, document)
    return key


def check_steady(request: SteadyRequest, runtime: Runtime) -> SteadyResult:
    spec = runtime.spec(request.plan)
    samples = _columns(runtime, _window_keys(runtime, request.plan, "baseline"))
    return steady_state(spec, samples, expected_targets=[t.name for t in request.plan.targets])


def evaluate_drill(request: AssessRequest, runtime: Runtime) -> AssessSummary:
    plan = request.plan
    spec = runtime.spec(plan)
    keys = _window_keys(runtime, plan, "drill")
    samples = _columns(runtime, keys)
    marker_keys = list_chunks(runtime.s3, runtime.settings.bucket, marker_prefix(plan.evidence_prefix))
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
        assessment = with_telemetry(assessment, spec, samples, api_for(spec),
                                    lambda name, doc: _saved(runtime, f"{plan.evidence_prefix}{name}", doc))
    chart = timeline_chart([_columns(runtime, _window_keys(runtime, plan, "baseline")), samples],
                           chart_gap_ms(spec.probes.interval))
    if chart is not None:  # the report's timeline, binned while the samples are in memory
        runtime.put_json(f"{plan.evidence_prefix}{CHART_NAME}", chart.model_dump(mode="json"))
    history = runtime.store.history(plan.service, limit=HISTORY_LOOKBACK)  # the service's recent drills
    assessment = with_recent_rtos(assessment, spec, recent_rtos(history, plan.drill_id, plan.pattern))
    key = f"{plan.evidence_prefix}assessment.json"
    runtime.put_json(key, assessment.model_dump(mode="json"))
    failed = sum(1 for finding in assessment.findings if finding.status == "FAIL")
    return AssessSummary(verdict=assessment.verdict, rto_seconds=assessment.rto_seconds,
                         outage_observed=assessment.outage_observed, assessment_key=key,
                         findings=len(assessment.findings), failed_findings=failed)
