"""Probing against small HTTP servers on loopback: classification, the fixed schedule, bursts, S3 chunks."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import itertools
import json
import math
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from livefire.artifacts import sample_key
from livefire.assessment import assess
from livefire.assessment.columns import SampleColumns
from livefire.contracts import Plan, ProbeRequest, ProbeTarget, Sample
from livefire.errors import GuardrailBreached
from livefire.probing.chunks import SampleChunkWriter, list_chunks, load_samples
from livefire.probing.engine import ProbeEngine, ProbeSettings
from livefire.probing.http import BODY_LIMIT, ProbeOutcome, probe_once
from livefire.probing.window import probe_window
from livefire.spec import DrillSpec, Expect, ServedBy, Vantage, parse_spec
from livefire_local.sandbox.services import RegionalService
from livefire_local.sandbox.store import ClusterStore
from tests.conftest import PROBE_ENGINE_ON_THE_WALL_CLOCK

pytestmark = PROBE_ENGINE_ON_THE_WALL_CLOCK

LOOPBACK = "127.0.0.1"
REGION_HEADERS = {"x-served-region": "us-east-1", "x-version": "v1"}


# --- a small threaded HTTP server ------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: dict(REGION_HEADERS))
    body: bytes = b"ok\n"
    delay: float = 0.0


@dataclass
class Seen:
    path: str
    host: str | None
    user_agent: str | None
    connection: str | None
    client_port: int
    at_ms: float


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A probe that timed out closed its end; that is expected here."""


class Endpoint:
    """An HTTP/1.1 server on loopback answering every GET with ``respond(seen)``; records what it saw."""

    def __init__(self, respond: Callable[[Seen], Reply] | None = None) -> None:
        self.respond = respond or (lambda _seen: Reply())
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                seen = Seen(
                    path=self.path,
                    host=self.headers.get("Host"),
                    user_agent=self.headers.get("User-Agent"),
                    connection=self.headers.get("Connection"),
                    client_port=self.client_address[1],
                    at_ms=time.time_ns() / 1e6,
                )
                with endpoint.lock:
                    endpoint.seen.append(seen)
                    reply = endpoint.respond(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _QuietServer((LOOPBACK, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/healthz") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def __enter__(self) -> Endpoint:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _probe(url: str, *, timeout: float = 1.0, **options: Any) -> ProbeOutcome:
    return asyncio.run(_probe_async(url, timeout=timeout, **options))


async def _probe_async(
    url: str,
    *,
    timeout: float = 1.0,
    resolve: dict[str, str] | None = None,
    served_by: ServedBy | None = None,
    expect: Expect | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> ProbeOutcome:
    return await probe_once(
        url,
        timeout=timeout,
        resolve=resolve or {},
        served_by=served_by or ServedBy(),
        expect=expect or Expect(),
        ssl_context=ssl_context,
    )


async def _raw_server_probe(answer: bytes | None, **options: Any) -> ProbeOutcome:
    """Probe a server that writes ``answer`` verbatim after the request head, then closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if answer:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        return await _probe_async(f"http://{LOOPBACK}:{port}/status", **options)


def _run_engine(settings: ProbeSettings, targets: list[ProbeTarget], duration: float) -> list[Sample]:
    samples: list[Sample] = []
    asyncio.run(ProbeEngine(settings, vantage="local").run(targets, duration, samples.append))
    return sorted(samples, key=lambda s: s.sent_ms)


def _target(name: str, url: str, role: str = "region") -> ProbeTarget:
    return ProbeTarget(name=name, url=url, role=role)


# --- one probe: what an answer (or its absence) is classified as ----------------------------------------


def test_a_healthy_endpoint_gives_ok_samples_naming_the_serving_region_and_version():
    with Endpoint() as endpoint:
        settings = ProbeSettings(interval=0.05, timeout=1.0, burst_interval=0.01)
        samples = _run_engine(settings, [_target("use1", endpoint.url())], duration=0.3)

    assert len(samples) == 6
    assert {(s.ok, s.status, s.error, s.served_by, s.version) for s in samples} == {
        (True, 200, None, "us-east-1", "v1")
    }
    assert sorted(s.seq for s in samples) == list(range(6))
    assert all(s.scheduled_ms <= s.sent_ms + 0.01 and s.sent_ms <= s.ended_ms for s in samples)
    assert all(s.target == "use1" and s.vantage == "local" and not s.burst for s in samples)


def test_every_probe_opens_a_fresh_connection_and_asks_to_close_it():
    with Endpoint() as endpoint:
        settings = ProbeSettings(interval=0.04, timeout=1.0, burst_interval=0.01)
        _run_engine(settings, [_target("use1", endpoint.url("/healthz?deep=1"))], duration=0.2)

    assert len(endpoint.seen) == 5
    assert len({seen.client_port for seen in endpoint.seen}) == 5
    for seen in endpoint.seen:
        assert seen.path == "/healthz?deep=1"
        assert seen.host == f"{LOOPBACK}:{endpoint.port}"
        assert (seen.user_agent, seen.connection) == ("livefire-probe", "close")


def test_a_503_answer_is_a_failure_of_class_http_5xx_that_still_names_who_served_it():
    with Endpoint(lambda _seen: Reply(status=503)) as endpoint:
        outcome = _probe(endpoint.url())

    assert outcome == ProbeOutcome(ok=False, status=503, error="http_5xx", served_by="us-east-1", version="v1")


def test_a_closed_port_is_connect_refused():
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]  # bound, never listening: connecting is refused

        outcome = _probe(f"http://{LOOPBACK}:{port}/healthz")

    assert outcome == ProbeOutcome(ok=False, error="connect_refused")


def test_a_server_slower_than_the_timeout_is_a_timeout():
    with Endpoint(lambda _seen: Reply(delay=0.5)) as endpoint:
        outcome = _probe(endpoint.url(), timeout=0.1)

    assert outcome == ProbeOutcome(ok=False, error="timeout")


def test_a_status_outside_the_expected_ones_is_class_status():
    with Endpoint(lambda _seen: Reply(status=404)) as endpoint:
        outcome = _probe(endpoint.url())
        accepted = _probe(endpoint.url(), expect=Expect(status=[200, 404]))

    assert (outcome.ok, outcome.status, outcome.error) == (False, 404, "status")
    assert (accepted.ok, accepted.error) == (True, None)


def test_a_body_without_the_expected_text_is_class_body():
    with Endpoint(lambda _seen: Reply(body=b'{"status": "degraded"}')) as endpoint:
        missing = _probe(endpoint.url(), expect=Expect(body_contains='"status": "up"'))
        present = _probe(endpoint.url(), expect=Expect(body_contains="degraded"))

    assert (missing.ok, missing.status, missing.error) == (False, 200, "body")
    assert (present.ok, present.error) == (True, None)


def test_the_serving_region_can_come_from_a_json_field_of_a_chunked_body():
    body = json.dumps({"meta": {"region": "us-west-2"}, "status": "up"}).encode()
    chunked = b"".join(f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n" for part in (body[:10], body[10:]))
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-version: v7\r\n\r\n" + chunked + b"0\r\n\r\n"

    outcome = asyncio.run(
        _raw_server_probe(
            answer,
            served_by=ServedBy(json_field="meta.region"),
            expect=Expect(body_contains='"status": "up"'),
        )
    )

    assert outcome == ProbeOutcome(ok=True, status=200, served_by="us-west-2", version="v7")


def test_a_body_without_a_length_is_read_until_the_server_closes():
    answer = b"HTTP/1.0 200 OK\r\nX-Served-Region: eu-west-1\r\n\r\n" + b"x" * 5000 + b"ready"

    outcome = asyncio.run(_raw_server_probe(answer, expect=Expect(body_contains="ready")))

    assert (outcome.ok, outcome.served_by) == (True, "eu-west-1")


def test_only_the_first_64_kib_of_a_body_are_read():
    body = b"a" * (BODY_LIMIT - 10) + b"early-mark" + b"b" * 100_000 + b"late-mark"
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    early = asyncio.run(_raw_server_probe(answer, expect=Expect(body_contains="early-mark")))
    late = asyncio.run(_raw_server_probe(answer, expect=Expect(body_contains="late-mark")))

    assert (early.ok, early.error) == (True, None)
    assert (late.ok, late.error) == (False, "body")


def test_an_answer_that_is_not_http_is_class_protocol():
    outcome = asyncio.run(_raw_server_probe(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"))

    assert outcome == ProbeOutcome(ok=False, error="protocol")


def test_a_connection_closed_before_any_answer_is_class_reset():
    outcome = asyncio.run(_raw_server_probe(None))

    assert outcome == ProbeOutcome(ok=False, error="reset")


def test_a_body_cut_short_of_its_content_length_is_class_reset():
    outcome = asyncio.run(_raw_server_probe(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"))

    assert outcome == ProbeOutcome(ok=False, error="reset")


def test_a_name_that_does_not_resolve_is_class_dns(monkeypatch):
    async def probe() -> ProbeOutcome:
        async def no_such_name(*_args: Any, **_kwargs: Any) -> Any:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_name)
        return await _probe_async("http://nowhere.livefire.test/healthz")

    assert asyncio.run(probe()) == ProbeOutcome(ok=False, error="dns")


def test_the_resolve_map_sends_the_probe_to_another_address_but_keeps_the_host_name():
    with Endpoint() as endpoint:
        url = f"http://payments.livefire.test:{endpoint.port}/healthz"
        outcome = _probe(url, resolve={f"payments.livefire.test:{endpoint.port}": f"{LOOPBACK}:{endpoint.port}"})

    assert outcome.ok
    assert endpoint.seen[0].host == f"payments.livefire.test:{endpoint.port}"


# --- HTTPS ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``probe.livefire.test``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "probe.livefire.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("probe.livefire.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


async def _https_probe(certificate: tuple[Path, Path], client_context: ssl.SSLContext | None) -> ProbeOutcome:
    cert_file, key_file = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-served-region: us-east-1\r\n\r\nok")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        return await _probe_async(
            f"https://probe.livefire.test:{port}/healthz",
            resolve={f"probe.livefire.test:{port}": f"{LOOPBACK}:{port}"},
            ssl_context=client_context,
        )


def test_https_is_verified_against_the_host_name_of_the_url(certificate):
    trusting = ssl.create_default_context(cafile=str(certificate[0]))

    outcome = asyncio.run(_https_probe(certificate, trusting))

    assert outcome == ProbeOutcome(ok=True, status=200, served_by="us-east-1")


def test_a_certificate_the_default_context_does_not_trust_is_class_tls(certificate):
    outcome = asyncio.run(_https_probe(certificate, None))

    assert outcome == ProbeOutcome(ok=False, error="tls")


# --- the fixed schedule and the bursts ---------------------------------------------------------------------


def test_a_target_answering_after_three_intervals_does_not_delay_any_send():
    interval = 0.05
    with Endpoint() as fast, Endpoint(lambda _seen: Reply(delay=3 * interval)) as slow:
        settings = ProbeSettings(interval=interval, timeout=1.0, burst_interval=0.01)
        samples = _run_engine(settings, [_target("fast", fast.url()), _target("slow", slow.url())], duration=1.0)

    fast_sends = [s for s in samples if s.target == "fast" and not s.burst]
    slow_sends = sorted((s for s in samples if s.target == "slow" and not s.burst), key=lambda s: s.seq)
    assert abs(len(fast_sends) - len(slow_sends)) <= 1
    assert abs(len(slow_sends) - 20) <= 1
    assert all(s.ok for s in samples)
    overlapped = [b for a, b in itertools.pairwise(slow_sends) if b.sent_ms < a.ended_ms]
    assert len(overlapped) >= len(slow_sends) - 2  # each slow send went out while the one before was open


class _Failover:
    """Healthy in us-east-1; from ``fail_from_ms`` the next ``failures`` requests get 503, then us-west-2.

    Like an outlier detector ejecting a host after consecutive 5xx errors: the flip happens between the
    arrival of the last failing request and the arrival of the first successful one.
    """

    def __init__(self, fail_from_ms: float, failures: int) -> None:
        self.fail_from_ms = fail_from_ms
        self.failures = failures
        self.failed = 0
        self.last_failure_ms: float | None = None
        self.first_success_ms: float | None = None

    def __call__(self, seen: Seen) -> Reply:
        if seen.at_ms < self.fail_from_ms:
            return Reply()
        if self.failed < self.failures:
            self.failed += 1
            self.last_failure_ms = seen.at_ms
            return Reply(status=503, headers={})
        if self.first_success_ms is None:
            self.first_success_ms = seen.at_ms
        return Reply(headers={"x-served-region": "us-west-2", "x-version": "v1"})


def test_a_failover_is_bracketed_by_burst_probes_within_the_burst_interval():
    burst_interval = 0.01
    failover = _Failover(fail_from_ms=time.time_ns() / 1e6 + 400, failures=4)
    with Endpoint(failover) as endpoint:
        settings = ProbeSettings(interval=0.25, timeout=1.0, burst_interval=burst_interval)
        samples = _run_engine(settings, [_target("entrypoint", endpoint.url(), "entrypoint")], duration=1.5)

    assert failover.last_failure_ms is not None and failover.first_success_ms is not None
    last_failure_index = max(i for i, s in enumerate(samples) if not s.ok)
    last_failure, first_success = samples[last_failure_index], samples[last_failure_index + 1]
    assert first_success.ok and first_success.served_by == "us-west-2"
    assert last_failure.burst and first_success.burst
    # The flip lies between the two probes: sent before the last failure arrived, ended after the first success.
    assert last_failure.sent_ms <= failover.last_failure_ms + 2
    assert first_success.ended_ms >= failover.first_success_ms - 2
    assert 0 < first_success.sent_ms - last_failure.sent_ms <= burst_interval * 1000 + 10
    assert samples[0].served_by == "us-east-1" and samples[-1].served_by == "us-west-2"
    assert len(samples) <= settings.max_sends(1.5)  # the standby is watched, within the stated bound


# Outage lengths that are multiples of neither the 100 ms interval nor the 10 ms burst interval, two trials
# each, every trial on its own regional service and all probed by one engine run (as a drill probes targets).
OUTAGES_S = (0.237, 0.655, 1.513)
TRIALS = 2
OUTAGE_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "payments-v1", "namespace": "payments", "labels": {"app": "payments", "version": "v1"}},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "payments"}},
             "template": {"metadata": {"labels": {"app": "payments", "version": "v1"}}}},
}


def _recovery_spec(url: str) -> DrillSpec:
    """A spec whose entrypoint is ``url``, served by region us-west-2 while the fault is on us-east-1."""
    return parse_spec({
        "apiVersion": "livefire/v1", "kind": "Drill", "metadata": {"name": "bracket", "service": "payments"},
        "pattern": "active-passive",
        "regions": [
            {"name": "us-east-1", "role": "primary", "cluster": {"sandbox": "a"}, "endpoint": "http://use1.test/"},
            {"name": "us-west-2", "role": "standby", "cluster": {"sandbox": "b"}, "endpoint": "http://usw2.test/"},
        ],
        "entrypoint": url,
        "fault": {"kind": "http-abort", "region": "us-east-1", "abort": {},
                  "target": {"namespace": "payments", "virtualService": "payments"}},
        "phases": {"fault": "1s", "recovery": "1s"},
        "probes": {"interval": "100ms", "burstInterval": "10ms", "sustain": "500ms"},
        "guardrails": {"allowedNamespaces": ["payments"]},
    })


def _recovery_plan(spec: DrillSpec, name: str) -> Plan:
    return Plan(
        drill_id="bracket", execution_arn="arn:aws:states:us-east-1:123456789012:execution:drill:bracket",
        service="payments", pattern=spec.pattern, mode="live", spec_key="k", spec_digest=spec.digest(),
        evidence_prefix="drills/payments/bracket/", started_at_ms=0,
        vantages=[Vantage(name="local", region="us-east-1")],
        targets=[ProbeTarget(name=name, url=spec.entrypoint, role="entrypoint")], faults=[],
        baseline_seconds=1.0, observe_seconds=2.0, lead_wait_seconds=0, fault_wait_seconds=1,
    )


def test_a_scripted_recovery_lies_inside_the_reported_bracket_at_no_more_than_twice_the_base_load():
    settings = ProbeSettings(interval=0.1, timeout=1.0, burst_interval=0.01)
    trials = [(length, trial) for trial in range(TRIALS) for length in OUTAGES_S]
    # One outage at a time (each on its own service), so one target at a time is watched, as in a drill.
    starts = [0.8 + sum(length + 0.25 for length, _ in trials[:index]) for index in range(len(trials))]
    window_s = starts[-1] + trials[-1][0] + 0.7
    services = []
    for index, _ in enumerate(trials):
        store = ClusterStore(f"bracket-{index}")
        store.seed([OUTAGE_DEPLOYMENT])
        services.append(RegionalService("us-west-2", store, "payments"))
    urls = [f"{service.start()}/healthz" for service in services]
    try:
        wall_ms, mono = time.time_ns() / 1e6, time.monotonic()
        outages = [
            service.script_outage(start, length)
            for service, start, (length, _) in zip(services, starts, trials, strict=True)
        ]
        targets = [_target(f"t{i}", url, "entrypoint") for i, url in enumerate(urls)]
        samples = _run_engine(settings, targets, duration=window_s)
    finally:
        for service in services:
            service.stop()

    for index, (outage, (length, trial)) in enumerate(zip(outages, trials, strict=True)):
        name = f"t{index}"
        mine = [s for s in samples if s.target == name]
        spec = _recovery_spec(urls[index])
        start_ms = wall_ms + (outage.start - mono) * 1000.0
        end_ms = wall_ms + (outage.end - mono) * 1000.0  # the true recovery instant
        result = assess(spec, _recovery_plan(spec, name), SampleColumns.of(mine), injected_at_ms=start_ms,
                        restored_at_ms=None, sample_keys=[])
        bracket = result.rto_bracket
        where = f"outage {length} s, trial {trial}"
        assert bracket is not None and bracket.width_ms is not None, where
        assert bracket.contains(end_ms), (where, bracket, end_ms)
        assert bracket.width_ms <= 10.0 + 10.0, (where, bracket.width_ms)
        # Load: within the stated bound, and what the outage costs is about its length in burst intervals.
        base = [s for s in mine if not s.burst]
        assert len(base) == math.ceil((window_s - index * settings.interval / len(trials)) / settings.interval)
        assert len(mine) <= settings.max_sends(window_s)
        assert len(mine) - len(base) <= length / settings.burst_interval + settings.burst_hold + 5, where
        assert len(mine) / window_s <= 2 / settings.interval + settings.burst_capacity / window_s


# --- sample chunks in S3 ---------------------------------------------------------------------------------


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


def _bucket(s3: Any) -> str:
    name = f"livefire-probing-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _samples(count: int, target: str = "entrypoint") -> list[Sample]:
    base = 1_764_000_000_123.4567
    return [
        Sample(
            target=target,
            vantage="vantage-a",
            seq=i,
            scheduled_ms=base + i * 100.0,
            sent_ms=base + i * 100.0 + 0.0123,
            ended_ms=base + i * 100.0 + 3.3333333,
            ok=i % 3 != 0,
            status=200 if i % 3 else None,
            error=None if i % 3 else "timeout",
            latency_ms=3.3210333,
            served_by="us-east-1" if i % 3 else None,
            version="v1" if i % 3 else None,
            burst=i % 2 == 0,
        )
        for i in range(count)
    ]


def test_the_chunk_writer_writes_gzipped_json_lines_that_load_back_identically(s3):
    bucket = _bucket(s3)
    prefix = f"drills/payments/{uuid.uuid4().hex}/"
    samples = _samples(12)
    writer = SampleChunkWriter(s3, bucket, prefix, "vantage-a", "drill", max_samples=5)

    for sample in samples:
        writer.add(sample)
    keys = writer.close()

    assert keys == [sample_key(prefix, "vantage-a", "drill", chunk) for chunk in range(3)]
    lines_per_chunk = []
    for key in keys:
        head = s3.head_object(Bucket=bucket, Key=key)
        assert (head["ContentType"], head["ContentEncoding"]) == ("application/x-ndjson", "gzip")
        raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        lines = gzip.decompress(raw).decode().splitlines()
        assert all(json.loads(line)["vantage"] == "vantage-a" for line in lines)
        lines_per_chunk.append(len(lines))
    assert lines_per_chunk == [5, 5, 2]
    assert load_samples(s3, bucket, keys) == samples


def test_a_chunk_is_written_once_it_is_old_even_if_it_is_not_full(s3):
    bucket = _bucket(s3)
    writer = SampleChunkWriter(s3, bucket, "drills/x/y/", "vantage-a", "baseline", max_age_s=0.0)

    for sample in _samples(3):
        writer.add(sample)
    keys = writer.close()

    assert len(keys) == 3
    assert [len(load_samples(s3, bucket, [key])) for key in keys] == [1, 1, 1]


def test_a_chunk_that_cannot_be_written_fails_the_close(s3):
    writer = SampleChunkWriter(s3, f"no-such-bucket-{uuid.uuid4().hex[:8]}", "p/", "v", "drill")
    writer.add(_samples(1)[0])

    with pytest.raises(Exception, match="NoSuchBucket"):
        writer.close()


# --- probe_window, end to end under moto -----------------------------------------------------------------


def _spec(entrypoint: str, use1: str, usw2: str, *, abort_if: dict[str, Any] | None = None) -> DrillSpec:
    guardrails: dict[str, Any] = {"allowedNamespaces": ["payments"]}
    if abort_if is not None:
        guardrails["abortIf"] = abort_if
    return parse_spec(
        {
            "apiVersion": "livefire/v1",
            "kind": "Drill",
            "metadata": {"name": "probe-window", "service": "payments"},
            "pattern": "active-passive",
            "regions": [
                {"name": "us-east-1", "role": "primary", "cluster": {"sandbox": "use1"}, "endpoint": use1},
                {"name": "us-west-2", "role": "standby", "cluster": {"sandbox": "usw2"}, "endpoint": usw2},
            ],
            "entrypoint": entrypoint,
            "servedBy": {"header": "x-served-region", "versionHeader": "x-version"},
            "fault": {
                "kind": "http-abort",
                "region": "us-east-1",
                "target": {"namespace": "payments", "virtualService": "payments"},
                "abort": {"httpStatus": 503, "percent": 100},
            },
            "phases": {"baseline": "1s", "lead": "1s", "fault": "10s", "recovery": "10s"},
            "probes": {"interval": "50ms", "timeout": "500ms", "burstInterval": "10ms"},
            "guardrails": guardrails,
        }
    )


def _request(spec: DrillSpec, window: str, *, baseline: float, observe: float) -> ProbeRequest:
    drill_id = f"drill-{uuid.uuid4().hex[:10]}"
    prefix = f"drills/payments/{drill_id}/"
    targets = [_target("entrypoint", spec.entrypoint, "entrypoint")]
    targets += [ProbeTarget(name=r.name, url=r.endpoint, region=r.name, role=r.role) for r in spec.regions]
    vantage = Vantage(name="local", region="us-east-1")
    plan = Plan(
        drill_id=drill_id,
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:livefire:{drill_id}",
        service="payments",
        pattern="active-passive",
        mode="live",
        spec_key=f"{prefix}spec.json",
        spec_digest=spec.digest(),
        evidence_prefix=prefix,
        started_at_ms=time.time_ns() // 1_000_000,
        vantages=[vantage],
        targets=targets,
        faults=[],
        baseline_seconds=baseline,
        observe_seconds=observe,
        lead_wait_seconds=1,
        fault_wait_seconds=10,
    )
    return ProbeRequest.model_validate({"plan": plan.to_state(), "vantage": vantage, "window": window})


def _resolving(monkeypatch: pytest.MonkeyPatch, endpoints: dict[str, Endpoint]) -> dict[str, str]:
    """Give each endpoint a host name, resolved to its loopback port through LIVEFIRE_RESOLVE."""
    urls = {name: f"http://{name}.payments.test:{ep.port}/healthz" for name, ep in endpoints.items()}
    mapping = {f"{name}.payments.test:{ep.port}": f"{LOOPBACK}:{ep.port}" for name, ep in endpoints.items()}
    monkeypatch.setenv("LIVEFIRE_RESOLVE", json.dumps(mapping))
    return urls


def test_a_baseline_window_streams_every_sample_to_s3_and_summarises_them(s3, monkeypatch):
    bucket = _bucket(s3)
    with Endpoint() as entry, Endpoint() as use1, Endpoint() as usw2:
        urls = _resolving(monkeypatch, {"entry": entry, "use1": use1, "usw2": usw2})
        spec = _spec(urls["entry"], urls["use1"], urls["usw2"])
        request = _request(spec, "baseline", baseline=0.5, observe=20.0)

        summary = probe_window(request, spec, s3_client=s3, bucket=bucket)

    assert (summary.vantage, summary.window) == ("local", "baseline")
    assert summary.started_at_ms <= summary.ended_at_ms
    keys = list_chunks(s3, bucket, summary.sample_prefix)
    samples = load_samples(s3, bucket, keys)
    assert keys[0] == sample_key(request.plan.evidence_prefix, "local", "baseline", 0)
    assert summary.sample_chunks == len(keys)
    by_target = {t.target: t for t in summary.targets}
    assert set(by_target) == {"entrypoint", "us-east-1", "us-west-2"}
    for name, counts in by_target.items():
        mine = [s for s in samples if s.target == name]
        assert (counts.sent, counts.succeeded, counts.failed) == (len(mine), len(mine), 0)
        assert len(mine) == 10
    assert entry.seen[0].host == f"entry.payments.test:{entry.port}"


def test_a_breached_guardrail_stops_the_drill_window_after_writing_its_samples(s3, monkeypatch):
    bucket = _bucket(s3)
    with Endpoint(lambda _seen: Reply(status=503, headers={})) as entry, Endpoint() as use1, Endpoint() as usw2:
        urls = _resolving(monkeypatch, {"entry": entry, "use1": use1, "usw2": usw2})
        spec = _spec(urls["entry"], urls["use1"], urls["usw2"], abort_if={"errorRateOver": 50, "for": "300ms"})
        request = _request(spec, "drill", baseline=1.0, observe=20.0)

        with pytest.raises(GuardrailBreached) as breach:
            probe_window(request, spec, s3_client=s3, bucket=bucket)

    message = str(breach.value)
    assert "error rate of entrypoint was 100.0%" in message and "300ms" in message and "50%" in message
    prefix = f"{request.plan.evidence_prefix}samples/local/"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    keys = sorted(item["Key"] for item in listed)
    assert keys and all(key.startswith(f"{prefix}drill-") for key in keys)
    samples = load_samples(s3, bucket, keys)
    entry_samples = [s for s in samples if s.target == "entrypoint" and not s.burst]
    assert 7 <= len(entry_samples) < 100  # stopped long before the 20 s window (400 sends) ended
    # every probe failed; on a busy machine a 503 may come back after the probe's timeout, so the class may differ
    assert not any(s.ok for s in entry_samples) and any(s.error == "http_5xx" for s in entry_samples)
    assert len(entry.seen) >= len(entry_samples)


def test_the_guardrail_does_not_watch_the_baseline_window(s3, monkeypatch):
    bucket = _bucket(s3)
    with Endpoint(lambda _seen: Reply(status=503, headers={})) as entry, Endpoint() as use1, Endpoint() as usw2:
        urls = _resolving(monkeypatch, {"entry": entry, "use1": use1, "usw2": usw2})
        spec = _spec(urls["entry"], urls["use1"], urls["usw2"], abort_if={"errorRateOver": 50, "for": "100ms"})
        request = _request(spec, "baseline", baseline=0.5, observe=20.0)

        summary = probe_window(request, spec, s3_client=s3, bucket=bucket)

    entrypoint = next(t for t in summary.targets if t.target == "entrypoint")
    assert entrypoint.failed == entrypoint.sent
    samples = load_samples(s3, bucket, list_chunks(s3, bucket, summary.sample_prefix))
    assert len([s for s in samples if s.target == "entrypoint" and not s.burst]) == 10  # the whole window
