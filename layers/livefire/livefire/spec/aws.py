"""AWS names in a spec: region codes (wherever a region selects an AWS endpoint), EKS clusters named with their
region, and CloudWatch alarms (docs/architecture.md §4, §9).

A region that selects an AWS endpoint (an EKS cluster's, a FIS template's, an alarm's) must be an AWS region code
such as ``us-east-1``: a free-text region name of the spec (``primary``) never picks an endpoint. An EKS cluster is
``{eks: NAME, region: REGION}`` or ``{eks: ARN}``; an alarm is a name, an alarm ARN or ``{name, region}``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, NamedTuple

from pydantic import AfterValidator, Discriminator, Field, Tag

from livefire.spec.base import SpecModel

# us-east-1, eu-central-2, us-gov-west-1, cn-northwest-1, us-isob-east-1, eusc-de-east-1, ...
_REGION_CODE = re.compile(r"^[a-z]{2,4}(-[a-z]{2,10}){1,3}-[0-9]{1,2}$")
_EKS_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
_EKS_ARN = re.compile(r"^arn:aws[a-z-]*:eks:([^:]*):([0-9]{12}):cluster/([^/]+)$")
_ALARM_ARN = re.compile(r"^arn:aws[a-z-]*:cloudwatch:([^:]*):([0-9]{12}):alarm:(.+)$")
_ALARM_NAME_CHARS = 255


def check_region_code(region: str) -> str:
    if not _REGION_CODE.fullmatch(region):
        raise ValueError(f"{region[:40]!r} is not an AWS region code (such as us-east-1)")
    return region


def is_region_code(region: str) -> bool:
    return _REGION_CODE.fullmatch(region) is not None


AwsRegion = Annotated[str, AfterValidator(check_region_code)]


class EksCluster(NamedTuple):
    """An EKS cluster as the allow-lists and the API calls name it."""

    region: str
    name: str
    arn: str | None  # when the spec gave the cluster's ARN: the described cluster must have exactly this ARN

    @property
    def qualified_name(self) -> str:
        """``REGION/NAME``: how ``AllowedClusters`` and ``guardrails.allowedClusters`` name an EKS cluster."""
        return f"{self.region}/{self.name}"


def eks_cluster(eks: str, region: str | None) -> EksCluster:
    """The cluster of ``{eks: NAME, region: REGION}`` or ``{eks: ARN}``; ValueError naming the field otherwise."""
    arn = _EKS_ARN.fullmatch(eks)
    if arn is not None:
        arn_region, _account, name = arn.groups()
        if not is_region_code(arn_region):
            raise ValueError(f"eks: the ARN's region {arn_region[:40]!r} is not an AWS region code")
        if not _EKS_NAME.fullmatch(name):
            raise ValueError(f"eks: the ARN's cluster name {name[:100]!r} is not an EKS cluster name")
        if region is not None and region != arn_region:
            raise ValueError(f"region: {region} differs from the region of the cluster ARN ({arn_region})")
        return EksCluster(arn_region, name, eks)
    if eks.startswith("arn:"):
        raise ValueError("eks: not an EKS cluster ARN (arn:aws:eks:REGION:ACCOUNT:cluster/NAME)")
    if not _EKS_NAME.fullmatch(eks):
        raise ValueError(f"eks: {eks[:100]!r} is not an EKS cluster name")
    if region is None:
        raise ValueError("region: required with an EKS cluster name: the cluster's AWS region (or give its ARN)")
    return EksCluster(region, eks, None)


class AlarmRef(SpecModel):
    """A CloudWatch alarm in a given region."""

    name: Annotated[str, Field(min_length=1, max_length=_ALARM_NAME_CHARS)]
    region: AwsRegion = Field(description="the alarm's AWS region")


class Alarm(NamedTuple):
    """A guardrail alarm resolved: where to read it, and the ARN it must have when one was given."""

    region: str
    name: str
    arn: str | None


def check_alarm_name_or_arn(value: str) -> str:
    if value.startswith("arn:"):
        arn = _ALARM_ARN.fullmatch(value)
        if arn is None:
            raise ValueError("not a CloudWatch alarm ARN (arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME)")
        check_region_code(arn.group(1))
        return value
    if not value or len(value) > _ALARM_NAME_CHARS:
        raise ValueError(f"an alarm name has 1 to {_ALARM_NAME_CHARS} characters")
    return value


def _alarm_form(value: Any) -> str:
    return "alarm-ref[dict]" if isinstance(value, dict | AlarmRef) else "name-or-arn[str]"


# An alarm of guardrails.alarms: a plain name (the alarm in the region of the drill's state machine, where the
# deployment runs), an alarm ARN, or {name, region}. The union's tags are left out of error paths (spec/document).
AlarmSpec = Annotated[
    Annotated[str, AfterValidator(check_alarm_name_or_arn), Tag("name-or-arn[str]")]
    | Annotated[AlarmRef, Tag("alarm-ref[dict]")],
    Discriminator(_alarm_form),
]


def resolve_alarm(alarm: str | AlarmRef, home_region: str) -> Alarm:
    """Where an alarm of ``guardrails.alarms`` is read: a plain name in ``home_region`` (the deployment's)."""
    if isinstance(alarm, AlarmRef):
        return Alarm(alarm.region, alarm.name, None)
    arn = _ALARM_ARN.fullmatch(alarm)
    if arn is not None:
        return Alarm(arn.group(1), arn.group(3), alarm)
    return Alarm(home_region, alarm, None)
