"""Rollback / EmergencyRollback: restore every fault of the drill that is not RESTORED, and verify."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import idempotent
from aws_lambda_powertools.utilities.typing import LambdaContext

from livefire.contracts import RollbackRequest
from livefire.faults.lifecycle import rollback_faults
from livefire.idempotency import ROLLBACK_KEY, persistence_layer, step_config
from livefire.runtime import Runtime

logger = Logger()
runtime = Runtime.from_env()


@logger.inject_lambda_context(log_event=False)
@idempotent(persistence_store=persistence_layer("rollback", runtime.settings), config=step_config(ROLLBACK_KEY))
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RollbackRequest.model_validate(event)
    logger.append_keys(drill_id=request.plan.drill_id, emergency=request.emergency)
    result = rollback_faults(request, runtime)
    logger.info("faults restored", extra={"faults": [f.to_state() for f in result.faults]})
    return result.to_state()
