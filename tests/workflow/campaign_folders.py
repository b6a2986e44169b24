"""Campaign folders for the workflow tests: sandbox drills of several services, each service a copy of the
sandbox "payments" service (its spec and its two clusters' seeds) under its own name, in the one namespace the
local stack allows (template parameter AllowedNamespaces)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.conftest import MESH_DIR, sandbox_spec_document

# As short as a drill that still fails over and back: the lease tests' phases, tolerant of a stalled probe.
SHORT_PHASES = {"baseline": "1s", "lead": "0s", "fault": "1s", "recovery": "1s"}
TOLERANT = {"availability": 80, "maxConsecutiveErrors": 3}
SEEDS = ("payments-use1.yaml", "payments-usw2.yaml")
NAMESPACE = "payments"


def renamed(text: str, service: str) -> str:
    return text.replace(NAMESPACE, service).replace(f"namespace: {service}", f"namespace: {NAMESPACE}")


def drill_document(service: str, name: str, **overrides: Any) -> dict[str, Any]:
    document = sandbox_spec_document(**{"phases": dict(SHORT_PHASES), "objectives": {}, "steady": TOLERANT,
                                        **overrides})
    document = yaml.safe_load(renamed(yaml.safe_dump(document, sort_keys=False), service))
    document["metadata"]["name"] = name
    document["fault"]["target"]["namespace"] = NAMESPACE
    document["guardrails"]["allowedNamespaces"] = [NAMESPACE]
    return document


def write_campaign(folder: Path, drills: dict[str, dict[str, Any]], rules: dict[str, Any], *,
                   ejection: str = "5s") -> Path:
    """``drills``: file stem -> spec document; every service they name gets its sandbox seeds in folder/mesh, whose
    outlier detection ejects a failing region for ``ejection`` (the seeds' 5 s outlast a short recovery phase)."""
    (folder / "mesh").mkdir(parents=True, exist_ok=True)
    for stem, document in drills.items():
        (folder / f"{stem}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        service = document["metadata"]["service"]
        for seed in SEEDS:
            text = renamed((MESH_DIR / seed).read_text(), service).replace("baseEjectionTime: 5s",
                                                                            f"baseEjectionTime: {ejection}")
            (folder / "mesh" / renamed(seed, service)).write_text(text)
    (folder / "campaign.yaml").write_text(yaml.safe_dump({"rules": rules, "specs": [f"{s}.yaml" for s in drills]}))
    return folder
