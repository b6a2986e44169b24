"""Guardian: after an execution FAILED / TIMED_OUT / ABORTED, or on the sweep schedule, restore and release; a
restore it cannot complete raises GuardianRestoreFailed, so Lambda retries the event and then dead-letters it."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from livefire.guardian import GuardianEvent, guard
from livefire.runtime import Runtime

logger = Logger()
runtime = Runtime.from_env()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = guard(GuardianEvent.from_event(event), runtime)
    logger.info("guardian done", extra=report.to_state())
    return report.to_state()
