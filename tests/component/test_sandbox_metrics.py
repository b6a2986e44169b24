"""The sandbox's Istio metrics over real HTTP on 127.0.0.1: every request a regional service or the entrypoint
really serves is counted with Istio's labels and served in the Prometheus exposition format; a scrape is not."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from livefire.spec import parse_spec
from livefire_local.sandbox.istio_metrics import SCRAPE_PATH, IstioMetrics
from livefire_local.sandbox.loopback import Request, Response
from livefire_local.sandbox.mesh import SandboxMesh
from livefire_local.sandbox.services import FAULT_ABORT
from tests.conftest import sandbox_spec_document

ROOT = Path(__file__).resolve().parents[2]
MESH_DIR = ROOT / "drills" / "sandbox" / "mesh"
SERVICE = "payments.payments.svc.cluster.local"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy


@pytest.fixture
def mesh() -> Iterator[SandboxMesh]:
    with SandboxMesh.from_spec(parse_spec(sandbox_spec_document()), MESH_DIR, seed=1) as started:
        yield started


def get(url: str) -> bytes:
    with _OPENER.open(url, timeout=5) as answer:
        return bytes(answer.read())


def requests_total(url: str) -> dict[tuple[str, ...], float]:
    return counted(get(url + SCRAPE_PATH).decode())


def counted(exposition: str) -> dict[tuple[str, ...], float]:
    """istio_requests_total of one scrape, by (reporter, source_workload, cluster, code, flags)."""
    counts: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "istio_requests_total":
                labels = sample.labels
                assert labels["destination_service"] == SERVICE
                key = (labels["reporter"], labels["source_workload"], labels["destination_cluster"],
                       labels["response_code"], labels["response_flags"])
                counts[key] = sample.value
    return counts


def test_every_request_served_is_counted_where_it_was_served(mesh: SandboxMesh) -> None:
    primary, entrypoint = mesh.regional["us-east-1"], mesh.entrypoint
    for _ in range(5):
        get(f"{entrypoint.url}/healthz")
    for _ in range(3):
        get(f"{primary.url}/healthz")

    assert requests_total(primary.url) == {("destination", "unknown", "us-east-1", "200", "-"): 8.0}
    assert requests_total(entrypoint.url) == {("source", "istio-ingressgateway", "us-east-1", "200", "-"): 5.0}
    assert requests_total(mesh.regional["us-west-2"].url) == {}
    assert requests_total(primary.url) == {("destination", "unknown", "us-east-1", "200", "-"): 8.0}  # not scrapes


def test_a_fault_abort_is_a_local_reply_with_the_fi_flag() -> None:
    metrics = IstioMetrics(reporter="source", source_workload="istio-ingressgateway", destination_service=SERVICE)

    metrics.observe("us-east-1", Response(503, {}, FAULT_ABORT), 0.002)

    scraped = metrics.scrape(Request("GET", SCRAPE_PATH, {}))
    assert scraped is not None
    assert counted(scraped.body.decode()) == {("source", "istio-ingressgateway", "us-east-1", "503", "FI"): 1.0}
    assert 'istio_request_duration_milliseconds_bucket{' in scraped.body.decode()
