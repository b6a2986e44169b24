"""A loopback HTTP endpoint with scripted outages, run in its own process (``python -m bench.loopback``).

Every request except ``/control/*`` is answered ``200`` — or ``503`` while an outage is on. Whether an outage is
on is decided with ``time.monotonic()`` when the request line arrives; on Linux that clock is system-wide, so
the benchmark process can compare it with its own readings (this is the ground truth of every RTO measured).

Control (all answer JSON):
  POST /control/outage?seconds=L[&at=MONO]  an outage of L seconds from MONO (default: now)
  POST /control/reset                       forget the outage and the request log
  GET  /control/log                         ``[[monotonic, status], ...]`` of the probe requests since the reset

Each connection carries one request and is closed after the answer (``Connection: close``), like a fresh
probe connection. The first line printed on stdout is the port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
_HEAD_LIMIT = 64 * 1024


class OutageServer:
    def __init__(self) -> None:
        self.outage: tuple[float, float] | None = None  # [start, end) in monotonic seconds
        self.log: list[tuple[float, int]] = []

    def status_at(self, now: float) -> int:
        if self.outage is not None and self.outage[0] <= now < self.outage[1]:
            return 503
        return 200

    def control(self, method: str, target: str) -> tuple[int, Any]:
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if method == "POST" and parts.path == "/control/outage":
            seconds = float(query["seconds"])
            start = float(query["at"]) if "at" in query else time.monotonic()
            self.outage = (start, start + seconds)
            wall = time.time() + (start - time.monotonic())
            return 200, {"start_mono": start, "end_mono": start + seconds, "start_wall": wall, "seconds": seconds}
        if method == "POST" and parts.path == "/control/reset":
            self.outage = None
            self.log = []
            return 200, {"reset": True}
        if method == "GET" and parts.path == "/control/log":
            return 200, self.log
        return 404, {"error": f"unknown control {method} {parts.path}"}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await reader.readline()
            arrived = time.monotonic()
            length = 0
            size = len(request_line)
            while True:
                line = await reader.readline()
                size += len(line)
                if not line or line in (b"\r\n", b"\n") or size > _HEAD_LIMIT:
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or b"0")
            if length:
                await reader.readexactly(length)
            method, target = [*request_line.decode("latin-1").split(), "", ""][:2]
            if target.startswith("/control/"):
                status, document = self.control(method, target)
                body = json.dumps(document).encode()
                content_type = "application/json"
            else:
                status = self.status_at(arrived)
                self.log.append((arrived, status))
                body = b"ok\n" if status == 200 else b"outage\n"
                content_type = "text/plain"
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}.get(status, "Status")
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                f"x-served-region: loopback\r\nConnection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _serve(port: int) -> None:
    server = OutageServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", port, backlog=4096)
    print(listener.sockets[0].getsockname()[1], flush=True)
    async with listener:
        await listener.serve_forever()


class Loopback:
    """The server process, seen from the benchmark: start, control, read the log, stop."""

    def __init__(self, cpu: int | None = None) -> None:
        self.cpu = cpu
        self.process: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> Loopback:
        command = [sys.executable, "-m", "bench.loopback"]
        if self.cpu is not None:
            command += ["--cpu", str(self.cpu)]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip():
            raise RuntimeError("the loopback server did not start")
        self.port = int(line)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            self.process = None

    def url(self, path: str = "/healthz") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _call(self, method: str, path: str) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path)
            answer = connection.getresponse()
            body = answer.read()
            if answer.status != 200:
                raise RuntimeError(f"{method} {path}: {answer.status} {body[:200]!r}")
            return json.loads(body)
        finally:
            connection.close()

    def reset(self) -> None:
        self._call("POST", "/control/reset")

    def schedule_outage(self, seconds: float, at_monotonic: float) -> dict[str, float]:
        result: dict[str, float] = self._call("POST", f"/control/outage?seconds={seconds!r}&at={at_monotonic!r}")
        return result

    def log(self) -> list[tuple[float, int]]:
        return [(float(t), int(s)) for t, s in self._call("GET", "/control/log")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this core")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
