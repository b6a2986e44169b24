"""When a campaign stops: once more than ``maxFailures`` drills FAILed (or ended in ERROR), or at the first drill a
guardrail aborted (or whose restore was refused: a fault may be live). A drill not yet started when it trips ends
SKIPPED with nothing injected; drills already running finish (their rollback is theirs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from livefire.campaign.model import CampaignRules


@dataclass(frozen=True)
class Ended:
    """What the stop rule needs of an ended drill: its id and class (ok, failed, aborted, skipped)."""

    drill_id: str
    result_class: str


def stop_reason(ended: Sequence[Ended], rules: CampaignRules) -> str | None:
    """Why the campaign stops, in one line, or None while it goes on."""
    aborted = [e.drill_id for e in ended if e.result_class == "aborted"]
    if aborted:
        return f"drill {aborted[0]} was aborted by a guardrail (or its restore refused): no further drill starts"
    failed = sorted(e.drill_id for e in ended if e.result_class == "failed")
    if len(failed) > rules.max_failures:
        drills = "drill" if len(failed) == 1 else "drills"
        return (f"{len(failed)} {drills} failed ({', '.join(failed)}), more than maxFailures {rules.max_failures}: "
                "no further drill starts")
    return None
