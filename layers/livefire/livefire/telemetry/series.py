"""Counters on the query grid, cut into the drill's phases (docs/architecture.md §7).

A range query answers a counter's value at each grid instant ``t_k = start + k * step``: the last scrape at or
before it, so the scrape at ``s_k`` lies in ``(t_k - scrape, t_k]``. The increase between two grid instants is
what the mesh counted in ``(s_(k-1), s_k]``; a drop is a counter reset (the new value is the increase); a series
that first appears after the start is a new counter (it counts from 0). A phase keeps only the steps whose
requests surely fall inside it: ``t_(k-1) - scrape >= phase start`` and ``t_k <= phase end``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from livefire.errors import TelemetryUnavailable

# response_flags that mean the proxy answered itself (a local reply), whatever the status: no healthy upstream,
# upstream overflow, retry limit, fault injection, rate limit, upstream reset / timeout / connection failure, ...
LOCAL_REPLY_FLAGS = frozenset({"UH", "UF", "UO", "NR", "URX", "FI", "RL", "UC", "UT", "UR", "LR", "DC", "DI",
                               "NC", "SI", "UAEX", "RLSE", "UPE", "UMSDR", "OM", "DF"})


@dataclass(frozen=True)
class Grid:
    """The query's instants, epoch seconds: ``start + k * step`` up to ``end``."""

    start: float
    end: float
    step: float

    @property
    def instants(self) -> list[float]:
        count = math.floor((self.end - self.start) / self.step + 1e-9) + 1
        return [round(self.start + k * self.step, 3) for k in range(count)]

    def span(self, from_s: float, to_s: float, scrape_s: float) -> list[int]:
        """The steps ``k`` (interval ``(t_(k-1), t_k]``) whose requests surely fall inside [from_s, to_s]."""
        times = self.instants
        return [k for k in range(1, len(times)) if times[k - 1] - scrape_s >= from_s and times[k] <= to_s]


def increases(values: Sequence[Sequence[Any]], grid: Grid) -> list[float]:
    """Per step ``k`` (index 0 unused, always 0): what the counter grew by in ``(t_(k-1), t_k]``."""
    by_time = {round(float(t), 3): float(v) for t, v in values}
    times = grid.instants
    out = [0.0] * len(times)
    previous: float | None = None
    for k, t in enumerate(times):
        value = by_time.get(t)
        if value is None or math.isnan(value):
            continue
        if previous is None:
            previous = value if k == 0 else 0.0
            if k == 0:
                continue
        out[k] = value - previous if value >= previous else value
        previous = value
    return out


def matrix(document: Mapping[str, Any], name: str) -> list[tuple[dict[str, str], list[Any]]]:
    """``(labels, values)`` of each series of a ``query_range`` answer; TelemetryUnavailable on a bad shape."""
    result: list[tuple[dict[str, str], list[Any]]] = []
    try:
        for series in document["data"]["result"]:
            labels = {str(k): str(v) for k, v in series["metric"].items()}
            values = [(float(t), float(v)) for t, v in series["values"]]
            result.append((labels, values))
    except (KeyError, TypeError, ValueError) as exc:
        raise TelemetryUnavailable(f"{name}: an unreadable series ({type(exc).__name__})") from None
    return result


def is_error(code: str, flags: str) -> bool:
    """A 5xx answer, or a local reply of the proxy (``response_flags`` other than ``-``), or no answer (code 0)."""
    if code.startswith("5") or code == "0":
        return True
    return any(flag in LOCAL_REPLY_FLAGS for flag in flags.split(","))


def summed(steps: Mapping[Any, Sequence[float]], ks: Iterable[int]) -> dict[Any, float]:
    """Each key's increases over the steps ``ks``."""
    chosen = list(ks)
    return {key: sum(values[k] for k in chosen) for key, values in steps.items()}


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """``histogram_quantile`` on cumulative bucket counts by upper bound (``inf`` the total): linear inside the
    bucket that holds the rank; the highest finite bound when the rank falls in the ``+Inf`` bucket."""
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound
