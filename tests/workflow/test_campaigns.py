"""Campaigns on the sandbox (docs/campaigns.md): the campaign state machine under moto runs each drill as a child
execution of the drill state machine, through its Distributed Map, as `livefire campaign run` does.

One campaign of six short drills over three services (two at a time, one per service) is shared by the tests of
its schedule, its report and its manifest; a second, of three drills, trips its stop rule on the first."""

from __future__ import annotations

import shutil
from argparse import Namespace
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from livefire.store import DrillStore
from livefire_local.aws import LocalStack
from livefire_local.campaign_cli import verify_campaign
from livefire_local.campaign_run import CampaignRun, run_campaign
from livefire_local.cli import main
from tests.conftest import ROOT
from tests.keys import local_verifier
from tests.workflow.campaign_folders import SHORT_PHASES, drill_document, write_campaign

SERVICES = ("payments", "orders", "ledger")


@dataclass
class Ran:
    run: CampaignRun
    evidence: Path
    child_executions: list[str] = field(default_factory=list)  # names of the drill state machine's executions
    faults: dict[str, int] = field(default_factory=dict)  # fault records per drill id
    records: dict[str, bool] = field(default_factory=dict)  # whether each drill id has a drill record
    verified_in_bucket: int | None = None  # `verify --campaign` against the bucket, as with a stack named


def run(folder: Path, evidence: Path) -> Ran:
    """Run the campaign; before its local stack goes, note its child executions and each drill's records."""
    seen: dict[str, Any] = {}

    def look(stack: LocalStack) -> None:
        store = DrillStore(stack.dynamodb.Table(stack.table))
        drills = stack.sfn.list_executions(stateMachineArn=stack.state_machines["DrillStateMachine"])["executions"]
        planned = [key.rsplit(".", 2)[-2] for key in _keys(stack, "campaigns/") if "/results/" in key]
        campaign_id = next(key.split("/")[1] for key in _keys(stack, "campaigns/"))
        seen.update(child_executions=[e["name"] for e in drills],
                    faults={drill: len(store.faults_of(drill)) for drill in planned},
                    records={drill: store.get_drill(drill) is not None for drill in planned},
                    verified_in_bucket=verify_campaign(Namespace(campaign=campaign_id, evidence_dir=None),
                                                       local_verifier(), stack.bucket, stack.s3))

    campaign = run_campaign(folder, root=ROOT, evidence_root=evidence, after_end=look)
    return Ran(campaign, evidence, **seen)


def _keys(stack: LocalStack, prefix: str) -> list[str]:
    return [o["Key"] for o in stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=prefix).get("Contents", [])]


@pytest.fixture(scope="module")
def gameday(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    """Six drills, two per service, two at a time; verdicts do not stop it (maxFailures 6). The seeds eject a
    failing region for 1 s, so a 1 s recovery can see the primary serve again."""
    folder = tmp_path_factory.mktemp("gameday")
    drills = {f"{service}-{n}": drill_document(service, f"{service}-{n}") for n in (1, 2) for service in SERVICES}
    write_campaign(folder, drills, {"maxConcurrency": 2, "maxFailures": 6}, ejection="1s")
    yield run(folder, tmp_path_factory.mktemp("evidence"))


def overlapping(intervals: list[tuple[int, int]]) -> int:
    """The most intervals open at one instant."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = current = 0
    for _, step in edges:  # an end sorts before a start at the same instant: touching is not overlapping
        current += step
        most = max(most, current)
    return most


@pytest.mark.slow
def test_a_campaign_runs_every_drill_at_most_two_at_once_and_never_two_of_one_service(gameday: Ran) -> None:
    results = gameday.run.results

    assert [r["outcome"] for r in results] == ["RAN"] * 6, [(r["drillId"], r.get("reason")) for r in results]
    assert sorted(gameday.child_executions) == sorted(r["drillId"] for r in results)
    spans = {r["drillId"]: (r["startedAtMs"], r["endedAtMs"]) for r in results}
    assert all(start < end for start, end in spans.values()), spans
    for service in SERVICES:
        assert overlapping([spans[r["drillId"]] for r in results if r["service"] == service]) == 1, service
    assert overlapping(list(spans.values())) == 2  # two at a time, and the campaign did use both


@pytest.mark.slow
def test_the_campaign_report_lists_every_drill_with_its_ending_and_the_rto_per_pattern(gameday: Ran) -> None:
    folder = gameday.run.evidence_dir
    assert folder is not None

    markdown = (folder / "report.md").read_text()
    html = (folder / "report.html").read_text()

    rows = [line for line in markdown.splitlines() if any(f"| {r['drillId']} |" in line for r in gameday.run.results)]
    assert len(rows) == 6
    for result in gameday.run.results:
        assert result["drillId"] in html
        assert (gameday.evidence / result["drillId"] / "report.html").is_file()
    assert "## RTO per pattern" in markdown and "| active-passive | 6 |" in markdown


@pytest.mark.slow
def test_the_campaign_manifest_verifies_and_tampering_with_one_drill_names_that_drill(
        gameday: Ran, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    campaign = gameday.run.campaign_id
    copy = tmp_path / "evidence"
    shutil.copytree(gameday.evidence, copy)
    victim = gameday.run.results[3]["drillId"]

    intact = main(["verify", "--campaign", campaign, "--evidence-dir", str(gameday.evidence)])
    said = capsys.readouterr().out
    with (copy / victim / "report.md").open("a") as report:
        report.write("all green\n")
    tampered = main(["verify", "--campaign", campaign, "--evidence-dir", str(copy)])
    named = capsys.readouterr().out

    assert intact == 0, said
    assert "intact" in said and "6 drills' evidence checked" in said
    assert gameday.verified_in_bucket == 0  # the same check, downloading from the bucket
    assert tampered == 1
    assert f"tampered drills: {victim})" in named and "report.md" in named
    assert all(r["drillId"] not in named for r in gameday.run.results if r["drillId"] != victim)


@pytest.mark.slow
def test_a_campaign_whose_stop_rule_trips_skips_the_remaining_drills_with_nothing_injected(tmp_path: Path) -> None:
    # The seeds' 5 s ejection outlasts the 1 s recovery: the primary cannot serve again in time, so the first
    # drill FAILs (primaryServedAfterFailback) and, with maxFailures 0, the two after it never start.
    drills = {service: drill_document(service, f"{service}-1", phases=dict(SHORT_PHASES)) for service in SERVICES}
    folder = write_campaign(tmp_path / "campaign", drills, {"maxConcurrency": 1, "maxFailures": 0})

    ran = run(folder, tmp_path / "evidence")

    first, *rest = ran.run.results
    assert (first["outcome"], first["verdict"]) == ("RAN", "FAIL"), first
    assert [r["outcome"] for r in rest] == ["SKIPPED", "SKIPPED"]
    assert all(f"1 drill failed ({first['drillId']})" in r["reason"] for r in rest)
    assert ran.child_executions == [first["drillId"]]
    assert [ran.faults[r["drillId"]] for r in rest] == [0, 0] and ran.faults[first["drillId"]] == 1
    assert [ran.records[r["drillId"]] for r in rest] == [False, False]
    assert ran.run.status == "FAILED" and (ran.run.error or "").startswith("CampaignStopped")
    assert ran.run.manifest is not None and ran.run.manifest["stopped"] == rest[0]["reason"]
