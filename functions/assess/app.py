"""Assess: check the baseline is steady, or compute RTO, availability and findings after the drill."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field, TypeAdapter

from livefire.contracts import AssessRequest, SteadyRequest
from livefire.evaluation import check_steady, evaluate_drill
from livefire.runtime import Runtime

logger = Logger()
runtime = Runtime.from_env()
requests: TypeAdapter[SteadyRequest | AssessRequest] = TypeAdapter(
    Annotated[SteadyRequest | AssessRequest, Field(discriminator="check")]
)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = requests.validate_python(event)
    logger.append_keys(drill_id=request.plan.drill_id, check=request.check)
    if isinstance(request, SteadyRequest):
        return check_steady(request, runtime).to_state()
    return evaluate_drill(request, runtime).to_state()
