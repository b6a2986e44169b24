"""Egress rules: which addresses a target may resolve to, and where a webhook secret may be sent.

Validation only: names resolve through a table, and no test sends anything to the addresses it refuses.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator

import pytest

from livefire.config import Settings
from livefire.egress import (
    LOCAL_RANGES,
    RANGES_ENV,
    EgressPolicy,
    EgressRefused,
    SecretBox,
    check_targets,
    current_policy,
    parse_ranges,
    url_within,
)
from livefire.errors import GuardrailViolation
from livefire.planning import check_egress
from livefire.probing.http import EGRESS, probe_once
from livefire.spec import Expect, ServedBy, parse_spec
from livefire_local.template import LocalTemplate
from tests.conftest import ROOT, sandbox_spec_document

AWS = EgressPolicy.from_ranges("")  # the template's default: global addresses only
# What the names of these tests resolve to (no DNS is asked).
TABLE = {
    "metadata.example": ["169.254.169.254"],
    "loop.example": ["127.0.0.1"],
    "imds6.example": ["fd00:ec2::254"],
    "vpc.example": ["10.0.0.1"],
    "mixed.example": ["93.184.215.14", "10.0.0.1"],
    "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
}
REFUSED = ["169.254.169.254", "127.0.0.1", "[fd00:ec2::254]", "10.0.0.1"]


def table(host: str, port: int) -> list[str]:
    if host not in TABLE:
        raise socket.gaierror(socket.EAI_NONAME, "no such name")
    return TABLE[host]


@pytest.mark.parametrize("host", REFUSED)
def test_a_target_at_a_metadata_loopback_or_private_address_is_refused_on_aws(host: str) -> None:
    with pytest.raises(EgressRefused, match=r"^entrypoint: .* is a (link-local|loopback|private) address"):
        check_targets([("entrypoint", f"https://{host}/healthz")], AWS, resolve=table)


@pytest.mark.parametrize("name", ["metadata.example", "loop.example", "imds6.example", "vpc.example"])
def test_a_name_resolving_to_a_refused_address_is_refused_on_aws(name: str) -> None:
    with pytest.raises(EgressRefused, match=rf"^regions\.0\.endpoint: {name}: "):
        check_targets([("regions.0.endpoint", f"https://{name}/healthz")], AWS, resolve=table)


def test_a_name_with_one_refused_address_among_public_ones_is_refused() -> None:
    with pytest.raises(EgressRefused, match=r"10\.0\.0\.1 is a private address"):
        check_targets([("entrypoint", "https://mixed.example/")], AWS, resolve=table)


def test_public_addresses_and_names_that_do_not_resolve_yet_pass_validation() -> None:
    check_targets([("a", "https://public.example/"), ("b", "https://93.184.215.14/"),
                   ("c", "https://not-yet.example/")], AWS, resolve=table)


@pytest.mark.parametrize("address", ["::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe", "0.0.0.0", "100.64.0.1", "::1",
                                     "fe80::1", "224.0.0.1", "2002:7f00:1::"])
def test_addresses_hiding_a_refused_one_are_refused_too(address: str) -> None:
    assert AWS.refusal(address) is not None


def test_a_deployment_may_allow_the_ranges_it_names() -> None:
    policy = EgressPolicy.from_ranges("10.1.0.0/16,loopback")

    assert policy.refusal("10.1.2.3") is None and policy.refusal("127.0.0.1") is None
    assert policy.refusal("::ffff:127.0.0.1") is None
    assert policy.refusal("10.2.0.1") is not None and policy.refusal("169.254.169.254") is not None


def test_local_mode_allows_loopback_and_private_but_not_link_local() -> None:
    local = EgressPolicy.from_ranges(LOCAL_RANGES)

    assert local.refusal("127.0.0.1") is None and local.refusal("10.0.0.1") is None
    assert local.refusal("fd00:ec2::254") is None
    assert local.refusal("169.254.169.254") is not None


def test_a_range_list_with_a_typo_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'privat' is neither a CIDR nor one of loopback, link-local, private"):
        parse_ranges("loopback,privat")


def test_on_lambda_an_unset_setting_allows_global_addresses_only() -> None:
    on_lambda = current_policy({"AWS_LAMBDA_FUNCTION_NAME": "livefire-probe"})

    assert on_lambda.refusal("127.0.0.1") is not None
    assert current_policy({}).unrestricted  # the library outside Lambda, as the component tests use it
    assert current_policy({RANGES_ENV: ""}).refusal("10.0.0.1") is not None


# ---------------------------------------------------------------- the Plan step refuses, on AWS settings


def test_plan_refuses_a_spec_whose_endpoint_resolves_to_the_instance_metadata_address() -> None:
    document = sandbox_spec_document()
    document["regions"][1]["endpoint"] = "http://169.254.169.254/latest/meta-data/"
    spec = parse_spec(document)
    aws = Settings(bucket="b", table="t", event_bus="default", allowed_namespaces=("payments",),
                   allowed_clusters=())

    with pytest.raises(GuardrailViolation, match=r"^regions\.1\.endpoint: 169\.254\.169\.254: .*link-local"):
        check_egress(spec, aws)


# ---------------------------------------------------------------- the probe checks the address it connects to


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, list[int]]]:
    """A loopback socket that counts the connections it accepted (none may arrive)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    accepted: list[int] = []
    yield server, accepted
    server.close()


def test_a_probe_never_connects_to_a_refused_address(listener: tuple[socket.socket, list[int]],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = listener
    port = server.getsockname()[1]
    monkeypatch.setenv(RANGES_ENV, "")

    outcome = asyncio.run(probe_once(f"http://127.0.0.1:{port}/", timeout=1.0, resolve={}, served_by=ServedBy(),
                                     expect=Expect(), ssl_context=None))

    assert (outcome.ok, outcome.error) == (False, EGRESS)
    with pytest.raises(BlockingIOError):
        server.accept()  # nothing ever connected


# ---------------------------------------------------------------- a secret is bound to its URL prefixes


def box(prefixes: list[str]) -> SecretBox:
    raw = json.dumps({"headers": {"Authorization": "Bearer t0k3n"}, "query": {"sig": "q-s3cret"},
                      "urlPrefixes": prefixes})
    return SecretBox.parse("livefire/runbook", raw)


@pytest.mark.parametrize("url", ["https://hooks.example/runbooks/start", "https://hooks.example/runbooks",
                                 "https://HOOKS.example:443/runbooks/a/b"])
def test_a_secret_may_be_sent_inside_its_prefixes(url: str) -> None:
    assert box(["https://hooks.example/runbooks/"]).for_url(url).headers == {"Authorization": "Bearer t0k3n"}


@pytest.mark.parametrize("url", [
    "https://hooks.example/runbooksmith/start",  # not at a segment boundary
    "https://hooks.example.evil.example/runbooks/start",
    "https://evil.example/runbooks/start",
    "https://hooks.example:8443/runbooks/start",
    "https://hooks.example/other",
])
def test_a_secret_is_never_sent_outside_its_prefixes(url: str) -> None:
    with pytest.raises(EgressRefused, match=r"may not be sent to this URL: it is bound to https://hooks\.example/"):
        box(["https://hooks.example/runbooks"]).for_url(url)


def test_a_secret_is_never_sent_over_http_even_to_its_own_prefix_host() -> None:
    with pytest.raises(EgressRefused, match="only ever sent over https"):
        box(["https://hooks.example/runbooks"]).for_url("http://hooks.example/runbooks/start")


@pytest.mark.parametrize("raw", [
    json.dumps({"Authorization": "Bearer t0k3n"}),  # the old flat shape: bound to nothing
    json.dumps({"headers": {"Authorization": "Bearer t0k3n"}}),
    json.dumps({"headers": {}, "urlPrefixes": ["http://hooks.example/"]}),
    json.dumps({"headers": {}, "urlPrefixes": ["https://u:p@hooks.example/"]}),
    json.dumps({"headers": {"Bad Name": "x"}, "urlPrefixes": ["https://hooks.example/"]}),
    "not json",
])
def test_a_secret_not_bound_to_https_prefixes_is_refused_without_showing_its_values(raw: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        SecretBox.parse("livefire/runbook", raw)

    assert "t0k3n" not in str(refused.value) and str(refused.value).startswith("headersSecret 'livefire/runbook'")


def test_url_within_compares_origins_and_whole_path_segments() -> None:
    assert url_within("https://h.example/a/b", "https://h.example/")
    assert url_within("https://h.example/a", "https://h.example/a/")
    assert not url_within("https://h.example/ab", "https://h.example/a")
    assert not url_within("http://h.example/a", "https://h.example/a")


# ---------------------------------------------------------------- the deployment's setting


@pytest.mark.parametrize("template_file", ["template.yaml", "probe-vantage.yaml"])
def test_every_function_gets_the_deployments_ranges_public_only_by_default(template_file: str) -> None:
    template = LocalTemplate.load(ROOT, template_file=template_file)
    declared = template.document["Parameters"]["AllowedTargetRanges"]
    pattern = re.compile(declared["AllowedPattern"])

    assert declared["Default"] == ""
    assert {function.environment[RANGES_ENV] for function in template.functions()} == {""}
    assert [v for v in ("", "private", "loopback,10.1.0.0/16", "fd00::/8,link-local") if not pattern.fullmatch(v)] == []
    assert [v for v in ("privat", "loopback, private", "10.0.0.0", "loopback,") if pattern.fullmatch(v)] == []
