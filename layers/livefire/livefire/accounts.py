"""Cross-account clusters: a region's EKS cluster may live in another account, reached through a role there that
the spec names (``regions[].cluster.assumeRole``) and the deployment trusts (template parameter TrustedRoleArns,
``TRUSTED_ROLE_ARNS``). target-account.yaml creates that role with what the functions need there
(docs/campaigns.md "Cross-account drills"). Plan refuses a role the deployment does not list, naming the field.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import boto3

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
