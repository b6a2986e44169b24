"""The ``fault`` section: what a drill breaks, one payload section per kind, and the object each kind patches."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from livefire.spec.aws import AwsRegion, is_region_code
from livefire.spec.base import Slug, SpecModel
from livefire.spec.durations import PositiveDuration, StepWait
from livefire.spec.urls import WebhookUrl

FaultKind = Literal[
    "http-abort", "http-delay", "traffic-shift", "scale-to-zero", "circuit-break", "fis", "webhook", "external"
]
# The kinds that patch a mesh object; the others are started by someone else (FIS, a webhook) or by nobody.
MESH_KINDS = frozenset({"http-abort", "http-delay", "traffic-shift", "scale-to-zero", "circuit-break"})
ObjectKind = Literal["VirtualService", "DestinationRule", "Deployment"]
# The object each mesh kind patches: its Kubernetes kind and the target field naming it.
KIND_TARGET: dict[str, tuple[ObjectKind, str]] = {
    "http-abort": ("VirtualService", "virtual_service"),
    "http-delay": ("VirtualService", "virtual_service"),
    "traffic-shift": ("VirtualService", "virtual_service"),
    "circuit-break": ("DestinationRule", "destination_rule"),
    "scale-to-zero": ("Deployment", "deployment"),
}
# The payload sections and the one kind each belongs to.
_KIND_PAYLOAD = {
    "abort": "http-abort",
    "delay": "http-delay",
    "weights": "traffic-shift",
    "connection_pool": "circuit-break",
    "fis": "fis",
    "webhook": "webhook",
}
_REQUIRED_PAYLOAD = {
    "http-abort": ("abort", "an abort section"),
    "http-delay": ("delay", "a delay section"),
    "traffic-shift": ("weights", "weights (subset: weight)"),
    "fis": ("fis", "a fis section (experimentTemplateId)"),
    "webhook": ("webhook", "a webhook section (inject and rollback calls)"),
}


class FaultTarget(SpecModel):
    namespace: Slug
    virtual_service: str | None = None
    destination_rule: str | None = None
    deployment: str | None = None
    route: str | None = Field(default=None, description="match only the http route with this name")


# The share of requests a fault hits: a 0 % fault would be injected and change nothing.
FaultPercent = Annotated[float, Field(gt=0, le=100)]


class AbortFault(SpecModel):
    http_status: Annotated[int, Field(ge=200, le=599)] = 503
    percent: FaultPercent = 100.0


class DelayFault(SpecModel):
    fixed_delay: PositiveDuration
    percent: FaultPercent = 100.0


PoolLimit = Annotated[int, Field(ge=1, le=2**31 - 1)]
RouteWeight = Annotated[int, Field(ge=0, le=100)]


class ConnectionPoolSqueeze(SpecModel):
    """The ``trafficPolicy.connectionPool`` limits a circuit-break fault writes (tcp.maxConnections and the
    http.* limits). A limit not named is left as the DestinationRule has it; without a connectionPool section
    the fault squeezes all four to 1 (``DEFAULT_SQUEEZE``)."""

    max_connections: PoolLimit | None = None
    http1_max_pending_requests: PoolLimit | None = None
    http2_max_requests: PoolLimit | None = None
    max_requests_per_connection: PoolLimit | None = None

    @model_validator(mode="after")
    def _squeezes_something(self) -> ConnectionPoolSqueeze:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("set at least one connection pool limit")
        return self


DEFAULT_SQUEEZE = ConnectionPoolSqueeze(
    max_connections=1, http1_max_pending_requests=1, http2_max_requests=1, max_requests_per_connection=1
)


class FisExperiment(SpecModel):
    """fault.kind fis: start an AWS FIS experiment from a template; stop it on rollback."""

    experiment_template_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,64}$")]
    region: AwsRegion | None = Field(default=None, description="the AWS region of the template (default: "
                                                                 "fault.region, which must then be a region code)")
    start_timeout: StepWait = Field(default=60.0, description="how long Inject waits for the experiment to run")
    stop_timeout: StepWait = Field(default=60.0, description="how long Rollback waits for it to end once stopped")


MAX_QUERY_VALUE_CHARS = 1024


def _query_value(value: Any) -> str:
    """A query parameter as it is sent: strings as given, numbers as written, booleans as true / false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, int | float | str):
        raise ValueError(f"must be a string, a number or true/false (got {type(value).__name__})")
    if len(text := str(value)) > MAX_QUERY_VALUE_CHARS:
        raise ValueError(f"must be at most {MAX_QUERY_VALUE_CHARS} characters long (got {len(text)})")
    return text


QueryValue = Annotated[str, BeforeValidator(_query_value)]


class WebhookCall(SpecModel):
    """One HTTP call. Its secrets (headers, query parameters) come from a Secrets Manager secret that also names
    the URL prefixes they may be sent to (livefire/egress.py ``SecretBox``); they are never logged or stored."""

    url: WebhookUrl
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    query: dict[Annotated[str, Field(min_length=1, max_length=128)], QueryValue] | None = Field(
        default=None, description="query parameters that are not secret (stored and shown as given)"
    )
    headers_secret: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="Secrets Manager secret: the headers and query parameters to send, and urlPrefixes"
    )
    body: dict[str, Any] | list[Any] | str | None = None
    timeout: StepWait = 10.0
    store_response: bool = Field(
        default=False, description="keep the answer's first 2,000 characters (secrets removed) in the evidence"
    )

    @model_validator(mode="after")
    def _secrets_only_over_https(self) -> WebhookCall:
        if self.headers_secret is not None and not self.url.startswith("https://"):
            raise ValueError("url: must be https when headersSecret is given (a secret is only sent over https)")
        return self


class WebhookFault(SpecModel):
    """fault.kind webhook: ``inject`` starts the fault, ``rollback`` ends it (called by every rollback path)."""

    inject: WebhookCall
    rollback: WebhookCall


class Fault(SpecModel):
    kind: FaultKind
    region: str
    target: FaultTarget | None = Field(default=None, validate_default=True)
    abort: AbortFault | None = None
    delay: DelayFault | None = None
    weights: Annotated[dict[Annotated[str, Field(min_length=1)], RouteWeight], Field(min_length=1)] | None = Field(
        default=None, description="traffic-shift: route weight per destination subset of the matched routes"
    )
    connection_pool: ConnectionPoolSqueeze | None = Field(
        default=None, description="circuit-break: the limits to squeeze to (default: all four limits 1)"
    )
    fis: FisExperiment | None = None
    webhook: WebhookFault | None = None

    @field_validator("target")
    @classmethod
    def _target_only_for_mesh_kinds(cls, target: FaultTarget | None, info: ValidationInfo) -> FaultTarget | None:
        kind = info.data.get("kind")
        if target is None and (kind is None or kind in MESH_KINDS):
            raise ValueError(f"required for kind {kind}" if kind else "Field required")
        if target is not None and kind is not None and kind not in MESH_KINDS:
            raise ValueError(f"kind {kind} touches no mesh object: remove target")
        return target

    @property
    def in_mesh(self) -> bool:
        return self.kind in MESH_KINDS

    @property
    def target_object(self) -> tuple[ObjectKind, str]:
        """The mesh object a mesh kind patches: its Kubernetes kind and name."""
        object_kind, field = KIND_TARGET[self.kind]
        name = getattr(self.target, field, None)
        assert name  # validated: a mesh kind names its object (_payload_matches_kind)
        return object_kind, name

    @property
    def subject(self) -> str:
        """What the fault acts on, in words (reports)."""
        if self.target is not None:
            target = self.target
            objects = [
                f"{kind} {name}"
                for kind, name in (
                    ("VirtualService", target.virtual_service),
                    ("DestinationRule", target.destination_rule),
                    ("Deployment", target.deployment),
                )
                if name
            ]
            return f"{target.namespace}: {', '.join(objects) or '—'}"
        if self.fis is not None:
            return f"FIS experiment template {self.fis.experiment_template_id}"
        if self.webhook is not None:
            return f"webhook {self.webhook.inject.method} {self.webhook.inject.url}"
        return "observed only: nothing injected"

    @model_validator(mode="after")
    def _payload_matches_kind(self) -> Fault:
        required = _REQUIRED_PAYLOAD.get(self.kind)
        if required is not None and getattr(self, required[0]) is None:
            raise ValueError(f"kind {self.kind} needs {required[1]}")
        if self.kind in KIND_TARGET:
            target_field = KIND_TARGET[self.kind][1]
            if not getattr(self.target, target_field):
                raise ValueError(f"kind {self.kind} needs target.{to_camel(target_field)}")
        for section, kind in _KIND_PAYLOAD.items():
            if getattr(self, section) is not None and self.kind != kind:
                raise ValueError(f"{to_camel(section)} is only valid with kind {kind}, not {self.kind}")
        if self.fis is not None and self.fis.region is None and not is_region_code(self.region):
            raise ValueError(f"region: {self.region[:40]!r} is not an AWS region code, so it cannot select the FIS "
                             "endpoint: give fis.region (the template's AWS region, such as us-east-1)")
        if self.weights is not None and sum(self.weights.values()) != 100:
            raise ValueError(f"weights must add up to 100 (got {sum(self.weights.values())})")
        return self

    @property
    def squeeze(self) -> ConnectionPoolSqueeze:
        """The connection pool limits of a circuit-break fault (``DEFAULT_SQUEEZE`` when none are given)."""
        return self.connection_pool or DEFAULT_SQUEEZE
