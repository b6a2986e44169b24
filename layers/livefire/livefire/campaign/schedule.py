"""The campaign's order: stages (by tier, wave or as listed), each split into rounds of at most one drill per
service. A round ends before the next begins, so no two drills of one service ever run at once, whatever the
campaign's MaxConcurrency (the per-service lease, livefire/leases.py, would refuse the second one anyway)."""

from __future__ import annotations

from dataclasses import dataclass

from livefire.campaign.model import CampaignRules

# Where a service without a tier, or a drill without a wave, goes: after every listed one.
LAST = 1 << 30


@dataclass(frozen=True)
class Planned:
    """A drill to schedule: its place in the given list, its name and its service."""

    index: int
    name: str
    service: str


def stage_of(drill: Planned, rules: CampaignRules) -> int:
    if rules.order == "tier":
        return rules.tiers.get(drill.service, LAST)
    if rules.order == "wave":
        return rules.waves.get(drill.name, LAST)
    return 0


def plan_rounds(drills: list[Planned], rules: CampaignRules) -> list[list[Planned]]:
    """The rounds, in order: stage by stage (a stable sort keeps the listed order within one), and in a stage each
    round takes the next drill of every service that still has one, services in the order they first appear."""
    ordered = sorted(drills, key=lambda d: (stage_of(d, rules), d.index))
    rounds: list[list[Planned]] = []
    stages = sorted({stage_of(d, rules) for d in ordered})
    for stage in stages:
        pending: dict[str, list[Planned]] = {}
        for drill in ordered:
            if stage_of(drill, rules) == stage:
                pending.setdefault(drill.service, []).append(drill)
        while any(pending.values()):
            rounds.append([queue.pop(0) for queue in pending.values() if queue])
    return rounds


def campaign_drill_id(campaign_id: str, index: int, service: str) -> str:
    """The child execution's name (at most 80 characters, as Step Functions allows): campaign, place, service."""
    return f"{campaign_id[:44]}-{index:04d}-{service[:30]}"
