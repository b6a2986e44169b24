"""Probe: probe every endpoint on a fixed schedule for one chunk of a window, streaming samples to S3 (the state
machine runs two lanes of chunks per window until the summary says done: livefire/probing/relay.py)."""

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from livefire.config import probe_chunk_seconds
from livefire.contracts import ProbeRequest
from livefire.probing.window import probe_window
from livefire.runtime import Runtime

DEADLINE_MARGIN_MS = 10_000  # the samples are flushed and the summary returned before the invocation ends
logger = Logger()
runtime = Runtime.from_env()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ProbeRequest.model_validate(event)
    logger.append_keys(drill_id=request.plan.drill_id, vantage=request.vantage.name, window=request.window,
                       chunk=request.probe.summary.next_chunk if request.probe else request.lane)
    spec = runtime.spec(request.plan)
    # The main stack's probe reads the drill's fault records (its window follows a late rollback); a probe-only
    # stack in another region or account has no drill table and keeps to the planned window.
    faults = (lambda: runtime.store.faults_of(request.plan.drill_id)) if runtime.settings.table else None
    deadline_ms = time.time() * 1000.0 + context.get_remaining_time_in_millis() - DEADLINE_MARGIN_MS
    summary = probe_window(request, spec, s3_client=runtime.s3, bucket=runtime.settings.bucket, faults=faults,
                           chunk_s=probe_chunk_seconds(), deadline_ms=deadline_ms)
    logger.info("window probed" if summary.done else "chunk probed",
                extra={"targets": [t.to_state() for t in summary.targets]})
    return summary.to_state()
