"""`livefire run` against a service of our own on loopback, outside the sandbox (no sandbox host, no sandbox
cluster): the drill contacts it for real, and its measurements agree with the service's own record.

The service (``ScriptedService``, in this test process; the drill runs in a subprocess, as a user types it) is an
entrypoint in front of two regions, with a scripted outage: from its start the primary answers 503 until it ends,
and the entrypoint answers 503 for ``FAILOVER_MS`` and is then served by the standby until the outage ends, when
the primary serves again. It records every call it receives and the instants the outage started, the entrypoint
came back (the first instant it answers 200 again) and the outage ended. Same host, same wall clock.

How the drill's instants relate to the service's:
- A webhook call's instant is its send time on an open connection; the service records its arrival, one time in
  flight later: within the issue's 20 ms (``BOUND_MS``).
- A recovery instant is the *send* time of the first probe of the sustained run of successes, but the service
  decides a probe's answer when it *arrives*. The probe before it failed, so it arrived (and was sent) before the
  service came back; with the target failing, probes go at the burst interval (5 ms): so the measured instant is
  at most ``BOUND_MS`` after the truth. It can lead the truth by the first success's own time in flight (sent
  before, served after): on a busy 2-core machine that alone can exceed 20 ms (seen: 32 ms, with a p90 probe
  latency of 50 ms), so the truth is checked to lie within that probe's flight, [sent, answered].
- An outage *start* is only noticed by a base probe (the target was healthy, nothing watched it closely): an
  observe-only drill's anchor (its first failure seen) was sent at most one base interval after the true start,
  and answered after it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from livefire.assessment import Assessment
from livefire.contracts import Sample
from livefire.probing.chunks import decode_chunk

# Run alone (make test's last stage): the recovery instant is judged to 20 ms of the service's own record, which a
# drill beside other drills, the unit tests and a make drill loop missed by 1.5 ms.
pytestmark = [pytest.mark.slow, pytest.mark.alone]
PRIMARY, STANDBY = "us-east-1", "us-west-2"
FAILOVER_MS = 300.0  # the entrypoint fails this long after the outage starts, then the standby serves it
BOUND_MS = 20.0  # the acceptance bound: a measured instant vs the service's own record
INTERVAL_MS = 100.0  # probes.interval
STATE_SLACK_MS = 250.0  # scheduling delay of a base probe on a busy machine (seen: 80 ms in CI)


@dataclass
class Call:
    method: str
    path: str
    at_ms: float
    status: int
    headers: dict[str, str]


@dataclass
class ScriptedService:
    """Our own service on 127.0.0.1: ``/healthz`` (the entrypoint), ``/<region>/healthz``, and ``/outage``: POST
    starts an outage (until a DELETE, or for ``seconds``), DELETE ends it."""

    calls: list[Call] = field(default_factory=list)
    down_ms: float | None = None  # when the outage started
    failed_over_ms: float | None = None  # from then on the entrypoint answers 200 again (served by the standby)
    back_ms: float | None = None  # when the outage ended
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start_outage(self, now_ms: float, seconds: float | None = None) -> None:
        self.down_ms, self.failed_over_ms = now_ms, now_ms + FAILOVER_MS
        self.back_ms = None if seconds is None else now_ms + seconds * 1000.0

    def _down(self, now_ms: float) -> bool:
        return self.down_ms is not None and now_ms >= self.down_ms and (self.back_ms is None or now_ms < self.back_ms)

    def answer(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        with self.lock:
            now_ms = time.time() * 1000.0
            status, extra = 404, dict[str, str]()
            if path == "/outage" and method == "POST":
                self.start_outage(now_ms)
                status = 201
            elif path == "/outage" and method == "DELETE":
                self.back_ms = now_ms
                status = 200
            elif path == f"/{PRIMARY}/healthz":
                status, extra = (503, {}) if self._down(now_ms) else (200, {"x-served-region": PRIMARY})
            elif path == f"/{STANDBY}/healthz":
                status, extra = 200, {"x-served-region": STANDBY}
            elif path == "/healthz":
                if not self._down(now_ms):
                    status, extra = 200, {"x-served-region": PRIMARY}
                elif self.failed_over_ms is not None and now_ms >= self.failed_over_ms:
                    status, extra = 200, {"x-served-region": STANDBY}
                else:
                    status = 503
            self.calls.append(Call(method, path, now_ms, status, headers))
            return status, extra

    def received(self, method: str, path: str) -> list[Call]:
        with self.lock:
            return [call for call in self.calls if (call.method, call.path) == (method, path)]


@contextmanager
def scripted_service() -> Iterator[ScriptedService]:
    service = ScriptedService()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            status, extra = service.answer(self.command, self.path, dict(self.headers.items()))
            self.send_response(status)
            for name, value in {**extra, "content-length": "0"}.items():
                self.send_header(name, value)
            self.end_headers()

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def log_message(self, format: str, *args: Any) -> None:
            return

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # bursts of probes from three targets at once

    server = Server(("127.0.0.1", 0), Handler)
    service.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def drill_document(service: ScriptedService, fault: dict[str, Any], phases: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "livefire/v1", "kind": "Drill",
        "metadata": {"name": f"own-service-{fault['kind']}", "service": "shop", "owner": "tests"},
        "pattern": "active-passive",
        "regions": [
            {"name": PRIMARY, "role": "primary", "endpoint": service.url(f"/{PRIMARY}/healthz")},
            {"name": STANDBY, "role": "standby", "endpoint": service.url(f"/{STANDBY}/healthz")},
        ],
        "entrypoint": service.url("/healthz"),
        "servedBy": {"header": "x-served-region"},
        "fault": fault,
        "phases": phases,
        "probes": {"interval": f"{INTERVAL_MS:g}ms", "timeout": "1s", "expect": {"status": [200]},
                   "burstInterval": "5ms", "sustain": "500ms"},
        "objectives": {"rto": "2s"},
    }


def livefire_run(spec: Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "livefire_local.cli", "run", str(spec), "--evidence-dir",
                             str(cwd / "evidence")], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=(cwd / "stderr.txt").open("w"), text=True)


def the_evidence(tmp_path: Path) -> tuple[Path, Assessment, dict[str, Any]]:
    [folder] = [p for p in (tmp_path / "evidence").iterdir() if not p.name.startswith(".")]
    assessment = Assessment.model_validate_json((folder / "assessment.json").read_bytes())
    return folder, assessment, json.loads((folder / "plan.json").read_text())


def assert_every_target_is_real(console: str, folder: Path, plan: dict[str, Any], service: ScriptedService) -> None:
    assert {(t["name"], t["reach"]) for t in plan["targets"]} == {
        ("entrypoint", "real"), (PRIMARY, "real"), (STANDBY, "real")}
    assert all(fault["reach"] == "real" for fault in plan["faults"])
    assert f"target entrypoint {service.url('/healthz')}: real" in console
    assert ": sandbox" not in console
    report = (folder / "report.md").read_text()
    assert "## Targets" in report and "sandbox (" not in report
    assert f"| entrypoint | {service.url('/healthz')} | real (contacted as named) |" in report


def probe_sent_at(folder: Path, targets: set[str], sent_ms: float) -> Sample:
    """The probe sample of one of ``targets`` sent at ``sent_ms``, from the evidence's sample chunks."""
    samples = [sample for chunk in folder.rglob("*.jsonl.gz") for sample in decode_chunk(chunk.read_bytes())]
    return next(s for s in samples if s.target in targets and s.sent_ms == sent_ms)


def test_a_webhook_drill_breaks_and_mends_our_own_service_and_times_it_as_the_service_saw_it(
        tmp_path: Path) -> None:
    with scripted_service() as service:
        fault = {"kind": "webhook", "region": PRIMARY, "webhook": {
            "inject": {"url": service.url("/outage"), "method": "POST"},
            "rollback": {"url": service.url("/outage"), "method": "DELETE"}}}
        spec = tmp_path / "webhook.yaml"
        spec.write_text(yaml.safe_dump(drill_document(
            service, fault, {"baseline": "1s", "lead": "1s", "fault": "2s", "recovery": "3s"})))

        drill = livefire_run(spec, tmp_path)
        console, _ = drill.communicate(timeout=180)

    assert drill.returncode == 0, console + (tmp_path / "stderr.txt").read_text()
    [inject], [rollback] = service.received("POST", "/outage"), service.received("DELETE", "/outage")
    assert inject.headers["x-livefire-fault-id"] == rollback.headers["x-livefire-fault-id"] == f"webhook-{PRIMARY}"
    assert service.down_ms is not None and service.failed_over_ms is not None and service.back_ms is not None
    folder, assessment, plan = the_evidence(tmp_path)
    # the outage started and ended when the calls arrived: each call's send time, a time in flight before
    assert assessment.injected_at_ms is not None and assessment.restored_at_ms is not None
    assert 0.0 <= service.down_ms - assessment.injected_at_ms <= BOUND_MS
    assert 0.0 <= service.back_ms - assessment.restored_at_ms <= BOUND_MS
    # the entrypoint came back (failover to the standby) at the first sustained success, within its flight
    bracket = assessment.rto_bracket
    assert bracket is not None and bracket.last_failure_ms is not None and bracket.first_success_ended_ms is not None
    assert bracket.last_failure_ms < service.failed_over_ms
    assert bracket.first_success_ms - BOUND_MS <= service.failed_over_ms <= bracket.first_success_ended_ms
    assert assessment.verdict == "PASS", assessment.verdict_reason
    assert_every_target_is_real(console, folder, plan, service)
    assert f"webhook inject POST {service.url('/outage')}: real" in console


def test_an_observe_only_drill_times_an_outage_of_our_own_service_as_the_service_saw_it(tmp_path: Path) -> None:
    with scripted_service() as service:
        spec = tmp_path / "external.yaml"
        spec.write_text(yaml.safe_dump(drill_document(
            service, {"kind": "external", "region": PRIMARY},
            {"baseline": "1s", "lead": "1s", "fault": "3s", "recovery": "3s"})))

        drill = livefire_run(spec, tmp_path)
        assert drill.stdout is not None
        seen: list[str] = []
        for line in drill.stdout:  # the outage starts once the drill's window is open: an incident nobody injects
            seen.append(line)
            if line.rstrip().endswith("> Inject"):
                break
        with service.lock:
            service.start_outage(time.time() * 1000.0 + 200.0, seconds=1.0)
        console = "".join(seen) + drill.communicate(timeout=180)[0]

    assert drill.returncode == 0, console + (tmp_path / "stderr.txt").read_text()
    assert service.received("POST", "/outage") == [] and service.received("DELETE", "/outage") == []
    assert service.down_ms is not None and service.failed_over_ms is not None and service.back_ms is not None
    folder, assessment, plan = the_evidence(tmp_path)
    # the incident starts at its first failure seen: a base probe sent up to one interval after the true start,
    # and answered after it
    assert assessment.injected_at_ms is not None
    first_failure = probe_sent_at(folder, {"entrypoint", PRIMARY}, assessment.injected_at_ms)
    assert not first_failure.ok and first_failure.ended_ms >= service.down_ms
    assert first_failure.sent_ms <= service.down_ms + INTERVAL_MS + STATE_SLACK_MS
    # it ends at the send of the primary's first sustained success (watched at the burst interval)
    assert assessment.restored_at_ms is not None
    back = probe_sent_at(folder, {PRIMARY}, assessment.restored_at_ms)
    assert back.ok and back.sent_ms - BOUND_MS <= service.back_ms <= back.ended_ms
    # and the entrypoint came back (failover) at its first sustained success, within that probe's flight
    bracket = assessment.rto_bracket
    assert bracket is not None and bracket.last_failure_ms is not None and bracket.first_success_ended_ms is not None
    assert bracket.last_failure_ms < service.failed_over_ms
    assert bracket.first_success_ms - BOUND_MS <= service.failed_over_ms <= bracket.first_success_ended_ms
    assert assessment.verdict == "PASS", assessment.verdict_reason
    assert plan["faults"] == []
    assert_every_target_is_real(console, folder, plan, service)
