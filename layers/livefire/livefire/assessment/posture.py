"""Posture findings: each item the spec's ``posture.require`` names must hold in every audited region's cluster
(docs/architecture.md §7). The audit itself is ``livefire.mesh.posture.audit_mesh``; this judges its result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from livefire.assessment.model import EvidencePointer, Finding, Status, rule
from livefire.spec import DrillSpec, PostureItem

POSTURE_ARTIFACT = "posture.json"
# The audit's check for each item a spec can require.
CHECKS: dict[PostureItem, str] = {
    "mtlsStrict": "mtls-strict",
    "outlierDetection": "outlier-detection",
    "localityFailover": "locality-failover",
}
TITLES: dict[PostureItem, str] = {
    "mtlsStrict": "STRICT mTLS for the service in every region",
    "outlierDetection": "Outlier detection for the service in every region",
    "localityFailover": "Locality failover for the service in every region",
}


@rule("Required by posture.require: PASS when every region's audit finds the item (mtlsStrict: STRICT by Istio's "
      "PeerAuthentication precedence; outlierDetection; localityFailover, which needs outlierDetection); FAIL when a "
      "region lacks it; INCONCLUSIVE when a region was not audited.")
def _finding(item: PostureItem, audits: Sequence[Mapping[str, Any]] | None) -> Finding:
    """PASS when every region's audit has the item's check ok; FAIL when one region's check failed;
    INCONCLUSIVE when a region could not be audited (or nothing was)."""
    check = CHECKS[item]
    failed, unknown, passed = [], [], []
    for audit in audits or []:
        region = str(audit.get("region"))
        results = [f for f in audit.get("findings") or [] if f.get("check") == check]
        if audit.get("skipped") or not results:
            unknown.append(f"{region}: not audited ({audit.get('skipped') or 'no ' + check + ' check'})")
        elif all(f.get("ok") for f in results):
            passed.append(f"{region}: {results[0].get('detail')}")
        else:
            failed.append(f"{region}: {'; '.join(str(f.get('detail')) for f in results if not f.get('ok'))}")
    status: Status = "FAIL" if failed else "INCONCLUSIVE" if unknown or not passed else "PASS"
    detail = "; ".join([*failed, *unknown, *passed]) or "the mesh posture was not audited"
    return Finding(
        id=f"posture{item[0].upper()}{item[1:]}", title=TITLES[item], measured=float(len(passed)), unit="regions",
        threshold=float(len(audits or [])), status=status,
        detail=f"required by posture.require (audit in {POSTURE_ARTIFACT}): {detail}", evidence=EvidencePointer(),
    )


def posture_findings(spec: DrillSpec, audits: Sequence[Mapping[str, Any]] | None) -> list[Finding]:
    """One finding per item of ``posture.require``, in the order given; none when nothing is required."""
    required = spec.posture.require if spec.posture is not None else []
    return [_finding(item, audits) for item in required]
