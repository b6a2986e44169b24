"""Cross-account clusters (livefire/accounts.py): the spec names the role a region's EKS cluster is reached through,
Plan refuses one the deployment does not trust in one line naming the field, and the role's credentials are assumed
once and renewed before they end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from livefire import accounts
from livefire.errors import GuardrailViolation, InvalidDrillSpec
from livefire.spec import DrillSpec, parse_spec
from tests.conftest import sandbox_spec_document

ROLE = "arn:aws:iam::210987654321:role/livefire-target"


def eks_spec(**cluster: Any) -> DrillSpec:
    document = sandbox_spec_document()
    document["regions"][1]["cluster"] = {"eks": "payments-usw2", "region": "us-west-2", **cluster}
    return parse_spec(document)


def test_a_cluster_behind_a_role_the_deployment_does_not_trust_is_refused_naming_the_field() -> None:
    spec = eks_spec(assumeRole=ROLE)

    with pytest.raises(GuardrailViolation) as refused:
        accounts.check_assumed_roles(spec, ["arn:aws:iam::111122223333:role/other"])

    assert str(refused.value).startswith(f"regions.1.cluster.assumeRole: {ROLE} is not one of this deployment's "
                                         "trusted roles")
    assert "TrustedRoleArns" in str(refused.value) and "\n" not in str(refused.value)


def test_a_trusted_role_and_a_cluster_of_this_account_pass() -> None:
    accounts.check_assumed_roles(eks_spec(assumeRole=ROLE), [ROLE])
    accounts.check_assumed_roles(eks_spec(), [])


@pytest.mark.parametrize(("cluster", "problem"), [
    ({"sandbox": "payments-usw2", "assumeRole": ROLE}, "assumeRole: is only valid with eks"),
    ({"eks": "payments-usw2", "region": "us-west-2", "assumeRole": "arn:aws:iam::12:user/x"}, "assumeRole"),
])
def test_a_role_is_named_only_for_an_eks_cluster_and_only_as_a_role_arn(cluster: dict[str, Any],
                                                                        problem: str) -> None:
    document = sandbox_spec_document()
    document["regions"][1]["cluster"] = cluster

    with pytest.raises(InvalidDrillSpec, match=problem):
        parse_spec(document)


class FakeSts:
    def __init__(self, lifetime: timedelta) -> None:
        self.lifetime = lifetime
        self.assumed: list[str] = []

    def assume_role(self, RoleArn: str, RoleSessionName: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        self.assumed.append(RoleArn)
        return {"Credentials": {"AccessKeyId": f"AKIA{len(self.assumed)}", "SecretAccessKey": "s",
                                "SessionToken": "t", "Expiration": datetime.now(UTC) + self.lifetime}}


@pytest.mark.parametrize(("lifetime", "assumed"), [(timedelta(hours=1), 1), (timedelta(minutes=4), 2)])
def test_the_role_is_assumed_once_and_again_only_when_its_credentials_near_their_end(
        monkeypatch: pytest.MonkeyPatch, lifetime: timedelta, assumed: int) -> None:
    sts = FakeSts(lifetime)
    monkeypatch.setattr(accounts.boto3, "client", lambda service: sts)
    monkeypatch.setattr(accounts, "_sessions", {})

    first = accounts.session_for(ROLE)
    second = accounts.session_for(ROLE)

    assert sts.assumed == [ROLE] * assumed
    assert first.get_credentials().access_key == "AKIA1"
    assert second.get_credentials().access_key == f"AKIA{assumed}"
