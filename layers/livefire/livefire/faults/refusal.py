"""A refused restore is an outcome of its own, never silent (docs/architecture.md §9): someone else changed the
target since the snapshot, so livefire left it as it is and a person must decide. The drill's verdict becomes
RESTORE_REFUSED (never PASS), the ``Drill Completed`` event carries it, a ``RestoreRefused`` metric fires (its alarm
is in template.yaml), and the report's first line names the object, what differs and the command to restore it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Final, Literal, TypeVar

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from livefire.records import FaultRecord, RestoreRefusal

REFUSED: Final = "RESTORE_REFUSED"
V = TypeVar("V", bound=str)
METRIC = "RestoreRefused"
METRICS_NAMESPACE = "Livefire"
METRICS_SERVICE = "livefire"  # the one dimension of the metric, as RestoreRefusedAlarm names it


def refused(records: Sequence[FaultRecord]) -> list[RestoreRefusal]:
    """The refused restores among a drill's fault records."""
    return [record.refusal for record in records if record.status == "CONFLICT" and record.refusal is not None]


def verdict_with_refusals(verdict: V, records: Sequence[FaultRecord]) -> V | Literal["RESTORE_REFUSED"]:
    """RESTORE_REFUSED when any restore was refused: a fault may still be live, whatever the probes said."""
    return REFUSED if any(record.status == "CONFLICT" for record in records) else verdict


def refusal_lines(records: Sequence[FaultRecord]) -> list[str]:
    """One line per refused restore, for the top of the report."""
    return [f"RESTORE REFUSED: {r.target} was changed by someone else during the drill ({', '.join(r.differs)} "
            f"differ{'s' if len(r.differs) == 1 else ''} from the snapshot) and was left as it is; restore it by "
            f"hand: {r.command}" for r in refused(records)]


def announce(drill_id: str, fault_id: str, refusal: RestoreRefusal) -> None:
    """The RestoreRefused metric (CloudWatch EMF on stdout), with the drill, fault and object as metadata."""
    metrics = EphemeralMetrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or METRICS_NAMESPACE,
                               service=METRICS_SERVICE)
    metrics.add_metric(name=METRIC, unit=MetricUnit.Count, value=1)
    for key, value in (("drillId", drill_id), ("faultId", fault_id), ("target", refusal.target)):
        metrics.add_metadata(key=key, value=value)
    metrics.flush_metrics()
