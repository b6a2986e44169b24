"""Local evidence chains across runs: the chain state kept beside the evidence folder.

Each `livefire run` starts a fresh moto, so the chain head lives on this machine between runs:
``<evidence folder>/.chain/<service>.json`` lists, oldest first, every drill of the service sealed here (drill id,
sequence, manifest digest and the link to the previous drill): what the drill table holds in AWS. Before a run
the local table's chain head is seeded from it, so the Evidence step links the new drill to the last one; after
the run the new drill's seal is appended. `livefire verify` reads it as the local drill records.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from livefire.assessment import Assessment
from livefire.assessment.regression import HISTORY_LOOKBACK
from livefire.contracts import Plan
from livefire.evidence.chain import Recorded
from livefire.records import ChainHead, DrillRecord
from livefire.store import DrillStore

CHAIN_DIR = ".chain"
STATE_VERSION = 1
_SERVICE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class LocalChain:
    """The chain state of every service whose drills are in ``root`` (an evidence folder)."""

    root: Path

    def path(self, service: str) -> Path:
        if not _SERVICE.match(service):
            raise ValueError(f"{service!r} is not a service name")
        return self.root / CHAIN_DIR / f"{service}.json"

    def services(self) -> list[str]:
        folder = self.root / CHAIN_DIR
        return sorted(path.stem for path in folder.glob("*.json")) if folder.is_dir() else []

    def drills(self, service: str) -> list[Recorded]:
        """The service's sealed drills, oldest first; ValueError when the state cannot be read."""
        path = self.path(service)
        if not path.is_file():
            return []
        try:
            state = json.loads(path.read_bytes())
            return [Recorded(**entry, service=service) for entry in state["drills"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a livefire chain state ({exc})") from None

    def recorded(self, drill_id: str) -> Recorded | None:
        return next((r for s in self.services() for r in self.drills(s) if r.drill_id == drill_id), None)

    def head(self, service: str) -> ChainHead | None:
        drills = self.drills(service)
        if not drills or drills[-1].sequence is None:
            return None
        last = drills[-1]
        return ChainHead(digest=last.manifest_digest, drill_id=last.drill_id, sequence=last.sequence)

    def append(self, recorded: Recorded) -> None:
        assert recorded.service is not None
        drills = [*self.drills(recorded.service), recorded]
        entries: list[dict[str, Any]] = [{k: v for k, v in asdict(r).items() if k != "service"} for r in drills]
        path = self.path(recorded.service)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps({"version": STATE_VERSION, "service": recorded.service, "drills": entries},
                                      indent=2, sort_keys=True) + "\n")
        partial.replace(path)

    def seed(self, store: DrillStore, service: str) -> None:
        """Put the service's chain head into a fresh local drill table, so the next drill links to the last, and
        the records of its recent drills, so Assess sees their RTOs in the history (rtoRegression)."""
        head = self.head(service)
        if head is not None:
            store.continue_chain(service, head)
        for recorded in self.drills(service)[-HISTORY_LOOKBACK:]:
            record = self.drill_record(recorded)
            if record is not None:
                store.restore_drill(record)

    def drill_record(self, recorded: Recorded) -> DrillRecord | None:
        """The drill record of a drill sealed here, rebuilt from its evidence folder (plan.json, assessment.json);
        None when the folder is gone or unreadable."""
        folder = self.root / recorded.drill_id
        try:
            plan = Plan.model_validate_json((folder / "plan.json").read_bytes())
            judged = folder / "assessment.json"
            assessment = Assessment.model_validate_json(judged.read_bytes()) if judged.is_file() else None
        except (OSError, ValueError):
            return None
        if assessment is None and recorded.verdict is None:
            return None  # neither judged nor finished: nothing for the history to show
        return DrillRecord(
            drill_id=plan.drill_id, execution_arn=plan.execution_arn, service=plan.service, pattern=plan.pattern,
            mode=plan.mode, spec_digest=plan.spec_digest, started_at_ms=plan.started_at_ms,
            status="COMPLETED" if assessment is not None else str(recorded.verdict), verdict=recorded.verdict,
            rto_seconds=assessment.rto_seconds if assessment else None,
            outage_observed=assessment.outage_observed if assessment else None)

    def save(self, store: DrillStore, drill_id: str) -> None:
        """Append the drill's seal, once the local run sealed it into the chain."""
        record = store.get_drill(drill_id)
        recorded = Recorded.of(record) if record is not None else None
        if recorded is not None and self.recorded(drill_id) is None:
            self.append(recorded)
