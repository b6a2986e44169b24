"""`livefire verify`, `livefire history` and `livefire report`: read and check evidence, locally or in AWS.

A folder is verified on its own (with the earlier drills of its service found beside it); a drill id is
looked up in the deployed stack: the bucket and table come from ``--bucket``/``--table`` or the environment
(``EVIDENCE_BUCKET``/``DRILL_TABLE``), credentials and region from the usual AWS configuration.
Exit codes: 0 intact, 1 tampered, 2 the check could not be made.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livefire_local.verdicts import EXIT_ERROR, EXIT_FAIL, EXIT_PASS

EXIT_INTACT, EXIT_TAMPERED = EXIT_PASS, EXIT_FAIL


def _store(table: str, region: str | None) -> Any:
    import boto3

    from livefire.store import DrillStore

    return DrillStore(boto3.resource("dynamodb", region_name=region).Table(table))


def _s3(region: str | None) -> Any:
    import boto3

    return boto3.client("s3", region_name=region)


def _stack(args: argparse.Namespace, *, bucket: bool = True) -> tuple[str, str]:
    """The bucket and table names, or ValueError naming what is missing."""
    names = {"bucket": args.bucket or os.environ.get("EVIDENCE_BUCKET", ""),
             "table": args.table or os.environ.get("DRILL_TABLE", "")}
    missing = [f"--{k} (or {'EVIDENCE_BUCKET' if k == 'bucket' else 'DRILL_TABLE'})"
               for k, v in names.items() if not v and (bucket or k == "table")]
    if missing:
        raise ValueError(f"name the deployed stack: {' and '.join(missing)}")
    return names["bucket"], names["table"]


def _print_result(target: str, ok: bool, problems: list[str], chain: str | None) -> int:
    if not ok:
        print(f"TAMPERED: {problems[0]}")
        for problem in problems[1:]:
            print(f"  also: {problem}")
        return EXIT_TAMPERED
    print(f"intact: {target}")
    if chain:
        print(f"chain: {chain}")
    return EXIT_INTACT


def _chain_line(drills: list[str], end: str) -> str:
    return f"{len(drills)} drill{'s' if len(drills) != 1 else ''} checked ({' ← '.join(drills)}), back to {end}"


def _depth(value: str) -> int:
    depth = int(value)
    if depth < 0:
        raise argparse.ArgumentTypeError("the depth is a count of earlier drills, 0 or more")
    return depth


def _aws_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    from livefire.evidence.chain import EvidenceNotFound

    return (BotoCoreError, ClientError, EvidenceNotFound, ValueError, OSError)


def cmd_verify(args: argparse.Namespace) -> int:
    from livefire.evidence.chain import verify_chain_dir, verify_drill

    target = str(args.target)
    path = Path(target)
    if path.is_dir():
        result = verify_chain_dir(path, depth=args.depth)
        return _print_result(target, result.ok, result.problems, _chain_line(result.drills, result.end))
    if os.sep in target or target.startswith(".") or path.exists():
        print(f"error: {target} is not an evidence folder", file=sys.stderr)
        return EXIT_ERROR
    try:
        bucket, table = _stack(args)
        with tempfile.TemporaryDirectory(prefix="livefire-verify-") as workdir:
            result = verify_drill(target, s3=_s3(args.region), store=_store(table, args.region), bucket=bucket,
                                  workdir=Path(workdir), depth=args.depth)
    except _aws_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return _print_result(f"drill {target} in s3://{bucket}", result.ok, result.problems,
                         _chain_line(result.drills, result.end))


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cmd_history(args: argparse.Namespace) -> int:
    try:
        _, table = _stack(args, bucket=False)
        entries = _store(table, args.region).history(args.service, limit=args.limit)
    except _aws_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not entries:
        print(f"no drills of {args.service}")
        return EXIT_INTACT
    print(f"{'started':<21} {'pattern':<15} {'verdict':<13} {'RTO':>9}  drill")
    for entry in entries:
        rto = "-" if entry.rto_seconds is None else f"{entry.rto_seconds:.3f}s"
        verdict = entry.verdict or entry.status or "-"
        print(f"{_time(entry.started_at_ms):<21} {entry.pattern or '-':<15} {verdict:<13} {rto:>9}  {entry.drill_id}")
    return EXIT_INTACT


def cmd_report(args: argparse.Namespace) -> int:
    from livefire.evidence.chain import download_evidence, evidence_location
    from livefire.evidence.manifest import verify_evidence_dir

    destination = Path(args.out) if args.out else Path("livefire-evidence") / args.drill_id
    if destination.exists() and any(destination.iterdir()):
        print(f"error: {destination} already holds files; choose an empty folder with --out", file=sys.stderr)
        return EXIT_ERROR
    try:
        bucket, table = _stack(args)
        record, prefix = evidence_location(_store(table, args.region), args.drill_id)
        names = download_evidence(_s3(args.region), bucket, prefix, destination)
    except _aws_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"saved {len(names)} files of drill {args.drill_id} to {destination}")
    if (destination / "report.html").is_file():
        print(f"report: {destination / 'report.html'}")
    result = verify_evidence_dir(destination, expected_manifest_digest=str(record["manifestDigest"]))
    return _print_result(str(destination), result.ok, result.problems, None)


def _stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bucket", default=None, help="evidence bucket (default: $EVIDENCE_BUCKET)")
    parser.add_argument("--table", default=None, help="drill table (default: $DRILL_TABLE)")
    parser.add_argument("--region", default=None, help="AWS region (default: the AWS configuration's)")


def add_evidence_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = commands.add_parser(
        "verify", help="recompute every digest of a drill's evidence and follow its hash chain",
        description="Exit 0 intact, 1 tampered (the first artifact or chain link that does not match is named), "
                    "2 when the check could not be made.",
    )
    verify.add_argument("target", help="an evidence folder (e.g. livefire-evidence/<drill-id>) or a drill id")
    verify.add_argument("--depth", type=_depth, default=None, help="follow at most this many earlier drills")
    _stack_options(verify)
    verify.set_defaults(func=cmd_verify)
    history = commands.add_parser("history", help="list a service's past drills, newest first")
    history.add_argument("--service", required=True, help="the service (metadata.service of the drill spec)")
    history.add_argument("--limit", type=int, default=20, help="at most this many drills (default 20)")
    _stack_options(history)
    history.set_defaults(func=cmd_history)
    report = commands.add_parser("report", help="download a drill's evidence (report.html and raw data)")
    report.add_argument("drill_id", help="the drill id (the execution name)")
    report.add_argument("--out", default=None, help="folder to write (default livefire-evidence/<drill-id>)")
    _stack_options(report)
    report.set_defaults(func=cmd_report)
