"""The ``telemetry`` section: where the mesh's own metrics are queried, so Assess can hold the probes against what
the mesh saw (docs/architecture.md §4, §7).

Two sources, one of them: ``{prometheus: URL}`` (any Prometheus-compatible HTTP API; an optional ``tokenSecret``
names a Secrets Manager secret holding the headers to send and the URL prefixes they may go to, as a webhook's
``headersSecret`` does: livefire/egress.py ``SecretBox``) or ``{amp: WORKSPACE_ID, region: R}`` (Amazon Managed
Service for Prometheus, signed with SigV4 for service ``aps``). The labels that identify the service default to
Istio's standard metrics; every label name and value is checked here, so a query built from them is exactly the
selector the spec states (no PromQL can be smuggled in through a value).
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from livefire.spec.aws import AwsRegion
from livefire.spec.base import SpecModel
from livefire.spec.durations import AS_DURATION, MINUTE, SECOND, bounded
from livefire.spec.urls import HttpUrl

# ws- then up to 64 letters, digits and hyphens (AMP workspace ids are ws- and a UUID).
_WORKSPACE = r"^ws-[A-Za-z0-9-]{1,64}$"
# arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX (the full ARN: IAM grants exactly this secret).
_SECRET_ARN = r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$"
_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]{0,127}$"
_METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$"
# A label value as a query carries it: no quote, backslash or control character can end the string literal.
_LABEL_VALUE = r"^[A-Za-z0-9_.:/@+-]{1,253}$"
MAX_SELECTOR_LABELS = 8

WorkspaceId = Annotated[str, Field(pattern=_WORKSPACE)]
SecretArn = Annotated[str, Field(pattern=_SECRET_ARN)]
LabelName = Annotated[str, Field(pattern=_LABEL_NAME)]
LabelValue = Annotated[str, Field(pattern=_LABEL_VALUE)]
MetricName = Annotated[str, Field(pattern=_METRIC_NAME)]
ScrapeInterval = Annotated[float, bounded(SECOND, 5 * MINUTE), AS_DURATION]
Tolerance = Annotated[float, Field(gt=0, le=100)]


def _plain_base(url: str) -> str:
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query string or fragment: livefire adds /api/v1/query_range to it")
    return url.rstrip("/")


PrometheusUrl = Annotated[HttpUrl, AfterValidator(_plain_base)]


class MeshLabels(SpecModel):
    """The label names of the mesh's request metrics (Istio's standard metrics by default)."""

    service: LabelName = Field(default="destination_service", description="names the service a request went to")
    cluster: LabelName = Field(default="destination_cluster", description="names the cluster that answered")
    code: LabelName = Field(default="response_code", description="the HTTP status of the answer")
    flags: LabelName = Field(default="response_flags", description="Envoy's response flags (a local reply: UO, "
                                                                    "UH, URX, FI, ...; '-' when none)")
    reporter: LabelName = Field(default="reporter", description="which proxy reported it: source or destination")
    source_workload: LabelName = Field(default="source_workload", description="the workload that sent it")


class Telemetry(SpecModel):
    """Where the mesh's metrics are read, and which series are the drilled service's."""

    prometheus: PrometheusUrl | None = Field(default=None, description="a Prometheus HTTP API base URL")
    token_secret: SecretArn | None = Field(
        default=None, description="Secrets Manager secret ARN: the headers to send (e.g. Authorization) and the "
                                  "urlPrefixes they may be sent to (https only), as a webhook's headersSecret")
    amp: WorkspaceId | None = Field(default=None, description="an Amazon Managed Prometheus workspace id")
    region: AwsRegion | None = Field(default=None, description="the AMP workspace's region")
    service: LabelValue = Field(description="the service label's value for the drilled service "
                                            "(e.g. payments.payments.svc.cluster.local)")
    clusters: dict[str, LabelValue] = Field(
        default={}, description="spec region name -> its cluster label value (default: the region's name)")
    gateway: LabelValue = Field(default="istio-ingressgateway",
                                description="source_workload of the entrypoint's gateway: its traffic split per "
                                            "cluster is the failover the mesh saw")
    reporter: Literal["source", "destination"] = Field(
        default="destination", description="whose reports count for the service's error ratio and latency")
    selector: Annotated[dict[LabelName, LabelValue], Field(max_length=MAX_SELECTOR_LABELS)] = Field(
        default={}, description="extra label matchers for the service's series (exact values)")
    labels: MeshLabels = MeshLabels()
    requests_metric: MetricName = Field(default="istio_requests_total", description="the request counter")
    duration_metric: MetricName = Field(default="istio_request_duration_milliseconds",
                                        description="the request duration histogram (milliseconds)")
    scrape_interval: ScrapeInterval = Field(default=15.0, description="how often the metrics are scraped: the "
                                                                      "resolution of every mesh instant")
    tolerance: Tolerance = Field(default=5.0, description="percentage points the probe and mesh error ratios "
                                                          "of a phase may differ by")

    @model_validator(mode="after")
    def _one_source(self) -> Telemetry:
        if (self.prometheus is None) == (self.amp is None):
            raise ValueError("give exactly one of prometheus (a URL) or amp (a workspace id)")
        if self.amp is not None and self.region is None:
            raise ValueError("region: an amp workspace needs its region")
        if self.prometheus is not None and self.region is not None:
            raise ValueError("region: only valid with amp")
        if self.amp is not None and self.token_secret is not None:
            raise ValueError("tokenSecret: amp is signed with SigV4; a token is only for prometheus")
        if self.token_secret is not None and urlsplit(self.prometheus or "").scheme != "https":
            raise ValueError("prometheus: must be https when tokenSecret is given (a secret is only sent over https)")
        return self

    @property
    def query_url(self) -> str:
        """The base the Prometheus HTTP API paths are appended to."""
        if self.amp is not None:
            return f"https://aps-workspaces.{self.region}.amazonaws.com/workspaces/{self.amp}"
        assert self.prometheus is not None
        return self.prometheus

    def cluster_of(self, region: str) -> str:
        """The cluster label value of a spec region."""
        return self.clusters.get(region, region)


def telemetry_problem(telemetry: Telemetry | None, regions: list[str]) -> str | None:
    """The first cross-section problem of ``telemetry`` (its clusters name the spec's regions, each value once),
    as ``path: problem``; None when there is none."""
    if telemetry is None:
        return None
    for region in telemetry.clusters:
        if region not in regions:
            return f"telemetry.clusters: {region[:40]!r} is not one of the spec's regions"
    values = [telemetry.cluster_of(region) for region in regions]
    if len(values) != len(set(values)):
        return "telemetry.clusters: two regions have the same cluster label value"
    reserved = {telemetry.labels.service, telemetry.labels.reporter}
    taken = reserved & set(telemetry.selector)
    if taken:
        return f"telemetry.selector: {sorted(taken)[0]!r} is set by service / reporter already"
    return None
