"""The drill spec: the user's interface, validated strictly.

Unknown keys are errors, every error names its field path (`fault.abort.percent`), and durations are
strings such as ``250ms``, ``30s`` or ``2m``. ``parse_spec`` is the single entry point; it raises
``InvalidDrillSpec`` with one line per problem and never lets another exception escape.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from livefire.errors import InvalidDrillSpec

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SLUG = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


def parse_duration(value: Any) -> float:
    """Turn ``250ms`` / ``30s`` / ``2m`` / ``1h`` (or a number of seconds) into seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 250ms, 30s or 2m")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"must be a non-negative duration like 250ms, 30s or 2m (got {value!r})")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"must be a duration like 250ms, 30s or 2m (got {type(value).__name__})")
    if seconds < 0:
        raise ValueError(f"must not be negative (got {value!r})")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    if seconds < 1 or not float(seconds).is_integer():
        return f"{round(seconds * 1000)}ms"
    return f"{int(seconds)}s"


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be greater than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
PositiveDuration = Annotated[
    float, BeforeValidator(lambda v: _positive(parse_duration(v))), PlainSerializer(format_duration)
]
Percent = Annotated[float, Field(ge=0, le=100)]
Slug = Annotated[str, Field(pattern=_SLUG)]

Pattern = Literal["active-active", "active-passive", "canary", "blue-green"]
FaultKind = Literal[
    "http-abort", "http-delay", "traffic-shift", "scale-to-zero", "circuit-break", "fis", "webhook", "external"
]
# The kinds that patch a mesh object; the others are started by someone else (FIS, a webhook) or by nobody.
MESH_KINDS = frozenset({"http-abort", "http-delay", "traffic-shift", "scale-to-zero", "circuit-break"})
RegionRole = Literal["primary", "standby", "active"]


class SpecModel(BaseModel):
    """Base of every spec section: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


class Metadata(SpecModel):
    name: Slug
    service: Slug
    owner: str | None = None
    description: str | None = None


class ClusterRef(SpecModel):
    """How to reach a cluster's Kubernetes API: exactly one of eks, kubeconfig or sandbox."""

    eks: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    sandbox: str | None = None

    @model_validator(mode="after")
    def _exactly_one_access_mode(self) -> ClusterRef:
        modes = [m for m in ("eks", "kubeconfig", "sandbox") if getattr(self, m)]
        if len(modes) != 1:
            raise ValueError("give exactly one of eks, kubeconfig or sandbox")
        if self.context and not self.kubeconfig:
            raise ValueError("context is only valid with kubeconfig")
        return self

    @property
    def key(self) -> str:
        """A stable name for the cluster, used in leases, records and logs."""
        if self.eks:
            return f"eks:{self.eks}"
        if self.sandbox:
            return f"sandbox:{self.sandbox}"
        return f"kubeconfig:{self.context or 'current'}"


class Region(SpecModel):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    role: RegionRole
    cluster: ClusterRef | None = None
    endpoint: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]


class ServedBy(SpecModel):
    """How a response names the region (and version) that served it."""

    header: str | None = "x-served-region"
    version_header: str | None = "x-version"
    json_field: str | None = None


class FaultTarget(SpecModel):
    namespace: Slug
    virtual_service: str | None = None
    destination_rule: str | None = None
    deployment: str | None = None
    route: str | None = Field(default=None, description="match only the http route with this name")


class AbortFault(SpecModel):
    http_status: Annotated[int, Field(ge=200, le=599)] = 503
    percent: Percent = 100.0


class DelayFault(SpecModel):
    fixed_delay: PositiveDuration
    percent: Percent = 100.0


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

# The fields each kind needs (besides target.namespace) and the payload sections it owns.
_KIND_TARGET = {
    "http-abort": "virtual_service",
    "http-delay": "virtual_service",
    "traffic-shift": "virtual_service",
    "circuit-break": "destination_rule",
    "scale-to-zero": "deployment",
}
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
# A Lambda step runs at most 120 s (the state machine's task timeout): every wait of a step stays well inside.
MAX_STEP_WAIT_S = 90.0
_URL = r"^https?://[^\s/]+(/\S*)?$"


def _step_wait(seconds: float) -> float:
    if seconds > MAX_STEP_WAIT_S:
        raise ValueError(f"must be at most {format_duration(MAX_STEP_WAIT_S)} (one step's time limit)")
    return seconds


StepWait = Annotated[PositiveDuration, AfterValidator(_step_wait)]


class FisExperiment(SpecModel):
    """fault.kind fis: start an AWS FIS experiment from a template; stop it on rollback."""

    experiment_template_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,64}$")]
    region: str | None = Field(default=None, description="the AWS region of the template (default: fault.region)")
    start_timeout: StepWait = Field(default=60.0, description="how long Inject waits for the experiment to run")
    stop_timeout: StepWait = Field(default=60.0, description="how long Rollback waits for it to end once stopped")


class WebhookCall(SpecModel):
    """One HTTP call: headers come from a Secrets Manager secret (a JSON object) and are never logged."""

    url: Annotated[str, Field(pattern=_URL)]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers_secret: Annotated[str, Field(min_length=1)] | None = None
    body: dict[str, Any] | list[Any] | str | None = None
    timeout: StepWait = 10.0


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
        target_field = _KIND_TARGET.get(self.kind)
        if target_field is not None and not getattr(self.target, target_field):
            raise ValueError(f"kind {self.kind} needs target.{to_camel(target_field)}")
        for section, kind in _KIND_PAYLOAD.items():
            if getattr(self, section) is not None and self.kind != kind:
                raise ValueError(f"{to_camel(section)} is only valid with kind {kind}, not {self.kind}")
        if self.weights is not None and sum(self.weights.values()) != 100:
            raise ValueError(f"weights must add up to 100 (got {sum(self.weights.values())})")
        return self

    @property
    def squeeze(self) -> ConnectionPoolSqueeze:
        """The connection pool limits of a circuit-break fault (``DEFAULT_SQUEEZE`` when none are given)."""
        return self.connection_pool or DEFAULT_SQUEEZE


class Phases(SpecModel):
    baseline: PositiveDuration = 5.0
    lead: Duration = 5.0
    fault: PositiveDuration
    recovery: PositiveDuration


class Expect(SpecModel):
    status: Annotated[list[Annotated[int, Field(ge=100, le=599)]], Field(min_length=1)] = [200]
    body_contains: str | None = None


class Probes(SpecModel):
    interval: PositiveDuration = 0.25
    timeout: PositiveDuration = 2.0
    expect: Expect = Expect()
    fresh_connections: bool = True
    burst_interval: PositiveDuration = 0.01
    sustain: PositiveDuration = Field(default=1.0, description="how long success must hold to count")

    @model_validator(mode="after")
    def _burst_not_slower_than_base(self) -> Probes:
        if self.burst_interval > self.interval:
            raise ValueError("burstInterval must not be longer than interval")
        return self


class Objectives(SpecModel):
    rto: PositiveDuration | None = None
    failback_rto: PositiveDuration | None = None
    availability: Percent | None = None
    p99_latency: PositiveDuration | None = None
    mixed_version_window: Duration | None = Field(
        default=None,
        description="blue-green: how long both versions may serve after the cutover (default: one probe interval)",
    )


class AbortIf(SpecModel):
    error_rate_over: Percent
    for_: PositiveDuration = Field(alias="for")


class Guardrails(SpecModel):
    allowed_namespaces: list[Slug] = Field(default=[], description="required (non-empty) for a mesh fault")
    allowed_clusters: list[str] = []
    abort_if: AbortIf | None = None
    alarms: list[str] = []


class Vantage(SpecModel):
    name: Slug
    region: str
    function_arn: str | None = None


class DrillSpec(SpecModel):
    api_version: Literal["livefire/v1"]
    kind: Literal["Drill"]
    metadata: Metadata
    pattern: Pattern
    mode: Literal["live", "dry-run"] = "live"
    regions: Annotated[list[Region], Field(min_length=1)]
    entrypoint: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]
    served_by: ServedBy = ServedBy()
    fault: Fault
    phases: Phases
    probes: Probes = Probes()
    objectives: Objectives = Objectives()
    guardrails: Guardrails = Guardrails()
    vantages: list[Vantage] = []

    @field_validator("regions")
    @classmethod
    def _unique_region_names(cls, regions: list[Region]) -> list[Region]:
        names = [r.name for r in regions]
        if len(names) != len(set(names)):
            raise ValueError("region names must be unique")
        return regions

    @model_validator(mode="after")
    def _fault_stays_inside_the_spec(self) -> DrillSpec:
        region = self.region(self.fault.region)
        if region is None:
            raise ValueError(f"fault.region {self.fault.region!r} is not one of the spec's regions")
        target = self.fault.target
        if target is not None and region.cluster is None:  # a fault outside the mesh needs no cluster
            raise ValueError(f"fault.region {self.fault.region!r} has no cluster to inject into")
        if target is not None and target.namespace not in self.guardrails.allowed_namespaces:
            raise ValueError(
                f"fault.target.namespace {target.namespace!r} is not in "
                "guardrails.allowedNamespaces"
            )
        if self.pattern == "active-passive" and not any(r.role == "standby" for r in self.regions):
            raise ValueError("pattern active-passive needs a region with role standby")
        return self

    def region(self, name: str) -> Region | None:
        return next((r for r in self.regions if r.name == name), None)

    @property
    def observe_seconds(self) -> float:
        return self.phases.lead + self.phases.fault + self.phases.recovery

    def to_document(self) -> dict[str, Any]:
        """The normalized spec as the user would write it (camelCase keys, duration strings)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def digest(self) -> str:
        canonical = json.dumps(self.to_document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _path_part(part: Any) -> str:
    text = str(part)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else repr(text)


def _describe(error: Any) -> str:
    path = ".".join(_path_part(part) for part in error["loc"]) or "(spec)"
    message = " ".join(str(error["msg"]).split())
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return f"{path}: {message}"


def parse_spec(document: Any) -> DrillSpec:
    """Validate a spec document (already parsed from YAML/JSON); raise InvalidDrillSpec on any problem."""
    if not isinstance(document, dict):
        raise InvalidDrillSpec(f"(spec): must be a mapping, got {type(document).__name__}")
    try:
        return DrillSpec.model_validate(document)
    except ValidationError as exc:
        raise InvalidDrillSpec("; ".join(_describe(e) for e in exc.errors())) from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidDrillSpec(f"(spec): {exc}") from None
