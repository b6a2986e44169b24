"""EKS bearer tokens: a presigned STS GetCallerIdentity URL that names the cluster in a signed header."""

from __future__ import annotations

import base64
from typing import Any

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
_PARAM = "livefire_cluster_name"


def _keep_cluster_name(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if _PARAM in params:
        context[_PARAM] = params.pop(_PARAM)


def _sign_cluster_header(request: Any, **_: Any) -> None:
    name = request.context.get(_PARAM)
    if name:
        request.headers[CLUSTER_HEADER] = name


def eks_token(cluster_name: str, sts_client: Any) -> str:
    """A token for the cluster's API server, valid about 15 minutes (refresh it before 14)."""
    events = sts_client.meta.events
    events.register_first(
        "provide-client-params.sts.GetCallerIdentity", _keep_cluster_name, unique_id="livefire-eks-params"
    )
    events.register_first(
        "before-sign.sts.GetCallerIdentity", _sign_cluster_header, unique_id="livefire-eks-sign"
    )
    url = sts_client.generate_presigned_url(
        "get_caller_identity",
        Params={_PARAM: cluster_name},
        ExpiresIn=60,
        HttpMethod="GET",
    )
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    return TOKEN_PREFIX + encoded
