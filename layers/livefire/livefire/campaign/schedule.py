"""The campaign's order: stages (by tier, wave or as listed), each split into rounds of at most ``maxConcurrency``
drills and at most one drill per service. A round ends before the next begins, so no two drills of one service
ever run at once (the per-service lease, livefire/leases.py, would refuse the second one anyway), and a full round
runs all its drills at once."""

from __future__ import annotations

from collections import deque
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
    """The rounds, in order: stage by stage (a stable sort keeps the listed order within one); in a stage the
    services take turns (in the order they first appear): each round takes the next drill of the next
    ``maxConcurrency`` services that still have one, and a service goes back in line after the round."""
    ordered = sorted(drills, key=lambda d: (stage_of(d, rules), d.index))
    rounds: list[list[Planned]] = []
    for stage in sorted({stage_of(d, rules) for d in ordered}):
        pending: dict[str, deque[Planned]] = {}
        for drill in ordered:
            if stage_of(drill, rules) == stage:
                pending.setdefault(drill.service, deque()).append(drill)
        line = deque(pending)
        while line:
            taken = [line.popleft() for _ in range(min(rules.max_concurrency, len(line)))]
            rounds.append([pending[service].popleft() for service in taken])
            line.extend(service for service in taken if pending[service])
    return rounds


def campaign_drill_id(campaign_id: str, index: int, service: str) -> str:
    """The child execution's name (at most 80 characters, as Step Functions allows): campaign, place, service."""
    return f"{campaign_id[:44]}-{index:04d}-{service[:30]}"
