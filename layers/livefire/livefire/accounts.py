"""Cross-account drills: a region's EKS cluster, and the marker tables, AMP workspace and CloudWatch alarms in that
region, may live in another account, reached through a role there that the spec names
(``regions[].cluster.assumeRole``) and the deployment trusts (template parameter TrustedRoleArns,
``TRUSTED_ROLE_ARNS``). target-account.yaml creates that role with what the functions need there
(docs/campaigns.md "Cross-account drills"). Plan refuses a role the deployment does not list, naming the field.
``role_for`` is the one place that says which role a resource in a region is reached through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from livefire.errors import GuardrailViolation, MeshAccessError
from livefire.spec import DrillSpec

TRUSTED_ROLES_ENV = "TRUSTED_ROLE_ARNS"
SESSION_NAME = "livefire"
# Assumed credentials last an hour; they are renewed this long before they end.
RENEW_BEFORE_S = 300.0

_sessions: dict[str, tuple[float, boto3.Session]] = {}
_lock = threading.Lock()


def check_assumed_roles(spec: DrillSpec, trusted: Sequence[str]) -> None:
    """GuardrailViolation naming the first region whose cluster names a role the deployment does not trust."""
    for index, region in enumerate(spec.regions):
        role = region.cluster.assume_role if region.cluster is not None else None
        if role is not None and role not in trusted:
            raise GuardrailViolation(
                f"regions.{index}.cluster.assumeRole: {role} is not one of this deployment's trusted roles "
                f"{list(trusted)} (template parameter TrustedRoleArns)")


def role_for(spec: DrillSpec, region: str | None) -> str | None:
    """The role a resource in ``region`` (an AWS region code) is reached through: the ``cluster.assumeRole`` of the
    spec region of that name; None (the function's own credentials) for a region the spec does not list or whose
    cluster names no role."""
    for each in spec.regions:
        if each.name == region and each.cluster is not None:
            return each.cluster.assume_role
    return None


def session_for(role_arn: str | None) -> boto3.Session:
    """The function's own session, or one with the role's credentials (assumed once, renewed before they end)."""
    if role_arn is None:
        return boto3.Session()
    with _lock:
        held = _sessions.get(role_arn)
        if held is not None and held[0] - RENEW_BEFORE_S > time.time():
            return held[1]
        try:
            credentials: dict[str, Any] = boto3.client("sts").assume_role(
                RoleArn=role_arn, RoleSessionName=SESSION_NAME)["Credentials"]
        except Exception as exc:  # botocore's errors and a refused role alike: the cluster cannot be reached
            raise MeshAccessError(f"cannot assume {role_arn}: {exc}") from None
        session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                                aws_secret_access_key=credentials["SecretAccessKey"],
                                aws_session_token=credentials["SessionToken"])
        _sessions[role_arn] = (credentials["Expiration"].timestamp(), session)
        return session


def client_in(service: str, region: str, role_arn: str | None, config: Config | None = None) -> Any:
    """A boto3 client of ``service`` in ``region`` with the role's credentials (None: the function's own), kept for
    the life of the container and made again once the role's credentials are renewed."""
    return _client(session_for(role_arn) if role_arn is not None else None, service, region, config)


@lru_cache(maxsize=64)  # a role's renewed session makes a new client; the old one ages out
def _client(session: boto3.Session | None, service: str, region: str, config: Config | None) -> Any:
    if session is None:
        return boto3.client(service, region_name=region, config=config)
    return session.client(service, region_name=region, config=config)
