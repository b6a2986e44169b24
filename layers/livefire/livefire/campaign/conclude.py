"""The campaign's last step: its report (markdown and HTML), its results and its signed manifest, written to
``campaigns/<id>/``; the summary it returns chooses how the campaign execution ends."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from livefire.campaign.manifest import REPORT_HTML, REPORT_MD, RESULTS, build_campaign_manifest, seal_campaign
from livefire.campaign.model import SKIPPED, Campaign, CampaignSummary
from livefire.campaign.report import render_html, render_markdown
from livefire.campaign.steps import results
from livefire.campaign.stop_rule import Ended, stop_reason
from livefire.errors import CampaignManifestError
from livefire.evidence.manifest import MANIFEST_NAME
from livefire.evidence.signature import SIGNATURE_NAME
from livefire.runtime import Runtime

_TYPES = {REPORT_MD: "text/markdown; charset=utf-8", REPORT_HTML: "text/html; charset=utf-8",
          RESULTS: "application/json", MANIFEST_NAME: "application/json", SIGNATURE_NAME: "application/json"}


def conclude(campaign: Campaign, runtime: Runtime) -> CampaignSummary:
    found = results(runtime, campaign)
    skipped = [r for r in found if r.outcome == SKIPPED]
    # the rule is stated as it stood when the first drill was skipped: the drills that ended before it
    stopped = skipped[0].reason if skipped else None
    if stopped is None and len(found) < campaign.drills:
        stopped = stop_reason([Ended(r.drill_id, r.result_class) for r in found], campaign.rules)
    artifacts = {
        REPORT_MD: render_markdown(campaign, found, stopped).encode(),
        REPORT_HTML: render_html(campaign, found, stopped).encode(),
        RESULTS: (json.dumps([r.to_state() for r in found], indent=2, sort_keys=True) + "\n").encode(),
    }
    try:
        manifest = build_campaign_manifest(campaign, found, artifacts, runtime.signer, stopped)
        body, signature, digest = seal_campaign(manifest, runtime.signer)
        for name, data in {**artifacts, MANIFEST_NAME: body, SIGNATURE_NAME: signature}.items():
            runtime.s3.put_object(Bucket=runtime.settings.bucket, Key=campaign.prefix + name, Body=data,
                                  ContentType=_TYPES[name])
    except (BotoCoreError, ClientError) as exc:
        raise CampaignManifestError(f"campaign {campaign.campaign_id}: {exc}") from exc
    return CampaignSummary(
        campaign_id=campaign.campaign_id, drills=campaign.drills, ran=sum(r.outcome == "RAN" for r in found),
        passed=sum(r.verdict == "PASS" for r in found), failed=sum(r.failed for r in found), skipped=len(skipped),
        stopped=stopped, report_key=campaign.prefix + REPORT_HTML, manifest_key=campaign.prefix + MANIFEST_NAME,
        manifest_digest=digest,
    )
