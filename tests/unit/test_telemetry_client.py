"""The Prometheus API client: the queries it builds, AMP signed with SigV4 for service aps (checked against
botocore's own signer for a fixed clock), a token secret sent only inside its own URL prefixes, and every failure
one TelemetryUnavailable."""

from __future__ import annotations

import datetime
import json
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from livefire.errors import TelemetryUnavailable
from livefire.spec import parse_spec
from livefire.spec.telemetry import Telemetry
from livefire.telemetry.client import PrometheusApi, RangeQuery
from livefire.telemetry.queries import drill_queries, step_for
from tests.conftest import sandbox_spec_document

WORKSPACE = "ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:livefire/prometheus-AbC123"
FIXED = datetime.datetime(2026, 12, 2, 6, 0, 0, tzinfo=datetime.UTC)
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
QUERY = RangeQuery("requests", 'sum by (destination_cluster) (istio_requests_total{reporter="destination"})',
                   1_764_655_200.0, 1_764_655_260.0, 1.0)
MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": []}}


def telemetry(**fields: Any) -> Telemetry:
    document = sandbox_spec_document(telemetry={"service": "payments.payments.svc.cluster.local", **fields})
    result = parse_spec(document).telemetry
    assert result is not None
    return result


class Recorder:
    def __init__(self, status: int = 200, body: Any = MATRIX) -> None:
        self.status, self.body = status, body
        self.sent: list[tuple[str, dict[str, str]]] = []

    def __call__(self, url: str, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
        self.sent.append((url, headers))
        return self.status, self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


def test_an_amp_query_is_signed_for_aps_in_the_workspace_region_as_botocore_signs_it() -> None:
    transport = Recorder()
    api = PrometheusApi(telemetry(amp=WORKSPACE, region="eu-west-1"), transport=transport,
                        credentials=lambda: CREDENTIALS)

    with mock.patch("botocore.auth.get_current_datetime", return_value=FIXED):
        api.query_range(QUERY)
        url, headers = transport.sent[0]
        expected = AWSRequest(method="GET", url=url, headers={"User-Agent": "livefire-telemetry",
                                                               "Accept": "application/json"})
        SigV4Auth(CREDENTIALS, "aps", "eu-west-1").add_auth(expected)

    assert url.startswith(f"https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/{WORKSPACE}/api/v1/"
                          "query_range?")
    assert headers["Authorization"] == expected.headers["Authorization"]
    assert "Credential=AKIDEXAMPLE/20261202/eu-west-1/aps/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Date"] == "20261202T060000Z"
    assert headers["X-Amz-Security-Token"] == "session-token"


def test_a_query_carries_the_promql_and_the_range() -> None:
    transport = Recorder()

    PrometheusApi(telemetry(prometheus="http://127.0.0.1:9090"), transport=transport).query_range(QUERY)

    url, headers = transport.sent[0]
    assert url.startswith("http://127.0.0.1:9090/api/v1/query_range?")
    assert parse_qs(urlsplit(url).query) == {"query": [QUERY.promql], "start": ["1764655200.000"],
                                             "end": ["1764655260.000"], "step": ["1"]}
    assert "Authorization" not in headers


def _secret(prefixes: list[str]) -> str:
    return json.dumps({"headers": {"Authorization": "Bearer s3cr3t-token"}, "urlPrefixes": prefixes})


def test_a_token_secret_is_sent_inside_its_own_url_prefixes() -> None:
    transport = Recorder()
    api = PrometheusApi(telemetry(prometheus="https://prom.example.com/prometheus", tokenSecret=SECRET_ARN),
                        transport=transport, secrets=lambda arn: _secret(["https://prom.example.com/prometheus"]))

    api.query_range(QUERY)

    assert transport.sent[0][1]["Authorization"] == "Bearer s3cr3t-token"


def test_an_error_answer_that_echoes_the_token_is_shown_without_it() -> None:
    echoed = {"status": "error", "error": "bad token Bearer s3cr3t-token"}
    api = PrometheusApi(telemetry(prometheus="https://prom.example.com", tokenSecret=SECRET_ARN),
                        transport=Recorder(401, echoed), secrets=lambda arn: _secret(["https://prom.example.com/"]))

    with pytest.raises(TelemetryUnavailable) as raised:
        api.query_range(QUERY)

    assert "s3cr3t" not in str(raised.value) and str(raised.value).startswith("requests: answered 401: bad token")


def test_a_token_secret_bound_elsewhere_is_never_sent() -> None:
    transport = Recorder()
    api = PrometheusApi(telemetry(prometheus="https://prom.example.com", tokenSecret=SECRET_ARN),
                        transport=transport, secrets=lambda arn: _secret(["https://other.example.com/"]))

    with pytest.raises(TelemetryUnavailable, match="may not be sent to this URL") as raised:
        api.query_range(QUERY)

    assert transport.sent == []
    assert "s3cr3t" not in str(raised.value)


@pytest.mark.parametrize(("status", "body", "expected"), [
    (503, b"overloaded", "requests: answered 503"),
    (400, {"status": "error", "error": "parse error at char 3"}, "requests: answered 400: parse error at char 3"),
    (200, {"status": "success", "data": {"resultType": "vector", "result": []}},
     "requests: the answer is not a matrix"),
    (200, b"<html>", "requests: answered 200"),
])
def test_a_bad_answer_is_telemetry_unavailable(status: int, body: Any, expected: str) -> None:
    api = PrometheusApi(telemetry(prometheus="http://127.0.0.1:9090"), transport=Recorder(status, body))

    with pytest.raises(TelemetryUnavailable, match=expected):
        api.query_range(QUERY)


def test_an_unreachable_server_is_telemetry_unavailable() -> None:
    def refused(url: str, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
        raise ConnectionRefusedError(111, "refused")

    api = PrometheusApi(telemetry(prometheus="http://127.0.0.1:9"), transport=refused)

    with pytest.raises(TelemetryUnavailable, match=r"http://127\.0\.0\.1:9 could not be reached"):
        api.query_range(QUERY)


def test_the_queries_select_the_service_by_the_spec_labels() -> None:
    queries = {q.name: q.promql for q in drill_queries(
        telemetry(prometheus="http://127.0.0.1:9090", selector={"destination_workload_namespace": "payments"}),
        100.0, 200.0, 1.0)}

    service = ('{reporter="destination",destination_service="payments.payments.svc.cluster.local",'
               'destination_workload_namespace="payments"}')
    assert queries["requests"] == ("sum by (destination_cluster, response_code, response_flags) "
                                   f"(istio_requests_total{service})")
    assert queries["latency"] == ("sum by (destination_cluster, le) "
                                  f"(istio_request_duration_milliseconds_bucket{service})")
    assert queries["gateway"] == ('sum by (destination_cluster) (istio_requests_total{reporter="source",'
                                  'source_workload="istio-ingressgateway",'
                                  'destination_service="payments.payments.svc.cluster.local",'
                                  'destination_workload_namespace="payments"})')


@pytest.mark.parametrize(("observe_s", "scrape_s", "expected"), [
    (46.0, 1.0, 1.0), (600.0, 15.0, 15.0), (36_000.0, 1.0, 4.0), (10.0, 1.5, 1.5)])
def test_the_step_is_the_scrape_interval_unless_the_window_needs_fewer_points(
        observe_s: float, scrape_s: float, expected: float) -> None:
    assert step_for(observe_s, scrape_s) == expected
