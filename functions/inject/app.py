"""Inject: the fault lifecycle writes each fault record ahead, then its driver applies the fault."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import idempotent
from aws_lambda_powertools.utilities.typing import LambdaContext

from livefire.contracts import InjectRequest
from livefire.faults.lifecycle import inject_faults
from livefire.idempotency import INJECT_KEY, persistence_layer, step_config
from livefire.runtime import Runtime

logger = Logger()
runtime = Runtime.from_env()


@logger.inject_lambda_context(log_event=False)
@idempotent(persistence_store=persistence_layer("inject", runtime.settings), config=step_config(INJECT_KEY))
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = InjectRequest.model_validate(event)
    logger.append_keys(drill_id=request.plan.drill_id)
    result = inject_faults(request, runtime)
    logger.info("faults injected", extra={"faults": [f.to_state() for f in result.faults]})
    return result.to_state()
