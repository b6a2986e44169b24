"""`livefire sandbox up` as a real cluster: a drill through ``cluster: {kubeconfig: …}`` against it takes the
real-cluster code path (TLS with the kubeconfig's CA, its bearer token) and finds what the same drill finds
through ``cluster: {sandbox: …}``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from livefire_local.runner import DrillRun, run_drill
from livefire_local.sandbox_up import sandbox_up
from tests.conftest import FAST_PHASES, MESH_DIR, explain_run, sandbox_spec_document

ROOT = Path(__file__).resolve().parents[2]


def _findings(run: DrillRun) -> dict[str, str]:
    assert run.evidence_dir is not None, run.error
    assessment = json.loads((run.evidence_dir / "assessment.json").read_text())
    return {finding["id"]: finding["status"] for finding in assessment["findings"]}


def _run(spec: Path, evidence: Path) -> DrillRun:
    with (evidence.parent / f"{spec.stem}.log").open("w") as out:
        return run_drill(spec, root=ROOT, evidence_root=evidence, out=out, mesh_dir=MESH_DIR)


@pytest.mark.slow
def test_a_kubeconfig_drill_against_sandbox_up_passes_with_the_sandbox_drills_findings(
    tmp_path: Path, write_spec: Callable[[dict[str, Any]], Path]
) -> None:
    # the sandbox primary is ejected for 5 s, for 10 s if a Rollback on a loaded machine comes after that: a recovery
    # phase long enough for failback even then
    spec = write_spec(sandbox_spec_document(phases={**FAST_PHASES, "recovery": "12s"}))
    kubeconfig, pointed = tmp_path / "sandbox.kubeconfig", tmp_path / "pointed.yaml"
    sandboxed = _run(spec, tmp_path / "sandboxed")

    with sandbox_up(spec, MESH_DIR, kubeconfig, pointed) as mesh:
        through_kubeconfig = _run(pointed, tmp_path / "kubeconfig")
        primary = mesh.apis["payments-use1"]
        patches = [r for r in primary.requests if r.method == "PATCH"]

    regions = yaml.safe_load(pointed.read_text())["regions"]
    assert [r["cluster"]["context"] for r in regions] == ["payments-use1", "payments-usw2"]
    assert all(r["endpoint"].startswith("http://127.0.0.1:") for r in regions)
    assert len(patches) == 2 and all(r.had_bearer for r in patches)  # the fault and its restore, with the token
    assert primary.url.startswith("https://")
    assert sandboxed.verdict == "PASS", explain_run(sandboxed)
    assert through_kubeconfig.verdict == "PASS", explain_run(through_kubeconfig)
    assert _findings(through_kubeconfig) == _findings(sandboxed)


def test_sandbox_up_writes_a_private_kubeconfig_prints_its_urls_and_stops_on_sigint(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc.yaml"
    process = subprocess.Popen(
        [sys.executable, "-m", "livefire_local.cli", "sandbox", "up", str(ROOT / "drills/sandbox/active-passive.yaml"),
         "--kubeconfig", str(kubeconfig)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines: list[str] = []
        assert process.stdout is not None
        while not lines or not lines[-1].startswith("serving"):
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else ""
            lines.append(line.strip())
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    finally:
        process.kill()
        process.wait(timeout=10)

    config = yaml.safe_load(kubeconfig.read_text())
    assert code == 130
    assert kubeconfig.stat().st_mode & 0o077 == 0
    assert sorted(c["name"] for c in config["contexts"]) == ["payments-use1", "payments-usw2"]
    assert all(c["cluster"]["server"].startswith("https://127.0.0.1:") for c in config["clusters"])
    assert all(c["cluster"]["certificate-authority-data"] for c in config["clusters"])
    assert config["users"][0]["user"]["token"]
    assert sum("https://127.0.0.1:" in line for line in lines) == 2  # one API server per cluster
    assert any(line.startswith("entrypoint") and "http://127.0.0.1:" in line for line in lines)
