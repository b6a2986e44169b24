"""The `livefire` command line: run a drill locally; verify, list and fetch evidence."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from livefire.errors import InvalidDrillSpec
from livefire_local.aws_cli import add_aws_commands
from livefire_local.evidence_cli import add_evidence_commands
from livefire_local.verdicts import EXIT_ERROR


def find_root(start: Path) -> Path:
    """The project root (the folder holding template.yaml): from the working directory up, else the package's."""
    for folder in [start, *start.parents]:
        if (folder / "template.yaml").is_file():
            return folder
    return Path(__file__).resolve().parents[2]


def _fmt_seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}s"


def print_verdict(evidence_dir: Path | None, verdict: str | None, rto: float | None, out: Any) -> None:
    print("", file=out)
    print(f"VERDICT: {verdict or 'NONE'}    RTO: {_fmt_seconds(rto)}", file=out)
    assessment_path = evidence_dir / "assessment.json" if evidence_dir else None
    if assessment_path is not None and assessment_path.is_file():
        assessment = json.loads(assessment_path.read_text())
        bracket = assessment.get("rto_bracket") or {}
        injected = assessment.get("injected_at_ms")
        if bracket.get("last_failure_ms") is not None and injected is not None:
            print(f"RTO bracket: [+{(bracket['last_failure_ms'] - injected) / 1000:.3f}s, "
                  f"+{(bracket['first_success_ms'] - injected) / 1000:.3f}s] after injection, "
                  f"width {bracket['first_success_ms'] - bracket['last_failure_ms']:.1f} ms", file=out)
        findings = assessment.get("findings", [])
        if findings:
            print(f"{'status':<13} {'finding':<34} {'measured':>14} {'threshold':>14}", file=out)
        for finding in findings:
            measured = finding.get("measured")
            threshold = finding.get("threshold")
            unit = finding.get("unit") or ""
            print(f"{finding.get('status', ''):<13} {finding.get('title', finding.get('id', ''))[:34]:<34} "
                  f"{_fmt_value(measured, unit):>14} {_fmt_value(threshold, unit):>14}", file=out)
    if evidence_dir is not None:
        count = sum(1 for p in evidence_dir.rglob("*") if p.is_file())
        print(f"evidence: {evidence_dir} ({count} files)", file=out)


def _fmt_value(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}{unit and ' ' + unit}"
    return f"{value}{unit and ' ' + unit}"


def cmd_run(args: argparse.Namespace) -> int:
    from livefire_local.runner import run_drill  # the local runner pulls in moto: only load it when asked

    root = find_root(Path.cwd())
    try:
        run = run_drill(Path(args.spec), root=root, evidence_root=Path(args.evidence_dir),
                        lambda_endpoint=args.lambda_endpoint)
    except InvalidDrillSpec as exc:
        print(f"invalid drill spec: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print_verdict(run.evidence_dir, run.verdict, run.rto_seconds, sys.stdout)
    if run.error:
        print(f"execution {run.status}: {run.error}", file=sys.stdout)
    return run.exit_code


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="run a whole drill locally on the sandbox mesh")
    run.add_argument("spec", help="drill spec (YAML or JSON), e.g. drills/sandbox/active-passive.yaml")
    run.add_argument("--evidence-dir", default="livefire-evidence", help="where evidence is copied")
    run.add_argument("--lambda-endpoint", default=None,
                     help="use this Lambda endpoint (e.g. `sam local start-lambda` at http://127.0.0.1:3001)")
    run.set_defaults(func=cmd_run)


def build_parser() -> argparse.ArgumentParser:
    """One ``add_*`` function per group of subcommands: each registers its parsers and their ``func``."""
    parser = argparse.ArgumentParser(prog="livefire", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run(commands)
    add_evidence_commands(commands)
    add_aws_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
