"""The Prometheus HTTP API client: ``/api/v1/query_range`` over the egress-checked connection every target uses
(docs/architecture.md §7, §9).

- ``{prometheus: URL}``: a GET to the URL's ``/api/v1/query_range``; with ``tokenSecret`` the secret's headers
  (e.g. ``Authorization: Bearer ...``) are added, only over https and only inside the secret's own
  ``urlPrefixes`` (livefire/egress.py ``SecretBox``, as a webhook's ``headersSecret``).
- ``{amp: WORKSPACE, region: R}``: the same GET to Amazon Managed Service for Prometheus, signed with SigV4 for
  service ``aps`` in the workspace's region by botocore's own signer with the function's credentials, or those of
  the role the spec region of the workspace's region names (``api_for``; docs/campaigns.md "Cross-account drills").

Every failure is one ``TelemetryUnavailable`` that names what failed and never a secret value.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from livefire.accounts import role_for, session_for
from livefire.egress import EgressRefused, SecretBox
from livefire.errors import MeshAccessError, TelemetryUnavailable
from livefire.faults.webhook import http_connection
from livefire.redaction import Redactor
from livefire.spec import DrillSpec
from livefire.spec.telemetry import Telemetry

AMP_SERVICE = "aps"
QUERY_RANGE = "/api/v1/query_range"
USER_AGENT = "livefire-telemetry"
PLAIN_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}  # sent with every query, not secret
TIMEOUT_S = 10.0
ANSWER_LIMIT = 8 * 1024 * 1024  # bytes of one answer read: a drill's range queries are far smaller
# (url, headers, timeout) -> (HTTP status, body): one GET, egress-checked (``get``) or a fake in tests.
Transport = Callable[[str, dict[str, str], float], tuple[int, bytes]]


@dataclass(frozen=True)
class RangeQuery:
    """One ``query_range`` call: a PromQL expression over [start, end] (epoch seconds) every ``step`` seconds."""

    name: str
    promql: str
    start: float
    end: float
    step: float

    def params(self) -> dict[str, str]:
        return {"query": self.promql, "start": f"{self.start:.3f}", "end": f"{self.end:.3f}", "step": f"{self.step:g}"}


def get(url: str, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """One GET through ``http_connection``: the egress rules on the address connected to, the sandbox's DNS."""
    parts = urlsplit(url)
    connection, target = http_connection(url, parts.query, timeout)
    try:
        connection.request("GET", target, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read(ANSWER_LIMIT)
    finally:
        connection.close()


@cache
def _secrets() -> Any:
    return boto3.client("secretsmanager")


def read_secret(arn: str) -> str | None:
    """The secret's string (GetSecretValue of that ARN only)."""
    return _secrets().get_secret_value(SecretId=arn).get("SecretString")


def function_credentials(role_arn: str | None = None) -> Credentials:
    """The credentials a query is signed with: the role's (assumed, ``accounts.session_for``) or the function's."""
    try:
        credentials = session_for(role_arn).get_credentials()
    except MeshAccessError as exc:  # the workspace's account cannot be reached
        raise TelemetryUnavailable(f"amp: {exc}") from None
    if credentials is None:
        raise TelemetryUnavailable("amp: no AWS credentials to sign the query with")
    return credentials


def sign_amp(url: str, headers: dict[str, str], credentials: Credentials, region: str) -> dict[str, str]:
    """``headers`` plus the SigV4 headers of a GET of ``url`` for service ``aps`` in ``region`` (botocore's signer:
    ``Authorization``, ``X-Amz-Date`` and, with temporary credentials, ``X-Amz-Security-Token``)."""
    request = AWSRequest(method="GET", url=url, headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), AMP_SERVICE, region).add_auth(request)
    return dict(request.headers.items())


class PrometheusApi:
    """``query_range`` against the spec's telemetry source."""

    def __init__(self, telemetry: Telemetry, *, transport: Transport = get,
                 secrets: Callable[[str], str | None] = read_secret,
                 credentials: Callable[[], Credentials] = function_credentials) -> None:
        self._telemetry = telemetry
        self._transport = transport
        self._secrets = secrets
        self._credentials = credentials

    def _secret_headers(self, url: str) -> dict[str, str]:
        arn = self._telemetry.token_secret
        if arn is None:
            return {}
        try:
            raw = self._secrets(arn)
        except (ClientError, BotoCoreError) as exc:
            code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
            raise TelemetryUnavailable(f"tokenSecret {arn!r} could not be read ({code})") from None
        try:
            return SecretBox.parse(arn, raw).for_url(url).headers
        except EgressRefused as exc:
            raise TelemetryUnavailable(str(exc)) from None

    def request(self, query: RangeQuery) -> tuple[str, dict[str, str]]:
        """The URL and headers of one query, with its secret or its signature."""
        url = f"{self._telemetry.query_url}{QUERY_RANGE}?{urlencode(query.params())}"
        headers = dict(PLAIN_HEADERS)
        if self._telemetry.amp is not None:
            assert self._telemetry.region is not None  # amp needs its region (spec validation)
            return url, sign_amp(url, headers, self._credentials(), self._telemetry.region)
        return url, headers | self._secret_headers(url)

    def query_range(self, query: RangeQuery) -> dict[str, Any]:
        """The answer's JSON document (``{"status": "success", "data": {"resultType": "matrix", ...}}``)."""
        url, headers = self.request(query)
        try:
            status, body = self._transport(url, headers, TIMEOUT_S)
        except EgressRefused as exc:
            raise TelemetryUnavailable(f"{query.name}: {exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise TelemetryUnavailable(f"{query.name}: {self._telemetry.query_url} could not be reached "
                                       f"({type(exc).__name__})") from None
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if status != 200 or not isinstance(document, dict) or document.get("status") != "success":
            error = document.get("error") if isinstance(document, dict) else None
            secrets = [value for name, value in headers.items() if name not in PLAIN_HEADERS]  # a token, a signature
            shown = Redactor(secrets).cut(str(error), 200) if error else ""
            raise TelemetryUnavailable(f"{query.name}: answered {status}" + (f": {shown}" if shown else ""))
        data = document.get("data")
        if not isinstance(data, dict) or data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise TelemetryUnavailable(f"{query.name}: the answer is not a matrix")
        return document


def api_for(spec: DrillSpec, transport: Transport = get) -> PrometheusApi:
    """The spec's telemetry source; an amp workspace is signed as the role of the spec region of its region
    (``accounts.role_for``), else with the function's own credentials."""
    assert spec.telemetry is not None
    return PrometheusApi(spec.telemetry, transport=transport,
                         credentials=partial(function_credentials, role_for(spec, spec.telemetry.region)))
