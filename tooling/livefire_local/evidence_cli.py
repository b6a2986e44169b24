"""`livefire verify`, `livefire public-key`, `livefire history` and `livefire report`: check and read evidence,
locally or in AWS.

A folder is verified with the earlier drills of its service found beside it; a drill id is looked up in the
deployed stack: the bucket and table come from ``--bucket``/``--table`` or the environment
(``EVIDENCE_BUCKET``/``DRILL_TABLE``), credentials and region from the usual AWS configuration. ``--chain
SERVICE`` recomputes every drill of the service's chain, from the stack when one is named, else from the local
evidence folder. Signatures are checked with a trusted public key: ``--public-key PEM``, else the stack's KMS
key (``--key-id`` or ``SIGNING_KEY_ID``), else, for local evidence, the local signing key.
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
DEFAULT_EVIDENCE_DIR = "livefire-evidence"


class CannotCheck(Exception):
    """The check could not be made (no key, no stack named, unreadable state): exit 2, not a verdict."""


def _store(table: str, region: str | None) -> Any:
    import boto3

    from livefire.store import DrillStore

    return DrillStore(boto3.resource("dynamodb", region_name=region).Table(table))


def _client(service: str, region: str | None) -> Any:
    import boto3

    return boto3.client(service, region_name=region)


def _stack_named(args: argparse.Namespace) -> bool:
    return bool(args.bucket or args.table or (os.environ.get("EVIDENCE_BUCKET") and os.environ.get("DRILL_TABLE")))


def _stack(args: argparse.Namespace, *, bucket: bool = True) -> tuple[str, str]:
    """The bucket and table names, or CannotCheck naming what is missing."""
    names = {"bucket": args.bucket or os.environ.get("EVIDENCE_BUCKET", ""),
             "table": args.table or os.environ.get("DRILL_TABLE", "")}
    missing = [f"--{k} (or {'EVIDENCE_BUCKET' if k == 'bucket' else 'DRILL_TABLE'})"
               for k, v in names.items() if not v and (bucket or k == "table")]
    if missing:
        raise CannotCheck(f"name the deployed stack: {' and '.join(missing)}")
    return names["bucket"], names["table"]


def _verifier(args: argparse.Namespace, *, stack: bool) -> Any:
    """The public key signatures must verify with (see the module docstring)."""
    from livefire.evidence.signature import pem_from_der
    from livefire_local.signing import LocalSigningKey, PublicKeyVerifier, local_key_path

    try:
        if args.public_key:
            return PublicKeyVerifier(Path(args.public_key).read_text())
        key_id = args.key_id or os.environ.get("SIGNING_KEY_ID")
        if stack or key_id:
            if not key_id:
                raise CannotCheck("name the key that signs the stack's manifests: --key-id (or SIGNING_KEY_ID, the "
                                  "stack output SigningKeyArn), or --public-key PEM")
            der = _client("kms", args.region).get_public_key(KeyId=key_id)["PublicKey"]
            return PublicKeyVerifier(pem_from_der(bytes(der)))
        if not local_key_path().is_file():
            raise CannotCheck(f"no public key to check signatures with: --public-key PEM (export one with `livefire "
                              f"public-key`); the local signing key {local_key_path()} does not exist")
        return PublicKeyVerifier(LocalSigningKey.load_or_create().public_pem)
    except (OSError, ValueError) as exc:
        raise CannotCheck(f"cannot read the public key: {exc}") from None


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
    shown = drills if len(drills) <= 12 else [*drills[:6], "…", *drills[-5:]]
    return f"{len(drills)} drill{'s' if len(drills) != 1 else ''} checked ({' ← '.join(shown)}), back to {end}"


def _depth(value: str) -> int:
    depth = int(value)
    if depth < 0:
        raise argparse.ArgumentTypeError("the depth is a count of earlier drills, 0 or more")
    return depth


def _errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    from livefire.evidence.chain import EvidenceNotFound

    return (BotoCoreError, ClientError, EvidenceNotFound, CannotCheck, ValueError, OSError)


def _progress(done: int, total: int, drill_id: str) -> None:
    print(f"[{done}/{total}] {drill_id}", file=sys.stderr, flush=True)


def _verify_chain(args: argparse.Namespace) -> int:
    from livefire.evidence.chain import verify_service_chain
    from livefire_local.evidence_sources import BucketEvidence, LocalEvidence

    service = args.chain
    if _stack_named(args) and not args.evidence_dir:
        bucket, table = _stack(args)
        verifier = _verifier(args, stack=True)
        with tempfile.TemporaryDirectory(prefix="livefire-verify-") as workdir:
            source = BucketEvidence(_client("s3", args.region), bucket, _store(table, args.region), Path(workdir))
            result = verify_service_chain(service, source, verifier, progress=_progress)
        where = f"s3://{bucket}"
    else:
        root = Path(args.evidence_dir or DEFAULT_EVIDENCE_DIR)
        result = verify_service_chain(service, LocalEvidence(root), _verifier(args, stack=False), progress=_progress)
        where = str(root)
    return _print_result(f"chain of {service} in {where}", result.ok, result.problems,
                         _chain_line(result.drills, result.end))


def _verify_folder(args: argparse.Namespace, path: Path) -> int:
    from livefire_local.evidence_sources import verify_folder

    result = verify_folder(path, _verifier(args, stack=False), depth=args.depth)
    return _print_result(str(path), result.ok, result.problems, _chain_line(result.drills, result.end))


def cmd_verify(args: argparse.Namespace) -> int:
    from livefire.evidence.chain import verify_drill
    from livefire_local.evidence_sources import BucketEvidence, evidence_location

    try:
        if args.chain:
            return _verify_chain(args)
        if args.campaign:
            from livefire_local.campaign_cli import verify_campaign

            stack = _stack_named(args) and not args.evidence_dir
            return verify_campaign(args, _verifier(args, stack=stack), _stack(args)[0] if stack else None,
                                   _client("s3", args.region) if stack else None)
        if args.target is None:
            raise CannotCheck("name what to verify: an evidence folder, a drill id, or --chain SERVICE")
        target = str(args.target)
        path = Path(target)
        if path.is_dir():
            return _verify_folder(args, path)
        if os.sep in target or target.startswith(".") or path.exists():
            raise CannotCheck(f"{target} is not an evidence folder")
        bucket, table = _stack(args)
        verifier = _verifier(args, stack=True)
        store = _store(table, args.region)
        record, _prefix = evidence_location(store, target)
        with tempfile.TemporaryDirectory(prefix="livefire-verify-") as workdir:
            source = BucketEvidence(_client("s3", args.region), bucket, store, Path(workdir))
            result = verify_drill(target, str(record.manifest_digest), source, verifier, depth=args.depth)
    except _errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return _print_result(f"drill {target} in s3://{bucket}", result.ok, result.problems,
                         _chain_line(result.drills, result.end))


def cmd_public_key(args: argparse.Namespace) -> int:
    from livefire.evidence.signature import der_from_pem, fingerprint, pem_from_der
    from livefire_local.signing import LocalSigningKey

    try:
        key_id = args.key_id or os.environ.get("SIGNING_KEY_ID")
        if key_id:
            pem = pem_from_der(bytes(_client("kms", args.region).get_public_key(KeyId=key_id)["PublicKey"]))
        else:
            local = LocalSigningKey.load_or_create()
            key_id, pem = f"local:{local.path}", local.public_pem
        if args.out:
            Path(args.out).write_text(pem)
        else:
            sys.stdout.write(pem)
    except _errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"key {key_id}, public key sha256 {fingerprint(der_from_pem(pem))}", file=sys.stderr)
    return EXIT_PASS


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def list_history(args: argparse.Namespace) -> int:
    """`livefire history` with a stack named: the drill table's history, newest first (``trends.py``)."""
    try:
        _, table = _stack(args, bucket=False)
        entries = _store(table, args.region).history(args.service, limit=args.limit)
    except _errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not entries:
        print(f"no drills of {args.service}")
        return EXIT_INTACT
    print(f"{'started':<21} {'pattern':<15} {'verdict':<13} {'RTO':>9}  drill")
    for entry in entries:
        rto = f"{entry.rto_seconds:.3f}s" if entry.rto_seconds is not None else (
            "no outage" if entry.outage_observed is False else "-")
        verdict = entry.verdict or entry.status or "-"
        print(f"{_time(entry.started_at_ms):<21} {entry.pattern or '-':<15} {verdict:<13} {rto:>9}  {entry.drill_id}")
    return EXIT_INTACT


def cmd_report(args: argparse.Namespace) -> int:
    from livefire.evidence.manifest import verify_evidence_dir
    from livefire_local.evidence_sources import download_evidence, evidence_location

    destination = Path(args.out) if args.out else Path(DEFAULT_EVIDENCE_DIR) / args.drill_id
    if destination.exists() and any(destination.iterdir()):
        print(f"error: {destination} already holds files; choose an empty folder with --out", file=sys.stderr)
        return EXIT_ERROR
    try:
        bucket, table = _stack(args)
        record, prefix = evidence_location(_store(table, args.region), args.drill_id)
        verifier = _verifier(args, stack=True)
        names = download_evidence(_client("s3", args.region), bucket, prefix, destination)
    except _errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"saved {len(names)} files of drill {args.drill_id} to {destination}")
    if (destination / "report.html").is_file():
        print(f"report: {destination / 'report.html'}")
    result = verify_evidence_dir(destination, verifier=verifier, expected_manifest_digest=record.manifest_digest)
    return _print_result(str(destination), result.ok, result.problems, None)


def _stack_options(parser: argparse.ArgumentParser, *, keys: bool = True) -> None:
    parser.add_argument("--bucket", default=None, help="evidence bucket (default: $EVIDENCE_BUCKET)")
    parser.add_argument("--table", default=None, help="drill table (default: $DRILL_TABLE)")
    parser.add_argument("--region", default=None, help="AWS region (default: the AWS configuration's)")
    if keys:
        parser.add_argument("--key-id", default=None,
                            help="the stack's signing key (default: $SIGNING_KEY_ID; stack output SigningKeyArn)")
        parser.add_argument("--public-key", default=None,
                            help="a PEM public key to check signatures with, offline (see `livefire public-key`)")


def add_evidence_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = commands.add_parser(
        "verify", help="check a drill's evidence: every digest, its signature, its record and its hash chain",
        description="Exit 0 intact, 1 tampered (the first artifact or chain link that does not match is named), "
                    "2 when the check could not be made.",
    )
    verify.add_argument("target", nargs="?", default=None,
                        help="an evidence folder (e.g. livefire-evidence/<drill-id>) or a drill id")
    verify.add_argument("--chain", default=None, metavar="SERVICE",
                        help="recompute every drill of the service's chain, from its head back to its first drill")
    verify.add_argument("--campaign", default=None, metavar="ID",
                        help="verify a campaign: its manifest, its signature and every drill's evidence against the "
                             "digest it recorded; names each tampered drill")
    verify.add_argument("--evidence-dir", default=None,
                        help=f"with --chain or --campaign: the local evidence folder (default {DEFAULT_EVIDENCE_DIR}, "
                             "unless a stack is named)")
    verify.add_argument("--depth", type=_depth, default=None, help="follow at most this many earlier drills")
    _stack_options(verify)
    verify.set_defaults(func=cmd_verify)
    public_key = commands.add_parser(
        "public-key", help="print the public key that checks manifest signatures (PEM), for offline verify",
        description="The stack's KMS signing key with --key-id (or $SIGNING_KEY_ID); else the local signing key, "
                    "created on first use in $XDG_CONFIG_HOME/livefire (~/.config/livefire).",
    )
    public_key.add_argument("--key-id", default=None, help="a KMS key id or ARN (the stack output SigningKeyArn)")
    public_key.add_argument("--region", default=None, help="AWS region (default: the AWS configuration's)")
    public_key.add_argument("--out", default=None, help="write the PEM to this file instead of stdout")
    public_key.set_defaults(func=cmd_public_key)
    report = commands.add_parser("report", help="download a drill's evidence (report.html and raw data)")
    report.add_argument("drill_id", help="the drill id (the execution name)")
    report.add_argument("--out", default=None, help=f"folder to write (default {DEFAULT_EVIDENCE_DIR}/<drill-id>)")
    _stack_options(report)
    report.set_defaults(func=cmd_report)
