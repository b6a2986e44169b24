"""Evidence: write the reports, seal the manifest into its chain and sign it, finish the record, release the lease."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from livefire.contracts import EvidenceRequest
from livefire.evidence.publish import publish_evidence
from livefire.runtime import Runtime

logger = Logger()
runtime = Runtime.from_env()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = EvidenceRequest.model_validate(event)
    logger.append_keys(drill_id=request.plan.drill_id, outcome=request.outcome)
    result = publish_evidence(request, runtime)
    logger.info("evidence saved", extra={"verdict": result.verdict, "manifest": result.manifest_key})
    return result.to_state()
