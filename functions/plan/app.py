"""Plan: validate the drill spec, enforce the blast radius, take the lease, record the drill."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from livefire.contracts import PlanRequest
from livefire.planning import plan_drill
from livefire.runtime import Runtime

logger = Logger()
runtime = Runtime.from_env()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PlanRequest.model_validate(event)
    logger.append_keys(drill_id=request.drill_id)
    return plan_drill(request, runtime).to_state()
