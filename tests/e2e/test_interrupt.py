"""Ctrl-C (SIGINT) and SIGTERM sent to `livefire run` while the fault is live: the fault is rolled back, the
evidence says ABORTED, one line is printed, no traceback, and the exit code follows the shell's convention."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from livefire.evidence.manifest import verify_evidence_dir
from tests.conftest import MESH_DIR, sandbox_spec_document
from tests.keys import local_verifier

pytestmark = pytest.mark.slow
# A fault window long enough that the signal surely lands inside it, however busy the machine.
PHASES = {"baseline": "1s", "lead": "1s", "fault": "8s", "recovery": "1s"}
INJECTED_MARK = "< Inject"


def _start(spec: Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "livefire_local.cli", "run", str(spec), "--evidence-dir",
                             str(cwd / "evidence")], cwd=cwd, stdout=(cwd / "out.txt").open("w"),
                            stderr=(cwd / "err.txt").open("w"), text=True)


def _wait_for_injection(process: subprocess.Popen[str], out: Path, timeout_s: float = 90.0) -> None:
    give_up = time.monotonic() + timeout_s
    while INJECTED_MARK not in out.read_text():
        assert process.poll() is None, f"livefire ended before injecting: {out.read_text()[-2000:]}"
        assert time.monotonic() < give_up, "the fault was never injected"
        time.sleep(0.2)


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["sigint", "sigterm"])
def test_a_signal_during_the_fault_rolls_back_and_keeps_the_evidence(
    tmp_path: Path, write_spec: Callable[[dict[str, Any]], Path], signum: signal.Signals, exit_code: int,
) -> None:
    spec = write_spec(sandbox_spec_document(phases=PHASES))
    (spec.parent / "mesh").symlink_to(MESH_DIR, target_is_directory=True)
    process = _start(spec, tmp_path)
    _wait_for_injection(process, tmp_path / "out.txt")

    process.send_signal(signum)
    time.sleep(1.0)  # pending signals are handled lowest number first: let the first one be handled first
    process.send_signal(signal.SIGINT)  # a second Ctrl-C during the rollback must not skip it
    code = process.wait(timeout=180)

    stderr = (tmp_path / "err.txt").read_text()
    assert code == exit_code, stderr[-2000:]
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"interrupted by {signum.name}: 1 fault(s) rolled back"), lines
    [drill] = [p for p in (tmp_path / "evidence").iterdir() if not p.name.startswith(".")]  # not .chain
    assert str(drill.name) in lines[0]
    manifest = json.loads((drill / "manifest.json").read_text())
    assert manifest["verdict"] == "ABORTED"
    assert verify_evidence_dir(drill, verifier=local_verifier()).ok
    [record] = json.loads((drill / "faults" / "records.json").read_text())
    assert (record["status"], record["restored_by"]) == ("RESTORED", "emergency-rollback")
    fault = record["fault_id"]
    before = json.loads((drill / "faults" / f"{fault}-before.json").read_text())
    restored = json.loads((drill / "faults" / f"{fault}-restored.json").read_text())
    assert restored["spec"] == before["spec"]
