"""The marker stores a data check writes to and reads from: the ``http`` contract and a DynamoDB global table.

The ``http`` contract (README "Data checks"): ``POST <writeUrl>`` with the JSON marker ``{"key", "prefix",
"seq", "sentMs"}`` (any 2xx acknowledges it); ``GET <readUrl>?prefix=P`` answers ``{"seq", "sentMs"}`` of the
newest marker under ``P`` the region holds (404 or ``{"seq": null}``: none yet); ``DELETE <writeUrl>?prefix=P``
deletes every marker under ``P``. With ``standbyWrites``: ``POST <readUrl>`` writes a marker in that region and
``GET <writeUrl>?prefix=P&seq=N`` answers that one marker if the primary holds it (404 or ``{"seq": null}``: not).
Calls connect only where the egress rules allow (``http_connection``).

``dynamodb``: each marker is an item ``{pk: "<prefix><seq>", seq, sentMs, expiresAt}`` put in the primary region;
a replica region is read with strongly consistent reads of the keys written since the newest it was seen to hold.
A standby marker is put in its replica region and looked for by key in the primary region.
``expiresAt`` (epoch seconds, a day later) lets a table's TTL remove a marker a cleanup never reached.
A table's region whose spec region names ``cluster.assumeRole`` is reached through that role (``roles``, AWS
region -> role ARN: ``marker_roles``; docs/campaigns.md "Cross-account drills").
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from livefire.accounts import client_in, role_for
from livefire.datachecks.markers import Marker
from livefire.egress import EgressRefused
from livefire.errors import MeshAccessError
from livefire.faults.webhook import http_connection
from livefire.spec import DrillSpec
from livefire.spec.datachecks import DataCheck, DynamoMarkers, HttpMarkers, standby_prefix

USER_AGENT = "livefire-datacheck"
KEY_ATTRIBUTE = "pk"
MARKER_TTL_S = 24 * 3600
_BATCH_KEYS = 100  # the most keys one BatchGetItem reads
_BATCHES = 3  # BatchGetItems per read at most
_ANSWER_LIMIT = 4096


class MarkerError(Exception):
    """A marker operation failed; the message is an error class or an HTTP status, never an answer's text."""


class MarkerStore(Protocol):
    """Where one data check's markers go (``prefix``: the check's, ``livefire-marker/<drill>/<check>/``)."""

    look_batch: int  # the most standby markers one ``in_primary`` looks for

    def write(self, seq: int, sent_ms: float) -> None:
        """Put marker ``seq``; returns once the primary acknowledged it, raises MarkerError otherwise."""
        ...

    def newest(self, region: str) -> Marker | None:
        """The newest marker ``region`` holds (None: none yet); raises MarkerError when the read failed."""
        ...

    def write_standby(self, region: str, seq: int, sent_ms: float) -> None:
        """Put marker ``seq`` in ``region`` (``standbyWrites``); returns once that region acknowledged it."""
        ...

    def in_primary(self, region: str, seqs: Sequence[int]) -> set[int]:
        """Which of ``region``'s standby markers ``seqs`` the primary holds; MarkerError when the look failed."""
        ...


def _query(url: str, **params: str) -> str:
    return "&".join(part for part in (urlsplit(url).query, urlencode(params)) if part)


def _call(method: str, url: str, query: str, timeout: float, body: bytes | None = None) -> tuple[int, bytes]:
    try:
        connection, target = http_connection(url, query, timeout)
        try:
            headers = {"User-Agent": USER_AGENT} | ({"Content-Type": "application/json"} if body else {})
            connection.request(method, target, body=body, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.read(_ANSWER_LIMIT)
        finally:
            connection.close()
    except EgressRefused as exc:
        raise MarkerError(f"egress_refused: {exc}") from None
    except TimeoutError:
        raise MarkerError("timeout") from None
    except (OSError, http.client.HTTPException) as exc:
        raise MarkerError(type(exc).__name__) from None


class HttpMarkerStore:
    look_batch = 4  # one keyed GET each

    def __init__(self, section: HttpMarkers, prefix: str, timeout: float) -> None:
        self.section = section
        self.prefix = prefix
        self.timeout = timeout

    def _post(self, url: str, prefix: str, seq: int, sent_ms: float) -> None:
        body = json.dumps({"key": f"{prefix}{seq:010d}", "prefix": prefix, "seq": seq, "sentMs": sent_ms}).encode()
        status, _ = _call("POST", url, _query(url), self.timeout, body)
        if not 200 <= status < 300:
            raise MarkerError(f"http {status}")

    def _get(self, url: str, **params: str) -> Marker | None:
        status, body = _call("GET", url, _query(url, **params), self.timeout)
        if status == 404:
            return None
        if status != 200:
            raise MarkerError(f"http {status}")
        try:
            answer = json.loads(body)
            if answer.get("seq") is None:
                return None
            return Marker(int(answer["seq"]), float(answer["sentMs"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            raise MarkerError("protocol: the answer is not {\"seq\", \"sentMs\"}") from None

    def write(self, seq: int, sent_ms: float) -> None:
        self._post(self.section.write_url, self.prefix, seq, sent_ms)

    def newest(self, region: str) -> Marker | None:
        return self._get(self.section.read_urls[region], prefix=self.prefix)

    def write_standby(self, region: str, seq: int, sent_ms: float) -> None:
        self._post(self.section.read_urls[region], standby_prefix(self.prefix, region), seq, sent_ms)

    def in_primary(self, region: str, seqs: Sequence[int]) -> set[int]:
        """One keyed GET per marker; one answered with another marker (a store ignoring ``seq``) is not held."""
        prefix = standby_prefix(self.prefix, region)
        url = self.section.write_url
        return {seq for seq in seqs if (marker := self._get(url, prefix=prefix, seq=str(seq))) and marker.seq == seq}


def delete_http_markers(section: HttpMarkers, prefix: str, timeout: float) -> None:
    """``DELETE <writeUrl>?prefix=...``; MarkerError unless the store answers 2xx (or 404: nothing there)."""
    url = section.write_url
    status, _ = _call("DELETE", url, _query(url, prefix=prefix), timeout)
    if not (200 <= status < 300 or status == 404):
        raise MarkerError(f"http {status}")


@cache
def _config(timeout: float) -> Config:
    return Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1})


def dynamodb_client(region: str, timeout: float, roles: Mapping[str, str]) -> Any:
    """The DynamoDB client of ``region``, as the role ``roles`` names for it (or the function itself)."""
    try:
        return client_in("dynamodb", region, roles.get(region), _config(timeout))
    except MeshAccessError:  # the table's account cannot be reached: the operation failed
        raise MarkerError(f"cannot assume {roles.get(region)}") from None


def marker_roles(spec: DrillSpec) -> dict[str, str]:
    """The roles the dynamodb checks' regions are reached through (``accounts.role_for``), by AWS region."""
    regions = {region for check in spec.data_checks if check.dynamodb is not None
               for region in (check.dynamodb.primary_region, *check.dynamodb.replica_regions)}
    return {region: role for region in sorted(regions) if (role := role_for(spec, region)) is not None}


def _dynamo_call(operation: Any, **kwargs: Any) -> Any:
    try:
        return operation(**kwargs)
    except ClientError as exc:
        raise MarkerError(str(exc.response.get("Error", {}).get("Code", "ClientError"))) from None
    except BotoCoreError as exc:
        raise MarkerError(type(exc).__name__) from None


class DynamoMarkerStore:
    look_batch = _BATCH_KEYS  # one BatchGetItem

    def __init__(self, section: DynamoMarkers, prefix: str, timeout: float, roles: Mapping[str, str]) -> None:
        self.section = section
        self.prefix = prefix
        self.timeout = timeout
        self.roles = roles
        self._lock = threading.Lock()
        self._last_written = -1  # the newest seq a write was sent for
        self._seen: dict[str, Marker] = {}  # per region: the newest marker it was seen to hold

    def _key(self, seq: int, prefix: str | None = None) -> dict[str, Any]:
        return {KEY_ATTRIBUTE: {"S": f"{prefix or self.prefix}{seq:010d}"}}

    def _put(self, region: str, prefix: str, seq: int, sent_ms: float) -> None:
        item = self._key(seq, prefix) | {"seq": {"N": str(seq)}, "sentMs": {"N": repr(sent_ms)},
                                         "expiresAt": {"N": str(int(time.time()) + MARKER_TTL_S)}}
        client = dynamodb_client(region, self.timeout, self.roles)
        _dynamo_call(client.put_item, TableName=self.section.table, Item=item)

    def write(self, seq: int, sent_ms: float) -> None:
        with self._lock:
            self._last_written = max(self._last_written, seq)
        self._put(self.section.primary_region, self.prefix, seq, sent_ms)

    def write_standby(self, region: str, seq: int, sent_ms: float) -> None:
        self._put(region, standby_prefix(self.prefix, region), seq, sent_ms)

    def in_primary(self, region: str, seqs: Sequence[int]) -> set[int]:
        """A strongly consistent BatchGetItem of the keys (at most ``_BATCH_KEYS``) in the primary region."""
        if not seqs:
            return set()
        prefix = standby_prefix(self.prefix, region)
        client = dynamodb_client(self.section.primary_region, self.timeout, self.roles)
        answer = _dynamo_call(client.batch_get_item, RequestItems={self.section.table: {
            "Keys": [self._key(seq, prefix) for seq in seqs[:_BATCH_KEYS]], "ConsistentRead": True}})
        if answer.get("UnprocessedKeys"):
            raise MarkerError("unprocessed keys")  # not looked at: asked again, never taken as missing
        return {int(item["seq"]["N"]) for item in answer.get("Responses", {}).get(self.section.table, [])}

    def newest(self, region: str) -> Marker | None:
        """The newest marker of the keys written since the newest the region was seen to hold, read in batches
        of ``_BATCH_KEYS`` from there (at most ``_BATCHES``: a region further behind catches up over the next
        reads, and until then its lag is overstated, never understated)."""
        with self._lock:
            newest = self._seen.get(region)
            top = self._last_written
        client = dynamodb_client(region, self.timeout, self.roles)
        low = newest.seq + 1 if newest is not None else 0
        for _ in range(_BATCHES):
            if low > top:
                break
            keys = [self._key(seq) for seq in range(low, min(top, low + _BATCH_KEYS - 1) + 1)]
            answer = _dynamo_call(client.batch_get_item, RequestItems={
                self.section.table: {"Keys": keys, "ConsistentRead": True}})
            found = [Marker(int(item["seq"]["N"]), float(item["sentMs"]["N"]))
                     for item in answer.get("Responses", {}).get(self.section.table, [])]
            newest = max([*found, *([newest] if newest else [])], key=lambda marker: marker.seq, default=None)
            if not found or max(m.seq for m in found) < low + len(keys) - 1:
                break  # the region holds nothing past this batch
            low += len(keys)
        with self._lock:
            current = self._seen.get(region)
            if newest is not None and (current is None or newest.seq > current.seq):
                self._seen[region] = newest
            return self._seen.get(region)


def delete_dynamodb_markers(section: DynamoMarkers, prefix: str, timeout: float, roles: Mapping[str, str]) -> int:
    """Delete every marker item under ``prefix`` in the primary and every replica region (any replica of a global
    table accepts the delete); how many were deleted."""
    deleted = 0
    for region in (section.primary_region, *section.replica_regions):
        client = dynamodb_client(region, timeout, roles)
        paginator = client.get_paginator("scan")
        pages = paginator.paginate(TableName=section.table, ProjectionExpression="#k",
                                   FilterExpression="begins_with(#k, :p)",
                                   ExpressionAttributeNames={"#k": KEY_ATTRIBUTE},
                                   ExpressionAttributeValues={":p": {"S": prefix}}, ConsistentRead=True)
        try:
            for page in pages:
                for item in page.get("Items", []):
                    _dynamo_call(client.delete_item, TableName=section.table, Key={KEY_ATTRIBUTE: item[KEY_ATTRIBUTE]})
                    deleted += 1
        except (ClientError, BotoCoreError) as exc:
            raise MarkerError(f"{region}: {type(exc).__name__}") from None
    return deleted


def store_for(check: DataCheck, prefix: str, roles: Mapping[str, str]) -> MarkerStore:
    """The check's store; a dynamodb table's region is reached through the role ``roles`` names for it."""
    if check.http is not None:
        return HttpMarkerStore(check.http, prefix, check.timeout)
    assert check.dynamodb is not None
    return DynamoMarkerStore(check.dynamodb, prefix, check.timeout, roles)


def delete_markers(check: DataCheck, prefix: str, roles: Mapping[str, str]) -> None:
    """Delete the markers under ``prefix`` from the check's store; MarkerError when that failed."""
    if check.http is not None:
        delete_http_markers(check.http, prefix, check.timeout)
    else:
        assert check.dynamodb is not None
        delete_dynamodb_markers(check.dynamodb, prefix, check.timeout, roles)
