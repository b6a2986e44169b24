"""`livefire sandbox up [SPEC] [--mesh DIR] [--kubeconfig PATH] [--drill-out PATH]`: the sandbox on its own.

Starts, in the foreground, the sandbox mesh a drill would run against (docs/architecture.md §10): per sandbox
cluster a fake Kubernetes API server over TLS (a CA generated for this run) that takes one bearer token, per
region its service, the entrypoint and the outage control of a webhook drill. It prints their URLs and writes a
kubeconfig with one context per cluster (``certificate-authority-data`` and ``token``), so kubectl and a drill whose
regions say ``cluster: {kubeconfig: PATH, context: NAME}`` reach it as they would a real cluster. With
``--drill-out`` it also writes SPEC pointed at it that way: every sandbox cluster a kubeconfig context, every
sandbox URL the loopback URL that serves it. Ctrl-C or SIGTERM stops everything (exit 130 / 143).
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import yaml

from livefire.egress import host_port
from livefire.errors import InvalidDrillSpec
from livefire.spec import read_spec
from livefire_local.sandbox.mesh import SandboxMesh
from livefire_local.sandbox.tls import loopback_certificate
from livefire_local.verdicts import EXIT_ERROR

DEFAULT_SPEC = Path("drills") / "sandbox" / "active-passive.yaml"
DEFAULT_KUBECONFIG = Path("livefire-sandbox.kubeconfig")
USER = "livefire-sandbox"


def kubeconfig(api_urls: dict[str, str], ca_pem: bytes, token: str) -> dict[str, Any]:
    """A kubeconfig with one cluster and context per sandbox cluster (named after it), all for one token user."""
    ca = base64.b64encode(ca_pem).decode()
    names = sorted(api_urls)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": api_urls[n], "certificate-authority-data": ca}} for n in names],
        "users": [{"name": USER, "user": {"token": token}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": USER}} for n in names],
        "current-context": names[0] if names else "",
        "preferences": {},
    }


def _write_private(path: Path, document: dict[str, Any]) -> None:
    """Write YAML readable by its owner only (a kubeconfig holds a token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    os.chmod(path, 0o600)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def _pointed(value: Any, urls: Callable[[str], str], clusters: dict[str, dict[str, str]]) -> Any:
    if isinstance(value, dict):
        cluster = value.get("sandbox")
        if set(value) == {"sandbox"} and cluster in clusters:
            return dict(clusters[cluster])
        return {key: _pointed(item, urls, clusters) for key, item in value.items()}
    if isinstance(value, list):
        return [_pointed(item, urls, clusters) for item in value]
    return urls(value) if isinstance(value, str) else value


def pointed_drill(document: dict[str, Any], mesh: SandboxMesh, kubeconfig_path: Path) -> dict[str, Any]:
    """The drill ``document`` aimed at the running ``mesh`` as real targets: each ``{sandbox: NAME}`` cluster
    becomes ``{kubeconfig: PATH, context: NAME}`` and each URL on a sandbox host its loopback URL."""
    mapping = mesh.resolve()

    def url(text: str) -> str:
        if not text.startswith(("http://", "https://")) or host_port(text) not in mapping:
            return text
        parts = urlsplit(text)
        return urlunsplit(("http", mapping[host_port(text)], parts.path, parts.query, parts.fragment))

    contexts = {name: {"kubeconfig": str(kubeconfig_path.resolve()), "context": name} for name in mesh.stores}
    pointed: dict[str, Any] = _pointed(document, url, contexts)
    return pointed


def describe(mesh: SandboxMesh, kubeconfig_path: Path) -> list[str]:
    """The lines ``sandbox up`` prints: what runs where."""
    spec, mapping = mesh.spec, mesh.resolve()

    def local(url: str) -> str:
        parts = urlsplit(url)
        return f"http://{mapping[host_port(url)]}{parts.path}" if host_port(url) in mapping else url

    lines = [f"sandbox up: {spec.metadata.name} ({spec.metadata.service})"]
    lines += [f"  cluster    {name:<24} {url}  (context {name})" for name, url in sorted(mesh.api_urls.items())]
    lines += [f"  region     {region.name:<24} {local(region.endpoint)}  ({region.endpoint})"
              for region in spec.regions if region.name in mesh.regional]
    if mesh.serves_entrypoint:
        lines.append(f"  entrypoint {'':<24} {local(spec.entrypoint)}  ({spec.entrypoint})")
    webhook = spec.fault.webhook
    if webhook is not None and mesh.serves_webhook:
        lines.append(f"  webhook    {'inject':<24} {local(webhook.inject.url)}")
        lines.append(f"  webhook    {'rollback':<24} {local(webhook.rollback.url)}")
    lines.append(f"kubeconfig: {kubeconfig_path}  (e.g. kubectl --kubeconfig {kubeconfig_path} get vs -A)")
    return lines


@contextmanager
def sandbox_up(spec_path: Path, mesh_dir: Path | None, kubeconfig_path: Path,
               drill_out: Path | None = None) -> Iterator[SandboxMesh]:
    """The running standalone sandbox of ``spec_path``, with its kubeconfig (and pointed drill) written."""
    document, spec = read_spec(spec_path)
    mesh = SandboxMesh.from_spec(spec, mesh_dir or spec_path.parent / "mesh")
    mesh.tls = loopback_certificate(f"livefire sandbox {spec.metadata.name}")
    with mesh:
        _write_private(kubeconfig_path, kubeconfig(mesh.api_urls, mesh.tls.ca_pem, mesh.token))
        if drill_out is not None:
            drill_out.parent.mkdir(parents=True, exist_ok=True)
            drill_out.write_text(yaml.safe_dump(pointed_drill(document, mesh, kubeconfig_path), sort_keys=False),
                                 encoding="utf-8")
        yield mesh


def serve_until_signal(run: Callable[[], Any], out: TextIO) -> int:
    """Call ``run`` (which starts what serves), then block until SIGINT or SIGTERM; 128 + the signal number."""
    received: list[int] = []
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        run()
        print("serving; Ctrl-C stops the sandbox", file=out, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    name = signal.Signals(received[0]).name
    print(f"{name}: sandbox stopped", file=out, flush=True)
    return 128 + received[0]


def cmd_sandbox_up(args: argparse.Namespace) -> int:
    spec_path = Path(args.spec) if args.spec else args.root_of(Path.cwd()) / DEFAULT_SPEC
    kubeconfig_path = Path(args.kubeconfig)
    try:
        with sandbox_up(spec_path, Path(args.mesh) if args.mesh else None, kubeconfig_path,
                        Path(args.drill_out) if args.drill_out else None) as mesh:
            return serve_until_signal(lambda: print("\n".join(describe(mesh, kubeconfig_path)), flush=True),
                                      sys.stdout)
    except InvalidDrillSpec as exc:
        print(f"invalid drill spec: {exc}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    return EXIT_ERROR


def add_sandbox_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                         root_of: Callable[[Path], Path]) -> None:
    """``livefire sandbox up``; ``root_of`` finds the project (and its default drill) from a folder."""
    sandbox = commands.add_parser("sandbox", help="the sandbox mesh on its own")
    actions = sandbox.add_subparsers(dest="sandbox_command", required=True)
    up = actions.add_parser("up", help="run a drill's sandbox mesh in the foreground (TLS API servers, services, "
                                       "entrypoint) and write a kubeconfig for it; Ctrl-C stops it")
    up.add_argument("spec", nargs="?", default=None,
                    help=f"the drill whose sandbox to run (default: {DEFAULT_SPEC} of the project)")
    up.add_argument("--mesh", default=None, metavar="DIR",
                    help="where the clusters' seed files <cluster>.yaml are (default: the spec's folder /mesh)")
    up.add_argument("--kubeconfig", default=str(DEFAULT_KUBECONFIG), metavar="PATH",
                    help=f"the kubeconfig to write, one context per sandbox cluster (default: {DEFAULT_KUBECONFIG})")
    up.add_argument("--drill-out", default=None, metavar="PATH",
                    help="also write the drill aimed at this sandbox as real targets (kubeconfig clusters, "
                         "loopback URLs)")
    up.set_defaults(func=cmd_sandbox_up, root_of=root_of)
