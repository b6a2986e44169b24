"""AwaitApproval: store the go/no-go gate's task token on the drill record and announce what will be injected.

The event carries the task token: it is never logged (``log_event=False``; the log line names the drill only).
"""

import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from livefire.approval import ApprovalRequest, request_approval
from livefire.runtime import Runtime

logger = Logger()
runtime = Runtime.from_env()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ApprovalRequest.model_validate(event)
    logger.append_keys(drill_id=request.plan.drill_id)
    announced = request_approval(request, runtime.store, runtime.events, runtime.settings,
                                 now_ms=int(time.time() * 1000),
                                 sns_for=lambda region: boto3.client("sns", region_name=region))
    logger.info("approval requested", extra={"faults": announced.faults, "deadline_ms": announced.deadline_ms,
                                             "approvers": announced.approvers})
    return announced.to_state()
