"""EKS bearer tokens and the EKS mode of api_client_for, with moto and botocore only."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.eks.models import eks_backends

from livefire.errors import MeshAccessError
from livefire.mesh import kube
from livefire.mesh.eks import eks_token
from livefire.spec import ClusterRef

REGION = "us-east-1"
FAKE_PEM = "-----BEGIN CERTIFICATE-----\nMIIBdGVzdA==\n-----END CERTIFICATE-----\n"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    with mock_aws():
        yield


def _decoded(token: str) -> str:
    body = token.removeprefix("k8s-aws-v1.")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def _eks_cluster(ca_data: str | None, region: str = REGION) -> str:
    name = f"payments-{uuid.uuid4().hex[:8]}"
    boto3.client("eks", region_name=region).create_cluster(
        name=name, roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/eks", resourcesVpcConfig={"subnetIds": []}
    )
    if ca_data is not None:
        eks_backends[DEFAULT_ACCOUNT_ID][region].clusters[name].certificate_authority = {"data": ca_data}
    return name


def test_the_token_is_a_prefixed_unpadded_urlsafe_presigned_get_caller_identity_url(aws: None) -> None:
    sts = boto3.client("sts", region_name=REGION)

    token = eks_token("payments-use1", sts)

    assert token.startswith("k8s-aws-v1.")
    body = token.removeprefix("k8s-aws-v1.")
    assert "=" not in body and "+" not in body and "/" not in body
    url = urlsplit(_decoded(token))
    query = parse_qs(url.query)
    assert url.scheme == "https" and url.hostname == f"sts.{REGION}.amazonaws.com"
    assert query["Action"] == ["GetCallerIdentity"]
    assert query["X-Amz-Expires"] == ["60"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")
    assert "livefire_cluster_name" not in url.query


def test_the_cluster_name_hook_leaves_ordinary_sts_calls_working(aws: None) -> None:
    sts = boto3.client("sts", region_name=REGION)
    eks_token("payments-use1", sts)
    eks_token("payments-use1", sts)

    identity = sts.get_caller_identity()

    assert identity["Account"] == DEFAULT_ACCOUNT_ID


def test_an_eks_cluster_client_uses_the_described_endpoint_ca_and_a_bearer_token(aws: None) -> None:
    name = _eks_cluster(base64.b64encode(FAKE_PEM.encode()).decode())
    endpoint = boto3.client("eks", region_name=REGION).describe_cluster(name=name)["cluster"]["endpoint"]

    client = kube.api_client_for(ClusterRef(eks=name, region=REGION))

    config = client.configuration
    assert config.host == endpoint
    assert config.ca_cert_data == FAKE_PEM
    assert config.ssl_ca_cert is None
    header = config.auth_settings()["BearerToken"]["value"]
    assert header is not None and header.startswith("Bearer k8s-aws-v1.")
    assert kube.api_client_for(ClusterRef(eks=name, region=REGION)) is client
    config.debug = True
    assert config.debug is False


def test_the_eks_token_is_refreshed_before_it_expires(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    issued: list[str] = []

    def counting_token(cluster_name: str, sts_client: object) -> str:
        issued.append(cluster_name)
        return eks_token(cluster_name, sts_client)

    monkeypatch.setattr(kube.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(kube, "eks_token", counting_token)
    name = _eks_cluster(base64.b64encode(FAKE_PEM.encode()).decode())
    config = kube.api_client_for(ClusterRef(eks=name, region=REGION)).configuration

    now[0] += kube.TOKEN_REFRESH_SECONDS - 1
    config.auth_settings()
    before_deadline = len(issued)
    now[0] += 2
    header = config.auth_settings()["BearerToken"]["value"]

    assert kube.TOKEN_REFRESH_SECONDS < 14 * 60
    assert (before_deadline, len(issued)) == (1, 2)
    assert header is not None and header.startswith("Bearer k8s-aws-v1.")


def test_a_cluster_that_cannot_be_described_is_a_mesh_access_error(aws: None) -> None:
    with pytest.raises(MeshAccessError, match="no-such-cluster"):
        kube.api_client_for(ClusterRef(eks="no-such-cluster", region=REGION))


def test_a_cluster_named_by_its_arn_is_described_in_the_arns_region_whatever_the_default(aws: None) -> None:
    name = _eks_cluster(base64.b64encode(FAKE_PEM.encode()).decode(), region="eu-west-1")
    arn = f"arn:aws:eks:eu-west-1:{DEFAULT_ACCOUNT_ID}:cluster/{name}"
    endpoint = boto3.client("eks", region_name="eu-west-1").describe_cluster(name=name)["cluster"]["endpoint"]

    client = kube.api_client_for(ClusterRef(eks=arn))

    assert client.configuration.host == endpoint
    with pytest.raises(MeshAccessError, match=f"us-east-1/{name}"):  # not in the default region's cluster list
        kube.api_client_for(ClusterRef(eks=name, region=REGION))


def test_a_cluster_arn_of_another_account_never_reaches_this_accounts_cluster_of_the_same_name(aws: None) -> None:
    name = _eks_cluster(base64.b64encode(FAKE_PEM.encode()).decode())
    other = f"arn:aws:eks:{REGION}:210987654321:cluster/{name}"

    with pytest.raises(MeshAccessError, match="not the cluster the spec names"):
        kube.api_client_for(ClusterRef(eks=other))
