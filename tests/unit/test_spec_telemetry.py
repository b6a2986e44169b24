"""The telemetry section: both sources parse with Istio's defaults, every bad value is one InvalidDrillSpec line
naming its field path, and the Prometheus URL goes through the egress rules at Plan like every target."""

from __future__ import annotations

from typing import Any

import pytest

from livefire.egress import EgressPolicy
from livefire.errors import GuardrailViolation, InvalidDrillSpec
from livefire.planning import check_egress, check_telemetry
from livefire.spec import parse_spec
from tests.conftest import sandbox_spec_document

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:livefire/prometheus-AbC123"
PROMETHEUS: dict[str, Any] = {"prometheus": "https://prometheus.example.com/", "service": "payments.payments.svc"}
AMP: dict[str, Any] = {"amp": "ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789", "region": "eu-west-1", "service": "payments"}


def with_telemetry(telemetry: dict[str, Any]) -> dict[str, Any]:
    return sandbox_spec_document(telemetry=telemetry)


def test_a_prometheus_source_parses_with_the_istio_defaults() -> None:
    telemetry = parse_spec(with_telemetry({**PROMETHEUS, "tokenSecret": SECRET})).telemetry

    assert telemetry is not None
    assert telemetry.query_url == "https://prometheus.example.com"
    assert telemetry.token_secret == SECRET
    assert (telemetry.requests_metric, telemetry.labels.service, telemetry.labels.cluster, telemetry.reporter) == (
        "istio_requests_total", "destination_service", "destination_cluster", "destination")
    assert telemetry.cluster_of("us-east-1") == "us-east-1"


def test_an_amp_workspace_is_queried_at_its_regional_endpoint() -> None:
    telemetry = parse_spec(with_telemetry({**AMP, "clusters": {"us-east-1": "payments-use1"},
                                           "scrapeInterval": "30s"})).telemetry

    assert telemetry is not None
    assert telemetry.query_url == ("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/"
                                   "ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789")
    assert telemetry.cluster_of("us-east-1") == "payments-use1"
    assert telemetry.scrape_interval == 30.0


def test_no_telemetry_section_means_none() -> None:
    assert parse_spec(sandbox_spec_document()).telemetry is None


@pytest.mark.parametrize(("telemetry", "expected"), [
    ({"service": "payments"}, "telemetry: give exactly one of prometheus"),
    ({**PROMETHEUS, **AMP}, "telemetry: give exactly one of prometheus"),
    ({**AMP, "region": None}, "telemetry.region: an amp workspace needs its region"),
    ({**AMP, "region": "europe"}, "telemetry.region: 'europe' is not an AWS region code"),
    ({**PROMETHEUS, "region": "us-east-1"}, "telemetry.region: only valid with amp"),
    ({**AMP, "tokenSecret": SECRET}, "telemetry.tokenSecret: amp is signed with SigV4"),
    ({**PROMETHEUS, "prometheus": "http://prometheus.example.com", "tokenSecret": SECRET},
     "telemetry.prometheus: must be https when tokenSecret is given"),
    ({**PROMETHEUS, "prometheus": "ftp://prometheus"}, "telemetry.prometheus: must be an http(s) URL"),
    ({**PROMETHEUS, "prometheus": "https://u:p@prometheus"}, "telemetry.prometheus: must not carry credentials"),
    ({**PROMETHEUS, "prometheus": "https://prometheus/?token=x"}, "telemetry.prometheus: must not carry a query"),
    ({**PROMETHEUS, "tokenSecret": "livefire/prometheus"}, "telemetry.tokenSecret: String should match pattern"),
    ({**AMP, "amp": "workspace-1"}, "telemetry.amp: String should match pattern"),
    ({**PROMETHEUS, "service": 'payments"} or vector(1) #'}, "telemetry.service: String should match pattern"),
    ({**PROMETHEUS, "selector": {"namespace": "a b"}}, "telemetry.selector.namespace: String should match"),
    ({**PROMETHEUS, "selector": {"destination_service": "x"}}, "telemetry.selector: 'destination_service' is set"),
    ({**PROMETHEUS, "labels": {"cluster": "destination-cluster"}}, "telemetry.labels.cluster: String should match"),
    ({**PROMETHEUS, "labels": {"zone": "x"}}, "telemetry.labels.zone: unknown field"),
    ({**PROMETHEUS, "clusters": {"eu-west-1": "c"}}, "telemetry.clusters: 'eu-west-1' is not one of the spec's"),
    ({**PROMETHEUS, "clusters": {"us-east-1": "us-west-2"}}, "telemetry.clusters: two regions have the same"),
    ({**PROMETHEUS, "reporter": "gateway"}, "telemetry.reporter: Input should be 'source' or 'destination'"),
    ({**PROMETHEUS, "scrapeInterval": "100ms"}, "telemetry.scrapeInterval: "),
    ({**PROMETHEUS, "tolerance": 0}, "telemetry.tolerance: Input should be greater than 0"),
    ({**PROMETHEUS, "requestsMetric": "istio requests"}, "telemetry.requestsMetric: String should match"),
])
def test_each_bad_value_is_one_line_naming_its_field(telemetry: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidDrillSpec) as raised:
        parse_spec(with_telemetry({k: v for k, v in telemetry.items() if v is not None}))

    assert str(raised.value).startswith(expected), str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_prometheus_url_obeys_the_egress_rules_at_plan() -> None:
    spec = parse_spec(with_telemetry({**PROMETHEUS, "prometheus": "http://127.0.0.1:9090"}))
    settings: Any = type("Settings", (), {"egress": EgressPolicy.from_ranges("")})()

    with pytest.raises(GuardrailViolation, match=r"^telemetry.prometheus: 127.0.0.1: 127.0.0.1 is a loopback address"):
        check_egress(spec.model_copy(update={"regions": [], "entrypoint": "http://8.8.8.8/"}), settings)


@pytest.mark.parametrize(("telemetry", "allowed", "refused"), [
    (AMP, {"telemetry_workspaces": ("eu-west-1/ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789",)}, None),
    (AMP, {"telemetry_workspaces": ("us-east-1/ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789",)},
     "telemetry.amp: workspace 'eu-west-1/ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789' is outside"),
    ({**PROMETHEUS, "tokenSecret": SECRET}, {"telemetry_secrets": (SECRET,)}, None),
    ({**PROMETHEUS, "tokenSecret": SECRET}, {}, "telemetry.tokenSecret: 'arn:aws:secretsmanager"),
    (PROMETHEUS, {}, None),
])
def test_plan_refuses_telemetry_the_deployment_does_not_allow(telemetry: dict[str, Any], allowed: dict[str, Any],
                                                               refused: str | None) -> None:
    spec = parse_spec(with_telemetry(telemetry))
    settings: Any = type("Settings", (), {"telemetry_workspaces": (), "telemetry_secrets": (), **allowed})()

    if refused is None:
        check_telemetry(spec, settings)
    else:
        with pytest.raises(GuardrailViolation) as raised:
            check_telemetry(spec, settings)
        assert str(raised.value).startswith(refused)
