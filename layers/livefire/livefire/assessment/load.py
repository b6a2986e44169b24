"""The load a drill put on each endpoint, as sent (docs/architecture.md §6): what the endpoint's owner must expect.

A target is probed on its fixed schedule (one probe a base interval) and, while it is degraded, watched at the burst
interval for at most ``probes.burstMaxDuration`` of budget: the report states the probes each vantage really sent,
on average over the drill window and at their peak within one second.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from livefire.assessment.columns import Series
from livefire.assessment.model import ProbeLoad


def probe_load(groups: Mapping[tuple[str, str], Series]) -> list[ProbeLoad]:
    """One ``ProbeLoad`` per (vantage, target) that sent anything, in that order."""
    loads = []
    for (vantage, target), series in sorted(groups.items()):
        sent = series.sent_ms
        if not sent:
            continue
        span_s = (max(sent) - min(sent)) / 1000.0
        per_second = Counter(int(ms // 1000.0) for ms in sent)
        loads.append(ProbeLoad(
            vantage=vantage, target=target, sent=len(sent), watch=sum(series.burst),
            average_per_s=round(len(sent) / span_s, 2) if span_s > 0 else None,
            peak_per_s=max(per_second.values()),
        ))
    return loads
