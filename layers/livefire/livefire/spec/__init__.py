"""The drill spec: the user's interface, validated strictly, in one place (docs/architecture.md §4).

Unknown keys are errors, every error names its field path (``fault.abort.percent``), and durations are strings
such as ``250ms``, ``30s`` or ``2m``. ``parse_spec`` is the single entry point of validation: the planner and
every other step only read a validated ``DrillSpec``.
"""

from livefire.spec.approval import MAX_APPROVAL_S, Approval
from livefire.spec.assurance import Posture, PostureItem, SteadyState
from livefire.spec.aws import Alarm, AlarmRef, AwsRegion, EksCluster, resolve_alarm
from livefire.spec.base import Slug, SpecModel
from livefire.spec.document import parse_spec
from livefire.spec.drill import DrillSpec
from livefire.spec.durations import MAX_STEP_WAIT_S, Duration, PositiveDuration, format_duration, parse_duration
from livefire.spec.faults import (
    DEFAULT_SQUEEZE,
    KIND_TARGET,
    MESH_KINDS,
    AbortFault,
    ConnectionPoolSqueeze,
    DelayFault,
    Fault,
    FaultKind,
    FaultTarget,
    FisExperiment,
    ObjectKind,
    WebhookCall,
    WebhookFault,
)
from livefire.spec.reader import load_document, read_spec
from livefire.spec.sections import (
    AbortIf,
    ClusterRef,
    Expect,
    Guardrails,
    Metadata,
    Objectives,
    Pattern,
    Percent,
    Phases,
    Probes,
    Region,
    RegionRole,
    ServedBy,
    Vantage,
)
from livefire.spec.urls import HttpUrl

__all__ = [
    "DEFAULT_SQUEEZE", "KIND_TARGET", "MAX_APPROVAL_S", "MAX_STEP_WAIT_S", "MESH_KINDS", "AbortFault", "AbortIf",
    "Alarm", "AlarmRef", "Approval", "AwsRegion", "ClusterRef", "ConnectionPoolSqueeze", "DelayFault", "DrillSpec",
    "Duration", "EksCluster", "Expect", "Fault", "FaultKind", "FaultTarget", "FisExperiment", "Guardrails", "HttpUrl",
    "Metadata", "ObjectKind", "Objectives", "Pattern", "Percent", "Phases", "PositiveDuration", "Posture",
    "PostureItem", "Probes", "Region", "RegionRole", "ServedBy", "Slug", "SpecModel", "SteadyState", "Vantage",
    "WebhookCall", "WebhookFault", "format_duration", "load_document", "parse_duration", "parse_spec", "read_spec",
    "resolve_alarm",
]
