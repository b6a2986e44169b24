"""The `livefire` command line: run a drill locally; verify, list and fetch evidence."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from livefire.egress import LOCAL_RANGES, parse_ranges
from livefire.errors import InvalidDrillSpec
from livefire_local.aws_cli import add_aws_commands
from livefire_local.campaign_cli import add_campaign_commands
from livefire_local.evidence_cli import add_evidence_commands
from livefire_local.results import Results, add_result_options
from livefire_local.sandbox_up import add_sandbox_commands
from livefire_local.trends import add_history_command
from livefire_local.verdicts import EXIT_ERROR, DrillOutcome


def find_root(start: Path) -> Path:
    """The project root (the folder holding template.yaml): from the working directory up, else the package's."""
    for folder in [start, *start.parents]:
        if (folder / "template.yaml").is_file():
            return folder
    return Path(__file__).resolve().parents[2]


def cmd_run(args: argparse.Namespace) -> int:
    # the local runner pulls in moto: only load it when asked
    from livefire_local.interrupt import Interrupted
    from livefire_local.runner import run_drill

    root = find_root(Path.cwd())
    results = Results.of(args)
    try:
        parse_ranges(args.allowed_ranges)
        with results.running() as live:
            run = run_drill(Path(args.spec), root=root, evidence_root=Path(args.evidence_dir),
                            live=live, allowed_ranges=args.allowed_ranges, approve=args.approve,
                            terminal=sys.stdin if sys.stdin.isatty() else None)
    except InvalidDrillSpec as exc:
        print(f"invalid drill spec: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Interrupted as interrupted:  # before the execution started: nothing was planned or injected
        print(f"interrupted by {interrupted}: the drill had not started; nothing was injected", file=sys.stderr)
        return interrupted.exit_code
    if run.interrupted is not None:
        print(f"interrupted by {run.interrupted}: {run.note}; evidence: {run.evidence_dir or 'none'}",
              file=sys.stderr)
        return run.exit_code
    return results.publish(DrillOutcome.in_folder(run, run.evidence_dir))


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="run a whole drill locally: real targets, and the sandbox mesh for "
                                          "sandbox clusters and .sandbox hosts")
    run.add_argument("spec", help="drill spec (YAML or JSON; - reads standard input), "
                                  "e.g. drills/sandbox/active-passive.yaml")
    run.add_argument("--evidence-dir", default="livefire-evidence", help="where evidence is copied")
    run.add_argument("--allowed-ranges", default=LOCAL_RANGES, metavar="RANGES",
                     help="non-public addresses probes and webhooks may reach: CIDRs and loopback, link-local, "
                          f"private, comma-separated; '' allows public addresses only (default: {LOCAL_RANGES})")
    run.add_argument("--approve", action="store_true",
                     help="approve the drill's go/no-go gate (spec approval) at once, for unattended runs; "
                          "otherwise the gate is asked on this terminal (another terminal cannot reach a local run)")
    add_result_options(run)
    run.set_defaults(func=cmd_run)


def build_parser() -> argparse.ArgumentParser:
    """One ``add_*`` function per group of subcommands: each registers its parsers and their ``func``."""
    parser = argparse.ArgumentParser(prog="livefire", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run(commands)
    add_evidence_commands(commands)
    add_history_command(commands)
    add_aws_commands(commands)
    add_sandbox_commands(commands, find_root)
    add_campaign_commands(commands, find_root)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
