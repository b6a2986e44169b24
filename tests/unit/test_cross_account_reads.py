"""Cross-account reads (livefire/accounts.py ``role_for``): a region whose cluster names ``assumeRole`` has its
dynamodb marker tables, its AMP workspace and its CloudWatch alarms reached through that role; every other region
with the function's own credentials. The sessions and clients are in-memory fakes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from livefire import accounts
from livefire.datachecks.cleanup import cleanup_document
from livefire.datachecks.stores import MarkerError, delete_markers, marker_roles, store_for
from livefire.errors import MeshAccessError, TelemetryUnavailable
from livefire.guardrails import AlarmWatch, cloudwatch_for
from livefire.spec import DrillSpec, parse_spec
from livefire.telemetry import client as telemetry_client
from livefire.telemetry.client import RangeQuery, api_for
from tests.conftest import sandbox_spec_document

ROLE = "arn:aws:iam::210987654321:role/livefire-target"
OWN = "own"  # how the fakes name the function's own credentials
TABLE = "orders-markers"
WORKSPACE = "ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
QUERY = RangeQuery("requests", "sum(istio_requests_total)", 1_764_655_200.0, 1_764_655_260.0, 1.0)
MATRIX = b'{"status": "success", "data": {"resultType": "matrix", "result": []}}'


class FakeClient:
    """Any AWS client: records each call as (credentials, region, operation, arguments)."""

    def __init__(self, calls: list[tuple[str, str, str, dict[str, Any]]], who: str, region: str) -> None:
        self.calls, self.who, self.region = calls, who, region

    def _record(self, operation: str, **kwargs: Any) -> None:
        self.calls.append((self.who, self.region, operation, kwargs))

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        self._record("put_item", **kwargs)
        return {}

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        self._record("batch_get_item", **kwargs)
        return {"Responses": {TABLE: [{"seq": {"N": "0"}, "sentMs": {"N": "1.0"}}]}}

    def get_paginator(self, operation: str) -> FakeClient:
        return self

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        self._record("scan", **kwargs)
        return [{"Items": [{"pk": {"S": "livefire-marker/d-1/orders/0000000000"}}]}]

    def delete_item(self, **kwargs: Any) -> dict[str, Any]:
        self._record("delete_item", **kwargs)
        return {}

    def describe_alarms(self, **kwargs: Any) -> dict[str, Any]:
        self._record("describe_alarms", **kwargs)
        return {"MetricAlarms": [{"AlarmName": name, "StateValue": "OK"} for name in kwargs["AlarmNames"]]}


class FakeSession:
    def __init__(self, calls: list[tuple[str, str, str, dict[str, Any]]], who: str) -> None:
        self.calls, self.who = calls, who

    def client(self, service: str, region_name: str, config: Any = None) -> FakeClient:
        return FakeClient(self.calls, self.who, region_name)

    def get_credentials(self) -> Credentials:
        return Credentials(f"AK{self.who.upper()}", "secret", "token")


class Accounts:
    """The function's own credentials and the assumed role's, as fakes; ``refuse`` makes assuming fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []
        self.refuse = False

    def session_for(self, role_arn: str | None) -> FakeSession:
        if role_arn is not None and self.refuse:
            raise MeshAccessError(f"cannot assume {role_arn}: AccessDenied")
        return FakeSession(self.calls, OWN if role_arn is None else "assumed")

    def client(self, service: str, region_name: str, config: Any = None) -> FakeClient:  # boto3.client
        return FakeClient(self.calls, OWN, region_name)

    def by(self, operation: str) -> list[tuple[str, str]]:
        return [(who, region) for who, region, op, _ in self.calls if op == operation]


@pytest.fixture
def fake_accounts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Accounts]:
    fake = Accounts()
    monkeypatch.setattr(accounts, "session_for", fake.session_for)
    monkeypatch.setattr(telemetry_client, "session_for", fake.session_for)
    monkeypatch.setattr(accounts.boto3, "client", fake.client)
    accounts._client.cache_clear()
    yield fake
    accounts._client.cache_clear()


def cross_account_spec(**overrides: Any) -> DrillSpec:
    """us-west-2's cluster is in another account, behind ROLE; us-east-1's is in this one."""
    document = sandbox_spec_document(dataChecks=[{"name": "orders", "kind": "dynamodb", "dynamodb": {
        "table": TABLE, "primaryRegion": "us-east-1", "replicaRegions": ["us-west-2"]}}], **overrides)
    document["regions"][1]["cluster"] = {"eks": "payments-usw2", "region": "us-west-2", "assumeRole": ROLE}
    return parse_spec(document)


def alarmed_spec(*alarms: str | dict[str, str]) -> DrillSpec:
    return cross_account_spec(guardrails={"allowedNamespaces": ["payments"], "alarms": list(alarms)})


def test_the_role_of_a_region_is_its_spec_regions_assume_role_and_none_elsewhere() -> None:
    spec = cross_account_spec()

    assert accounts.role_for(spec, "us-west-2") == ROLE
    assert [accounts.role_for(spec, region) for region in ("us-east-1", "eu-west-1", None)] == [None, None, None]


def test_markers_are_put_with_the_functions_credentials_and_read_back_behind_the_replicas_role(
        fake_accounts: Accounts) -> None:
    spec = cross_account_spec()
    store = store_for(spec.data_checks[0], "livefire-marker/d-1/orders/", marker_roles(spec))

    store.write(0, 1.0)
    newest = store.newest("us-west-2")

    assert newest is not None and newest.seq == 0
    assert fake_accounts.by("put_item") == [(OWN, "us-east-1")]
    assert fake_accounts.by("batch_get_item") == [("assumed", "us-west-2")]


def test_a_rollback_deletes_the_markers_behind_the_role_its_cleanup_document_names(fake_accounts: Accounts) -> None:
    spec = cross_account_spec()
    document = cleanup_document(spec, "d-1")

    delete_markers(spec.data_checks[0], "livefire-marker/d-1/orders/", document["roles"])

    assert document["roles"] == {"us-west-2": ROLE}
    assert fake_accounts.by("delete_item") == [(OWN, "us-east-1"), ("assumed", "us-west-2")]


def test_a_refused_role_is_a_failed_marker_read_not_a_crash(fake_accounts: Accounts) -> None:
    spec = cross_account_spec()
    fake_accounts.refuse = True
    store = store_for(spec.data_checks[0], "livefire-marker/d-1/orders/", marker_roles(spec))
    store.write(0, 1.0)

    with pytest.raises(MarkerError, match=f"cannot assume {ROLE}"):
        store.newest("us-west-2")


@pytest.mark.parametrize(("region", "signer"), [("us-west-2", "AKASSUMED"), ("us-east-1", "AKOWN")])
def test_an_amp_query_is_signed_as_the_role_of_its_workspaces_region_or_as_the_function(
        fake_accounts: Accounts, region: str, signer: str) -> None:
    spec = cross_account_spec(telemetry={"service": "payments.payments.svc.cluster.local", "amp": WORKSPACE,
                                         "region": region})
    sent: list[dict[str, str]] = []

    def transport(url: str, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
        sent.append(headers)
        return 200, MATRIX

    api_for(spec, transport=transport).query_range(QUERY)

    assert f"Credential={signer}/" in sent[0]["Authorization"]
    assert f"/{region}/aps/aws4_request" in sent[0]["Authorization"]


def test_an_amp_workspace_behind_a_refused_role_is_unavailable_telemetry(fake_accounts: Accounts) -> None:
    fake_accounts.refuse = True
    spec = cross_account_spec(telemetry={"service": "payments.payments.svc.cluster.local", "amp": WORKSPACE,
                                         "region": "us-west-2"})

    with pytest.raises(TelemetryUnavailable, match=f"amp: cannot assume {ROLE}"):
        api_for(spec, transport=lambda url, headers, timeout: (200, MATRIX)).query_range(QUERY)


def test_alarms_are_read_behind_the_role_of_their_region_and_elsewhere_as_the_function(
        fake_accounts: Accounts) -> None:
    spec = alarmed_spec("payments-5xx", {"name": "ledger-5xx", "region": "us-west-2"},
                        {"name": "eu-5xx", "region": "eu-west-1"})

    breach = AlarmWatch(spec.guardrails.alarms, home_region="us-east-1", clients=cloudwatch_for(spec)).poll()

    assert breach is None
    assert sorted(fake_accounts.by("describe_alarms")) == [
        ("assumed", "us-west-2"), (OWN, "eu-west-1"), (OWN, "us-east-1")]


def test_alarms_behind_a_refused_role_count_as_a_failed_poll(fake_accounts: Accounts) -> None:
    fake_accounts.refuse = True
    spec = alarmed_spec({"name": "ledger-5xx", "region": "us-west-2"})
    watch = AlarmWatch(spec.guardrails.alarms, home_region="us-east-1", clients=cloudwatch_for(spec))

    reasons = [watch.poll() for _ in range(3)]

    assert reasons[:2] == [None, None]
    assert reasons[2] is not None and f"cannot assume {ROLE}" in reasons[2]
