"""Probe: probe every endpoint on a fixed schedule for one window, streaming samples to S3."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from livefire.contracts import ProbeRequest
from livefire.probing.window import probe_window
from livefire.runtime import Runtime

logger = Logger()
runtime = Runtime.from_env()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ProbeRequest.model_validate(event)
    logger.append_keys(drill_id=request.plan.drill_id, vantage=request.vantage.name, window=request.window)
    spec = runtime.spec(request.plan)
    summary = probe_window(request, spec, s3_client=runtime.s3, bucket=runtime.settings.bucket)
    logger.info("window probed", extra={"targets": [t.to_state() for t in summary.targets]})
    return summary.to_state()
