"""Alarm guardrails are read in each alarm's own region (moto CloudWatch in several regions): a plain name in the
deployment's region, an ARN in its own, ``{name, region}`` in the region given, whichever region the vantage
probes from."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from livefire.errors import GuardrailBreached
from livefire.guardrails import AlarmWatch, home_region
from livefire.probing.window import probe_window
from livefire.spec import AlarmRef, parse_spec
from tests.component.test_probing import Endpoint, _bucket, _request, _resolving, _spec

HOME = "us-east-1"  # the region of the drill's state machine (the execution ARN of test_probing's plans)
VANTAGE = "ap-southeast-2"  # a remote vantage: its Lambda's own region
ARN_IN_SYDNEY = f"arn:aws:cloudwatch:{VANTAGE}:{DEFAULT_ACCOUNT_ID}:alarm:payments-latency"
ALARMS: list[str | AlarmRef] = ["payments-5xx", AlarmRef(name="payments-5xx-eu", region="eu-west-1"), ARN_IN_SYDNEY]


def _alarm(region: str, name: str) -> None:
    boto3.client("cloudwatch", region_name=region).put_metric_alarm(
        AlarmName=name, Namespace="Payments", MetricName=name, Statistic="Sum", Period=60, EvaluationPeriods=1,
        Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto, seen from a vantage in another region than the deployment's, with an alarm in three regions."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": VANTAGE, "AWS_REGION": VANTAGE}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        _alarm(HOME, "payments-5xx")
        _alarm("eu-west-1", "payments-5xx-eu")
        _alarm(VANTAGE, "payments-latency")
        yield


def test_each_alarm_is_read_in_its_own_region_not_the_vantages(aws: None) -> None:
    watch = AlarmWatch(ALARMS, home_region=HOME)

    assert watch.poll() is None
    assert sorted(watch.by_region) == sorted([HOME, "eu-west-1", VANTAGE])


def test_an_alarm_firing_in_its_region_is_named_with_that_region(aws: None) -> None:
    boto3.client("cloudwatch", region_name="eu-west-1").set_alarm_state(
        AlarmName="payments-5xx-eu", StateValue="ALARM", StateReason="5xx in Ireland")

    reason = AlarmWatch(ALARMS, home_region=HOME).poll()

    assert reason is not None and "CloudWatch alarm payments-5xx-eu is in ALARM in eu-west-1" in reason
    assert "5xx in Ireland" in reason


def test_a_plain_name_is_looked_for_in_the_deployments_region_only(aws: None) -> None:
    reason = AlarmWatch(["payments-5xx-eu"], home_region=HOME).poll()

    assert reason is not None and "no CloudWatch alarm named payments-5xx-eu in us-east-1" in reason


def test_an_alarm_arn_of_another_account_is_never_read_as_this_accounts_alarm_of_the_same_name(aws: None) -> None:
    other = f"arn:aws:cloudwatch:{HOME}:210987654321:alarm:payments-5xx"

    reason = AlarmWatch([other], home_region=HOME).poll()

    assert reason is not None and "not the alarm the spec names" in reason


def test_the_deployments_region_is_the_execution_arns() -> None:
    assert home_region(f"arn:aws:states:eu-central-1:{DEFAULT_ACCOUNT_ID}:execution:sm:d-1") == "eu-central-1"


def _window(spec_alarms: list[Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    s3 = boto3.client("s3", region_name=HOME)
    bucket = _bucket(s3)
    with Endpoint() as entry, Endpoint() as use1, Endpoint() as usw2:
        urls = _resolving(monkeypatch, {"entry": entry, "use1": use1, "usw2": usw2})
        document = _spec(urls["entry"], urls["use1"], urls["usw2"]).to_document()
        spec = parse_spec({**document, "guardrails": {**document["guardrails"], "alarms": spec_alarms}})
        request = _request(spec, "drill", baseline=0.5, observe=1.5)
        return probe_window(request, spec, s3_client=s3, bucket=bucket)


def test_a_remote_vantage_with_alarm_guardrails_probes_its_whole_window(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    alarms = ["payments-5xx", {"name": "payments-5xx-eu", "region": "eu-west-1"}, ARN_IN_SYDNEY]

    summary = _window(alarms, monkeypatch)

    # Never stopped by the alarms it reads; most probes answered (a busy machine may time out a few of its 500 ms).
    assert summary.window == "drill" and summary.done
    assert all(target.sent > 0 and target.succeeded >= target.sent / 2 for target in summary.targets)
    assert summary.ended_at_ms - summary.started_at_ms >= 1500


def test_a_remote_vantage_stops_when_an_alarm_of_another_region_fires(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3.client("cloudwatch", region_name=HOME).set_alarm_state(
        AlarmName="payments-5xx", StateValue="ALARM", StateReason="5xx at the entrypoint")

    with pytest.raises(GuardrailBreached, match="CloudWatch alarm payments-5xx is in ALARM in us-east-1"):
        _window(["payments-5xx"], monkeypatch)
