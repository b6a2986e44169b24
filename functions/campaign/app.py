"""Campaign: the campaign state machine's steps (plan, admit, record, conclude); the logic is in livefire.campaign."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from livefire.campaign.conclude import conclude
from livefire.campaign.model import AdmitRequest, Campaign, PlanCampaignRequest, RecordRequest
from livefire.campaign.steps import admit, plan_campaign, record
from livefire.runtime import Runtime

logger = Logger()
runtime = Runtime.from_env()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = event.get("step")
    if step == "plan":
        return plan_campaign(PlanCampaignRequest.model_validate(event), runtime).to_state()
    if step == "admit":
        return admit(AdmitRequest.model_validate(event), runtime).to_state()
    if step == "record":
        return record(RecordRequest.model_validate(event), runtime).to_state()
    if step == "conclude":
        return conclude(Campaign.model_validate(event["campaign"]), runtime).to_state()
    raise ValueError(f"unknown campaign step {step!r}")
