"""`livefire campaign run DIR` (a whole campaign on this machine) and `livefire verify --campaign ID` (its
manifest, its signature and every drill's evidence against the digest it recorded; the tampered drills named).

Exit codes of `campaign run`: 0 every drill ran and none failed, 1 a drill failed or the stop rule tripped, 2 the
campaign could not run. `verify --campaign`: 0 intact, 1 tampered, 2 the check could not be made (as `verify`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livefire.egress import LOCAL_RANGES, parse_ranges
from livefire.errors import InvalidCampaign, InvalidDrillSpec
from livefire.evidence.report import format_number
from livefire_local.verdicts import EXIT_ERROR, EXIT_FAIL, EXIT_PASS

if TYPE_CHECKING:
    from livefire.evidence.signature import SignatureVerifier

DEFAULT_EVIDENCE_DIR = "livefire-evidence"
CAMPAIGNS_DIR = "campaigns"


def cmd_campaign_run(args: argparse.Namespace, find_root: Callable[[Path], Path]) -> int:
    import logging

    from livefire_local.campaign_run import run_campaign

    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)  # its own view of caught failures
    try:
        parse_ranges(args.allowed_ranges)
        run = run_campaign(Path(args.folder), root=find_root(Path.cwd()), evidence_root=Path(args.evidence_dir),
                           allowed_ranges=args.allowed_ranges)
    except (InvalidCampaign, InvalidDrillSpec) as exc:
        print(f"invalid campaign: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, ValueError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for result in run.results:
        ending = "SKIPPED" if result["outcome"] == "SKIPPED" else result.get("verdict") or \
            f"{result.get('status')} ({result.get('error')})"
        print(f"{result['index']:>4} {result['service']:<20} {ending:<16} RTO "
              f"{format_number(result.get('rtoSeconds'), 's'):>10}  {result['drillId']}")
    print(f"campaign {run.campaign_id}: {run.status}{f' ({run.error})' if run.error else ''}, "
          f"{run.wall_seconds:.1f}s")
    if run.evidence_dir is None:
        return EXIT_ERROR
    print(f"report: {run.evidence_dir / 'report.html'}")
    return EXIT_PASS if run.status == "SUCCEEDED" else EXIT_FAIL


def _local_drill(root: Path) -> Callable[[str, str], Path | None]:
    def folder(drill_id: str, _service: str) -> Path | None:
        path = root / drill_id
        return path if path.is_dir() else None
    return folder


def verify_campaign(args: argparse.Namespace, verifier: SignatureVerifier, bucket: str | None, s3: Any) -> int:
    """Check campaign ``args.campaign``: from the local evidence folder, or (``bucket`` named) from the bucket."""
    from livefire.campaign.manifest import CampaignCheck, verify_campaign_dir
    from livefire.campaign.model import campaign_prefix
    from livefire_local.evidence_sources import download_evidence

    campaign_id = str(args.campaign)
    check: CampaignCheck
    if bucket is None:
        root = Path(args.evidence_dir or DEFAULT_EVIDENCE_DIR)
        folder = root / CAMPAIGNS_DIR / campaign_id
        if not folder.is_dir():
            print(f"error: no campaign {campaign_id} in {root} ({folder} does not exist)", file=sys.stderr)
            return EXIT_ERROR
        check, where = verify_campaign_dir(folder, _local_drill(root), verifier), str(folder)
    else:
        with tempfile.TemporaryDirectory(prefix="livefire-verify-") as workdir:
            folder = Path(workdir) / "campaign"
            download_evidence(s3, bucket, campaign_prefix(campaign_id), folder)

            def from_bucket(drill_id: str, service: str) -> Path | None:
                target = Path(workdir) / drill_id
                names = download_evidence(s3, bucket, f"drills/{service}/{drill_id}/", target)
                return target if names else None

            check, where = verify_campaign_dir(folder, from_bucket, verifier), f"s3://{bucket}/{campaign_prefix(campaign_id)}"
    if not check.ok:
        named = f" (tampered drills: {', '.join(check.tampered_drills)})" if check.tampered_drills else ""
        print(f"TAMPERED{named}: {check.problems[0]}")
        for problem in check.problems[1:]:
            print(f"  also: {problem}")
        return EXIT_FAIL
    print(f"intact: campaign {campaign_id} in {where}, {check.drills_checked} drills' evidence checked")
    return EXIT_PASS


def add_campaign_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                          find_root: Callable[[Path], Path]) -> None:
    campaign = commands.add_parser("campaign", help="many drills over many services: a campaign (docs/campaigns.md)")
    verbs = campaign.add_subparsers(dest="campaign_command", required=True)
    run = verbs.add_parser("run", help="run a campaign locally: the campaign state machine under moto, each drill "
                                       "a child execution, the sandbox mesh of every service",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("folder", help="the campaign folder: drill specs, optional campaign.yaml (rules:, specs:), "
                                    "mesh/ (sandbox seeds)")
    run.add_argument("--evidence-dir", default=DEFAULT_EVIDENCE_DIR, help="where evidence is copied")
    run.add_argument("--allowed-ranges", default=LOCAL_RANGES, metavar="RANGES",
                     help=f"non-public addresses probes and webhooks may reach (default: {LOCAL_RANGES})")
    run.set_defaults(func=lambda args: cmd_campaign_run(args, find_root))
