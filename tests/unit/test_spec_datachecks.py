"""The dataChecks section and the rpo / replicationLagP99 objectives: valid shapes parse, every bad value is one
InvalidDrillSpec line naming its field path."""

from __future__ import annotations

from typing import Any

import pytest

from livefire.errors import InvalidDrillSpec
from livefire.spec import parse_spec
from livefire.spec.datachecks import marker_prefix
from tests.conftest import sandbox_spec_document

HTTP_CHECK: dict[str, Any] = {"name": "orders", "kind": "http", "interval": "200ms",
              "http": {"writeUrl": "http://markers.payments.sandbox/markers",
                       "readUrls": {"us-west-2": "http://usw2.markers.payments.sandbox/markers"}}}
DYNAMO_CHECK: dict[str, Any] = {"name": "orders-table", "kind": "dynamodb",
                "dynamodb": {"table": "livefire-markers", "primaryRegion": "us-east-1",
                             "replicaRegions": ["us-west-2"]}}


def with_checks(*checks: dict[str, Any], **objectives: Any) -> dict[str, Any]:
    document = sandbox_spec_document()
    document["dataChecks"] = [dict(check) for check in checks]
    document.setdefault("objectives", {}).update(objectives)
    return document


def test_both_kinds_parse_with_their_objectives_as_seconds() -> None:
    spec = parse_spec(with_checks(HTTP_CHECK, DYNAMO_CHECK, rpo="2s", replicationLagP99="500ms"))

    assert [c.kind for c in spec.data_checks] == ["http", "dynamodb"]
    assert spec.data_checks[0].interval == 0.2
    assert spec.data_checks[0].read_regions == ["us-west-2"]
    assert spec.data_checks[1].write_region == "us-east-1"
    assert (spec.objectives.rpo, spec.objectives.replication_lag_p99) == (2.0, 0.5)


def test_marker_keys_live_under_a_prefix_of_their_own() -> None:
    assert marker_prefix("d-1", "orders") == "livefire-marker/d-1/orders/"
    assert marker_prefix("d-1") == "livefire-marker/d-1/"


def _http(**changes: Any) -> dict[str, Any]:
    return {**HTTP_CHECK, "http": {**HTTP_CHECK["http"], **changes}}


def _dynamo(**changes: Any) -> dict[str, Any]:
    return {**DYNAMO_CHECK, "dynamodb": {**DYNAMO_CHECK["dynamodb"], **changes}}


@pytest.mark.parametrize(("document", "expected"), [
    (with_checks({**HTTP_CHECK, "kind": "ftp"}), "dataChecks.0.kind: Input should be 'http' or 'dynamodb'"),
    (with_checks({**HTTP_CHECK, "interval": "10ms"}), "dataChecks.0.interval: "),
    (with_checks({**HTTP_CHECK, "timeout": "31s"}), "dataChecks.0.timeout: "),
    (with_checks({"name": "orders", "kind": "http"}), "dataChecks.0.http: kind http needs a http section"),
    (with_checks({**HTTP_CHECK, "dynamodb": DYNAMO_CHECK["dynamodb"]}), "dataChecks.0.dynamodb: only valid with"),
    (with_checks(_http(writeUrl="ftp://x")), "dataChecks.0.http.writeUrl: "),
    (with_checks(_http(readUrls={})), "dataChecks.0.http.readUrls: "),
    (with_checks(_http(writeUrl="http://m.sandbox/w?token=s3cret")),
     "dataChecks.0.http.writeUrl: a marker URL takes no query string"),
    (with_checks(_http(readUrls={"eu-west-9": "http://x.sandbox/m"})),
     "dataChecks.0.http.readUrls: 'eu-west-9' is not one of the spec's regions"),
    (with_checks(_http(readUrls={"us-east-1": "http://x.sandbox/m"})),
     "dataChecks.0.http.readUrls: 'us-east-1' is the primary region"),
    (with_checks(_dynamo(table="x")), "dataChecks.0.dynamodb.table: "),
    (with_checks(_dynamo(primaryRegion="primary")), "dataChecks.0.dynamodb.primaryRegion: 'primary' is not an AWS"),
    (with_checks(_dynamo(primaryRegion="us-west-2")), "dataChecks.0.dynamodb.replicaRegions: 'us-west-2' is the "
                                                      "primaryRegion"),
    (with_checks(_dynamo(primaryRegion="eu-west-1", replicaRegions=["us-west-2"])),
     "dataChecks.0.dynamodb.primaryRegion: 'eu-west-1' is not the spec's primary region"),
    (with_checks(HTTP_CHECK, HTTP_CHECK), "dataChecks: check names must be unique"),
    (with_checks(*[{**HTTP_CHECK, "name": f"c{i}"} for i in range(5)]), "dataChecks: "),
    (with_checks(rpo="0s"), "objectives.rpo: "),
    (with_checks(rpo="5s"), "objectives.rpo: needs a dataChecks entry"),
    (with_checks(replicationLagP99="1s"), "objectives.replicationLagP99: needs a dataChecks entry"),
])
def test_a_bad_data_check_is_one_line_naming_its_field(document: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidDrillSpec) as raised:
        parse_spec(document)

    message = str(raised.value)
    assert "\n" not in message
    assert expected in message, message
