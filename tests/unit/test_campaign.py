"""Campaigns (docs/campaigns.md): the rounds of at most one drill per service, the stop rule, how a child
execution's failure is read, the report, and the campaign manifest that names a tampered drill."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from livefire.campaign.manifest import DrillFolder, build_campaign_manifest, seal_campaign, verify_campaign_dir
from livefire.campaign.model import Campaign, CampaignInput, CampaignRules, DrillResult
from livefire.campaign.report import render_html, render_markdown, rto_per_pattern
from livefire.campaign.schedule import Planned, campaign_drill_id, plan_rounds
from livefire.campaign.steps import _child_failure
from livefire.campaign.stop_rule import Ended, stop_reason
from livefire.evidence.manifest import MANIFEST_NAME
from livefire.evidence.signature import SIGNATURE_NAME
from tests.evidence_folders import write_drill
from tests.keys import local_key, local_verifier


def planned(*services: str) -> list[Planned]:
    return [Planned(index, f"{service}-{index}", service) for index, service in enumerate(services)]


def names(rounds: list[list[Planned]]) -> list[list[str]]:
    return [[drill.name for drill in members] for members in rounds]


def test_each_round_holds_at_most_one_drill_per_service_and_services_take_turns() -> None:
    drills = planned("payments", "payments", "orders", "payments", "ledger", "orders")

    rounds = plan_rounds(drills, CampaignRules(max_concurrency=2))

    assert names(rounds) == [["payments-0", "orders-2"], ["ledger-4", "payments-1"], ["orders-5", "payments-3"]]
    assert all(len({d.service for d in members}) == len(members) for members in rounds)


def test_a_round_is_as_wide_as_the_concurrency_allows_and_the_services_that_remain() -> None:
    drills = planned("payments", "payments", "payments", "orders")

    rounds = plan_rounds(drills, CampaignRules(max_concurrency=10))

    assert names(rounds) == [["payments-0", "orders-3"], ["payments-1"], ["payments-2"]]


def test_drills_run_tier_by_tier_and_a_service_without_a_tier_runs_last() -> None:
    drills = planned("orders", "payments", "ledger", "payments")

    rounds = plan_rounds(drills, CampaignRules(order="tier", tiers={"payments": 1, "orders": 2}))

    assert names(rounds) == [["payments-1"], ["payments-3"], ["orders-0"], ["ledger-2"]]


def test_drills_run_wave_by_wave_even_when_their_services_differ() -> None:
    drills = planned("orders", "payments", "ledger")

    rounds = plan_rounds(drills, CampaignRules(order="wave", waves={"ledger-2": 1, "orders-0": 2}))

    assert names(rounds) == [["ledger-2"], ["orders-0"], ["payments-1"]]


def test_a_drill_id_fits_an_execution_name_and_names_its_campaign_place_and_service() -> None:
    drill_id = campaign_drill_id("g" * 80, 7, "s" * 63)

    assert len(drill_id) <= 80
    assert drill_id == f"{'g' * 44}-0007-{'s' * 30}"


def test_the_campaign_input_names_the_field_it_refuses() -> None:
    with pytest.raises(ValueError, match="not under campaign-specs/"):
        CampaignInput.model_validate({"specs": {"prefix": "drills/"}})
    with pytest.raises(ValueError, match=r"rules\.maxConcurency"):
        CampaignInput.model_validate({"specs": {"keys": ["campaign-specs/a.yaml"]}, "rules": {"maxConcurency": 2}})


def ended(*classes: str) -> list[Ended]:
    return [Ended(f"d-{index}", result_class) for index, result_class in enumerate(classes)]


def test_the_campaign_goes_on_while_failures_stay_within_max_failures() -> None:
    rules = CampaignRules(max_failures=1)

    assert stop_reason(ended("ok", "failed", "ok", "skipped"), rules) is None


def test_the_campaign_stops_once_more_than_max_failures_drills_failed_and_names_them() -> None:
    reason = stop_reason(ended("failed", "ok", "failed"), CampaignRules(max_failures=1))

    assert reason == "2 drills failed (d-0, d-2), more than maxFailures 1: no further drill starts"


def test_a_drill_aborted_by_a_guardrail_stops_the_campaign_whatever_max_failures_is() -> None:
    reason = stop_reason(ended("ok", "aborted"), CampaignRules(max_failures=100))

    assert reason is not None and reason.startswith("drill d-1 was aborted by a guardrail")


def result(index: int, **fields: object) -> DrillResult:
    values = {"index": index, "round": 0, "drill_id": f"d-{index}", "name": f"n-{index}", "service": "payments",
              "pattern": "active-passive", "outcome": "RAN", **fields}
    return DrillResult.model_validate(values)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"status": "SUCCEEDED", "verdict": "PASS"}, "ok"),
    ({"status": "FAILED", "verdict": "FAIL"}, "failed"),
    ({"status": "FAILED", "verdict": "INCONCLUSIVE"}, "ok"),
    ({"status": "FAILED", "verdict": None, "error": "DrillInProgress"}, "failed"),
    ({"status": "FAILED", "verdict": "ABORTED"}, "aborted"),
    ({"status": "FAILED", "verdict": "RESTORE_REFUSED"}, "aborted"),
    ({"outcome": "SKIPPED"}, "skipped"),
])
def test_a_drill_result_is_classed_as_the_stop_rule_counts_it(fields: dict[str, object], expected: str) -> None:
    assert result(0, **fields).result_class == expected


def test_a_failed_child_execution_is_read_from_the_describe_output_in_the_task_cause() -> None:
    cause = json.dumps({"Status": "FAILED", "Error": "DrillAborted", "Cause": "a guardrail fired"})

    assert _child_failure({"Error": "States.TaskFailed", "Cause": cause}) == ("FAILED", "DrillAborted")
    assert _child_failure({"Error": "States.Timeout", "Cause": "not json"}) == ("FAILED", "States.Timeout")
    assert _child_failure(None) == ("SUCCEEDED", None)


def campaign(drills: int = 2) -> Campaign:
    return Campaign(campaign_id="gameday", bucket="b", prefix="campaigns/gameday/", rounds=1, drills=drills,
                    max_concurrency=2, rules=CampaignRules())


def test_the_report_lists_every_drill_and_the_rto_spread_of_each_pattern() -> None:
    results = [result(0, verdict="PASS", rto_seconds=2.0, evidence_prefix="drills/payments/d-0/"),
               result(1, verdict="FAIL", rto_seconds=4.0, pattern="canary"),
               result(2, outcome="SKIPPED", reason="stopped")]

    markdown = render_markdown(campaign(3), results, "stopped")
    html = render_html(campaign(3), results, "stopped")

    assert [(s.pattern, s.drills, s.rtos) for s in rto_per_pattern(results)] == [
        ("active-passive", 1, (2.0,)), ("canary", 1, (4.0,))]
    assert "| 0 | 0 | d-0 | payments | active-passive | PASS | 2.000 s |" in markdown
    assert "../../drills/payments/d-0/report.html" in markdown
    assert 'href="../../drills/payments/d-0/report.html"' in html
    assert "| 2 | 0 | d-2 | payments | active-passive | SKIPPED |" in markdown


def sealed_campaign(root: Path) -> tuple[Path, list[DrillResult]]:
    """Two sealed drills and the campaign folder that links them, signed with the local key."""
    results = []
    for index, drill_id in enumerate(("d-1", "d-2")):
        digest = write_drill(root, drill_id, None, minute=index, sequence=1)
        results.append(result(index, drill_id=drill_id, verdict="PASS", manifest_digest=digest,
                              manifest_key=f"drills/payments/{drill_id}/manifest.json"))
    folder = root / "campaigns" / "gameday"
    folder.mkdir(parents=True)
    artifacts = {"report.md": b"# Campaign gameday\n"}
    (folder / "report.md").write_bytes(artifacts["report.md"])
    body, signature, _digest = seal_campaign(
        build_campaign_manifest(campaign(), results, artifacts, local_key(), None), local_key())
    (folder / MANIFEST_NAME).write_bytes(body)
    (folder / SIGNATURE_NAME).write_bytes(signature)
    return folder, results


def by_id(root: Path) -> DrillFolder:
    return lambda drill_id, _service: (root / drill_id) if (root / drill_id).is_dir() else None


def test_an_untouched_campaign_verifies_with_every_drill_checked(tmp_path: Path) -> None:
    folder, _ = sealed_campaign(tmp_path)

    check = verify_campaign_dir(folder, by_id(tmp_path), local_verifier())

    assert check.ok and check.drills_checked == 2


def test_tampering_with_one_drills_evidence_names_that_drill_and_the_file(tmp_path: Path) -> None:
    folder, _ = sealed_campaign(tmp_path)
    (tmp_path / "d-2" / "report.md").write_text("# Drill d-2: PASS, trust me\n")

    check = verify_campaign_dir(folder, by_id(tmp_path), local_verifier())

    assert check.tampered_drills == ["d-2"]
    assert check.problems[0].startswith("drill d-2 (payments): report.md")


def test_a_drill_manifest_replaced_by_another_signed_one_is_named_by_its_digest(tmp_path: Path) -> None:
    folder, _ = sealed_campaign(tmp_path)
    # re-sealed: valid on its own, but not the manifest the campaign linked
    write_drill(tmp_path, "d-1", None, minute=30, sequence=1)

    check = verify_campaign_dir(folder, by_id(tmp_path), local_verifier())

    assert check.tampered_drills == ["d-1"] and "is not the expected" in check.problems[0]


def test_a_changed_campaign_report_or_a_missing_drill_folder_is_named(tmp_path: Path) -> None:
    folder, _ = sealed_campaign(tmp_path)
    (folder / "report.md").write_text("# Campaign gameday: all green\n")
    shutil.rmtree(tmp_path / "d-1")

    check = verify_campaign_dir(folder, by_id(tmp_path), local_verifier())

    assert check.problems[0] == "report.md: digest does not match the manifest (changed)"
    assert "drill d-1 (payments): its evidence folder is missing" in check.problems
    assert check.tampered_drills == ["d-1"]


def test_a_campaign_manifest_signed_by_another_key_does_not_verify(tmp_path: Path) -> None:
    folder, _ = sealed_campaign(tmp_path)
    manifest = json.loads((folder / MANIFEST_NAME).read_bytes())
    manifest["stopped"] = "edited"
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")

    check = verify_campaign_dir(folder, by_id(tmp_path), local_verifier())

    assert not check.ok and any(p.startswith(SIGNATURE_NAME) for p in check.problems)
