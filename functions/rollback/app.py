"""Rollback / EmergencyRollback: restore every fault of the drill that is not RESTORED, and verify."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from livefire.chaos import rollback_drill
from livefire.contracts import RollbackRequest
from livefire.runtime import Runtime

logger = Logger()
runtime = Runtime.from_env()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RollbackRequest.model_validate(event)
    logger.append_keys(drill_id=request.plan.drill_id, emergency=request.emergency)
    result = rollback_drill(request.plan.drill_id, runtime)
    logger.info("faults restored", extra={"faults": [f.to_state() for f in result.faults]})
    return result.to_state()
