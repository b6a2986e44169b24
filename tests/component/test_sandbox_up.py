"""`livefire sandbox up` in-process: the kubeconfig it writes and the drill it re-aims at itself (--drill-out)."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from livefire.spec import read_spec
from livefire_local.sandbox_up import describe, sandbox_up

ROOT = Path(__file__).resolve().parents[2]
DRILLS = ROOT / "drills" / "sandbox"


def _status(url: str, method: str = "GET") -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        connection.request(method, parts.path or "/")
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_webhook_drill_is_re_aimed_at_the_running_outage_control_and_regions(tmp_path: Path) -> None:
    kubeconfig, pointed = tmp_path / "kc.yaml", tmp_path / "pointed.yaml"

    with sandbox_up(DRILLS / "webhook-outage.yaml", None, kubeconfig, pointed) as mesh:
        _, spec = read_spec(pointed)  # the re-aimed drill is a valid drill
        webhook = spec.fault.webhook
        assert webhook is not None
        during = _status(webhook.inject.url, "POST"), _status(spec.regions[0].endpoint)
        after = _status(webhook.rollback.url, "DELETE"), _status(spec.regions[0].endpoint)
        lines = describe(mesh, kubeconfig)
        control = f"http://127.0.0.1:{mesh.control.port}/outages/us-east-1"

    assert webhook.inject.url == webhook.rollback.url == control
    assert [(r.cluster.kubeconfig, r.cluster.context) for r in spec.regions if r.cluster] == [
        (str(kubeconfig.resolve()), "payments-use1"), (str(kubeconfig.resolve()), "payments-usw2")]
    assert during[1] == 503 and after[1] == 200  # the outage control answers for real, on loopback
    assert during[0] < 300 and after[0] < 300
    assert sum(line.lstrip().startswith("webhook") for line in lines) == 2


def test_the_kubeconfig_has_one_context_per_sandbox_cluster_and_no_other_file_is_written(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc.yaml"

    with sandbox_up(DRILLS / "active-passive.yaml", DRILLS / "mesh", kubeconfig) as mesh:
        config = yaml.safe_load(kubeconfig.read_text())
        running = dict(mesh.api_urls)

    assert {c["name"]: c["cluster"]["server"] for c in config["clusters"]} == running
    assert sorted(running) == ["payments-use1", "payments-usw2"]
    assert [(c["name"], c["context"]["cluster"], c["context"]["user"]) for c in config["contexts"]] == [
        ("payments-use1", "payments-use1", "livefire-sandbox"), ("payments-usw2", "payments-usw2", "livefire-sandbox")]
    assert config["current-context"] == "payments-use1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kc.yaml"]
