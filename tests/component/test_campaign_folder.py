"""A campaign folder as `livefire campaign run DIR` reads it (tooling/livefire_local/campaign_run.py): its specs in
order, its rules, and the campaigns it refuses before anything starts, each naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from livefire.errors import InvalidCampaign
from livefire_local.campaign_run import CampaignFolder, meshes_per_service
from tests.workflow.campaign_folders import drill_document, write_campaign


def test_the_specs_run_in_the_order_campaign_yaml_lists_them_with_its_rules(tmp_path: Path) -> None:
    drills = {"b": drill_document("orders", "orders-1"), "a": drill_document("payments", "payments-1")}
    write_campaign(tmp_path, drills, {"maxConcurrency": 3})

    campaign = CampaignFolder.read(tmp_path)

    assert [path.name for path, _document, _spec in campaign.specs] == ["b.yaml", "a.yaml"]
    assert campaign.rules == {"maxConcurrency": 3}


def test_without_campaign_yaml_every_spec_runs_by_file_name(tmp_path: Path) -> None:
    for name in ("2-orders", "1-payments"):
        service = name.split("-")[1]
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(drill_document(service, f"{service}-1")))

    campaign = CampaignFolder.read(tmp_path)

    assert [path.name for path, _document, _spec in campaign.specs] == ["1-payments.yaml", "2-orders.yaml"]
    assert campaign.rules == {}


def test_a_folder_without_a_spec_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidCampaign, match="no drill spec"):
        CampaignFolder.read(tmp_path)


def test_a_drill_waiting_for_a_go_no_go_gate_is_refused_locally_naming_its_file(tmp_path: Path) -> None:
    document = drill_document("payments", "payments-1", approval={"required": True})
    write_campaign(tmp_path, {"gated": document}, {})

    with pytest.raises(InvalidCampaign, match=r"^gated\.yaml: approval\.required"):
        CampaignFolder.read(tmp_path)


def test_two_services_on_one_sandbox_cluster_are_refused_naming_the_spec(tmp_path: Path) -> None:
    orders = drill_document("orders", "orders-1")
    orders["regions"][0]["cluster"] = {"sandbox": "payments-use1"}
    write_campaign(tmp_path, {"payments": drill_document("payments", "payments-1"), "orders": orders}, {})

    with pytest.raises(ValueError, match=r"orders\.yaml: sandbox cluster payments-use1 is also service payments's"):
        meshes_per_service(CampaignFolder.read(tmp_path).specs, tmp_path / "mesh")
