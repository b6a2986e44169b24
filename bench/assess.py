"""Assess at scale: wall time and peak memory of the real Assess handler against moto S3, streaming columns against
the pre-change implementation (one pydantic Sample per sample, the chunk keys in the state), and the evidence
bytes a drill-hour writes.

Synthetic drills: 21 targets (the entrypoint, the two regions of drills/sandbox/active-passive.yaml and 18 more
endpoints) x 3 vantages at 10 Hz, written as the probe writes them (gzipped JSON Lines, 5,000 samples a chunk, one
vantage per chunk); the entrypoint fails for 3 s after the injection, is served by the standby until 2 s after the
restore; the primary's endpoint fails through the fault. Each measurement runs in a fresh process
(bench/assess_child.py): peak memory is the process's peak RSS during the invocation (the mark reset just before
it) minus its RSS just before, plus its RSS once the handler module was imported - what a Lambda container would
hold (moto's copy of the bucket is left out). The pre-change implementation is the layer and handler of
``BASELINE_COMMIT`` (git archive into bench/.work/), measured in the same run on the same files.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from bench.report import Row, Section

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work" / "assess"
BASELINE_COMMIT = "cab4821ee60f362abd1829c4d6f3e8d390be1ced"  # the last commit before Assess streamed columns
SIZES = (10_000, 100_000, 1_000_000, 5_000_000)
BASELINE_UP_TO = 1_000_000  # the old path needs ~1.5 KB a sample: 5x10^6 would take ~7.5 GB of a shared machine
BUDGET_S, BUDGET_MB = 60.0, 1024.0
VANTAGES = ("v1", "v2", "v3")
TARGETS = ("entrypoint", "us-east-1", "us-west-2", *(f"ep-{i:02d}" for i in range(1, 19)))
INTERVAL_MS, CHUNK = 100.0, 5000
T0 = 1_796_000_000_000.0
PREFIX = "drills/payments/bench-d/"


def _plan(duration_s: float) -> dict[str, Any]:
    targets = [{"name": "entrypoint", "url": "http://payments.sandbox/healthz", "region": None, "role": "entrypoint"},
               {"name": "us-east-1", "url": "http://use1.payments.sandbox/healthz", "region": "us-east-1",
                "role": "primary"},
               {"name": "us-west-2", "url": "http://usw2.payments.sandbox/healthz", "region": "us-west-2",
                "role": "standby"}]
    targets += [{"name": t, "url": f"http://{t}.sandbox/healthz", "region": None, "role": "endpoint"}
                for t in TARGETS[3:]]
    return {"drillId": "bench-d", "executionArn": "arn:aws:states:us-east-1:1:execution:drill:bench-d",
            "service": "payments", "pattern": "active-passive", "mode": "live", "specKey": f"{PREFIX}spec.json",
            "specDigest": "", "evidencePrefix": PREFIX, "startedAtMs": int(T0),
            "vantages": [{"name": v, "region": "us-east-1"} for v in VANTAGES], "targets": targets, "faults": [],
            "baselineSeconds": 3.0, "observeSeconds": duration_s, "leadWaitSeconds": 0,
            "faultWaitSeconds": int(duration_s)}


def _state(target: str, at: float, injected: float, restored: float) -> tuple[bool, str | None]:
    if target == "entrypoint":
        if at < injected or at >= restored + 2000:
            return True, "us-east-1"
        return (False, None) if at < injected + 3000 else (True, "us-west-2")
    if target == "us-east-1" and injected <= at < restored:
        return False, None
    return True, target if target in ("us-east-1", "us-west-2") else "us-west-2"


def generate(samples: int) -> Path:
    """The chunk files of a drill of about ``samples`` samples (kept between runs)."""
    folder = WORK / f"drill-{samples}"
    if (folder / "drill.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    steps = samples // (len(VANTAGES) * len(TARGETS))
    duration_ms = steps * INTERVAL_MS
    injected, restored = T0 + 0.2 * duration_ms, T0 + 0.6 * duration_ms
    rng = random.Random(samples)
    for vantage in VANTAGES:
        lines: list[str] = []
        chunk = 0
        seqs = dict.fromkeys(TARGETS, 0)

        def flush(vantage: str = vantage) -> None:
            nonlocal chunk, lines
            data = gzip.compress("".join(lines).encode(), mtime=0)
            (folder / f"{vantage}__drill-{chunk:06d}.jsonl.gz").write_bytes(data)
            chunk, lines = chunk + 1, []

        for step in range(steps):
            scheduled = T0 + step * INTERVAL_MS
            for target in TARGETS:
                ok, served = _state(target, scheduled, injected, restored)
                sent = scheduled + rng.random()
                latency = 5.0 + rng.random() * 20.0
                lines.append(json.dumps({
                    "target": target, "vantage": vantage, "seq": seqs[target], "scheduled_ms": scheduled,
                    "sent_ms": round(sent, 3), "ended_ms": round(sent + latency, 3), "ok": ok,
                    "status": 200 if ok else 503, "error": None if ok else "http_5xx",
                    "latency_ms": round(latency, 3), "served_by": served, "version": "v1" if ok else None,
                    "burst": False}, separators=(",", ":")) + "\n")
                seqs[target] += 1
                if len(lines) >= CHUNK:
                    flush()
        if lines:
            flush()
    fault = {"faultId": "f1", "kind": "http-abort", "region": "us-east-1", "namespace": "payments",
             "objectKind": "VirtualService", "objectName": "payments", "leaseKey": "LEASE#payments"}
    (folder / "drill.json").write_text(json.dumps({
        "prefix": PREFIX, "plan": _plan(duration_ms / 1000.0), "fault": fault,
        "injected_ms": int(injected), "restored_ms": int(restored)}))
    return folder


def _baseline_tree() -> Path:
    tree = WORK / f"old-{BASELINE_COMMIT[:8]}"
    if not (tree / "functions" / "assess" / "app.py").exists():
        tree.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as archive:
            subprocess.run(["git", "archive", BASELINE_COMMIT, "layers/livefire/livefire", "functions/assess"],
                           cwd=ROOT, stdout=archive, check=True)
            archive.seek(0)
            with tarfile.open(fileobj=archive) as tar:
                tar.extractall(tree, filter="data")
    return tree


def measure(layer: Path, function_dir: Path, chunks: Path, style: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "bench.assess_child", str(layer), str(function_dir), str(chunks),
                           style], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"assess child failed ({style}, {chunks.name}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["lambda_mb"] = result["imported_mb"] + result["peak_mb"] - result["before_mb"]
    return result


def _mb(value: float) -> str:
    return f"{value:,.0f} MB"


def run(machine: str, sizes: tuple[int, ...] = SIZES) -> Section:
    old = _baseline_tree()
    results: dict[int, tuple[dict[str, Any], dict[str, Any] | None]] = {}
    for samples in sizes:
        chunks = generate(samples)
        new = measure(ROOT / "layers" / "livefire", ROOT / "functions" / "assess", chunks, "prefix")
        before = (measure(old / "layers" / "livefire", old / "functions" / "assess", chunks, "keys")
                  if samples <= BASELINE_UP_TO else None)
        results[samples] = (new, before)
        print(f"bench: assess {samples}: new {new}, old {before}", flush=True)
    return section_of(results, machine)


def section_of(results: dict[int, tuple[dict[str, Any], dict[str, Any] | None]], machine: str) -> Section:
    """The rows and notes of the measurements (by size: this implementation's, the pre-change one's or None)."""
    section = Section("Assess at scale and evidence per drill-hour")
    for samples, (new, before) in results.items():
        budget, status = "—", "—"
        if samples == 5_000_000:
            budget = f"≤ {BUDGET_S:g} s and ≤ {BUDGET_MB / 1024:g} GB"
            late, heavy = new["wall_s"] - BUDGET_S, new["lambda_mb"] - BUDGET_MB
            status = "met" if late <= 0 and heavy <= 0 else "MISSED by " + ", ".join(
                part for part in (f"{late:.1f} s" if late > 0 else "", _mb(heavy) if heavy > 0 else "") if part)
            if late > 0 and new["cpu_s"] <= BUDGET_S:
                status += (f" (wall time on a shared machine; its {new['cpu_s']:.1f} CPU s fit in {BUDGET_S:g} s of "
                           "one core)")
        base = (f"{before['wall_s']:.1f} s ({before['cpu_s']:.1f} CPU s), {_mb(before['lambda_mb'])} (one pydantic "
                f"object a sample, keys in the state: {before['event_bytes']:,} B input)") if before else \
            "not run (about 1.5 KB a sample: ~7.5 GB; the issue measured 151 s)"
        ratio = (f"{new['wall_s'] / before['wall_s']:.2f}x time, {new['lambda_mb'] / before['lambda_mb']:.2f}x memory"
                 if before else "—")
        section.rows.append(Row(f"Assess wall time and peak memory, {samples:,} samples (21 targets x 3 vantages)",
                                f"{new['wall_s']:.1f} s ({new['cpu_s']:.1f} CPU s), {_mb(new['lambda_mb'])}", base,
                                ratio, budget, status,
                                machine))
    section.notes += [
        f"{samples:,} samples: new {new['wall_s']:.2f} s, RSS imported {new['imported_mb']:.0f} MB + invocation peak "
        f"{new['peak_mb'] - new['before_mb']:.0f} MB; assessment.json {new['assessment_bytes']:,} B, timeline.json "
        f"{new['chart_bytes']:,} B, input event {new['event_bytes']:,} B"
        + (f"; old {before['wall_s']:.2f} s, imported {before['imported_mb']:.0f} MB + peak "
           f"{before['peak_mb'] - before['before_mb']:.0f} MB, input event {before['event_bytes']:,} B; "
           f"assessment.json {'identical' if before['assessment_sha256'] == new['assessment_sha256'] else 'DIFFERS'}"
           if before else "")
        for samples, (new, before) in results.items()]
    section.rows.append(_evidence_row(machine, results))
    return section


def _bytes_per_sample(folders: list[Path]) -> tuple[float, int]:
    """Gzipped chunk bytes per sample over the sample chunks under ``folders``, and how many samples."""
    size = count = 0
    for folder in folders:
        for path in folder.rglob("*.jsonl.gz"):
            if "/samples/" in path.as_posix() or folder.parent == WORK:
                data = path.read_bytes()
                size += len(data)
                count += sum(1 for line in gzip.decompress(data).splitlines() if line.strip())
    return (size / count if count else 0.0), count


def _evidence_row(machine: str, results: dict[int, tuple[dict[str, Any], dict[str, Any] | None]]) -> Row:
    """Evidence bytes per drill-hour at the default settings: the sample chunks of one vantage probing the
    entrypoint and two regions at the default 250 ms interval, at the bytes a sample the sandbox drills recorded in
    ./livefire-evidence (real probes, watch probes included; else the synthetic drills'), plus timeline.json."""
    real, real_count = _bytes_per_sample([ROOT / "livefire-evidence"]) if (ROOT / "livefire-evidence").exists() \
        else (0.0, 0)
    synthetic, _ = _bytes_per_sample([WORK / f"drill-{min(results)}"])
    per_sample = real or synthetic
    source = f"{real_count:,} sandbox samples" if real else "the synthetic drill"
    hourly = 3 * 3600 / 0.25  # entrypoint + 2 regions, one vantage, 4 Hz
    new, _ = results[min(results)]
    chunk_hour, extra = per_sample * hourly, new["chart_bytes"]
    return Row("Evidence bytes per drill-hour, default settings (3 targets, 1 vantage, 250 ms)",
               f"{(chunk_hour + extra) / 1e6:.2f} MB ({per_sample:.1f} B a sample gzipped, from {source}; "
               f"+ timeline.json {extra / 1e3:.0f} kB a drill)",
               f"{chunk_hour / 1e6:.2f} MB (the same chunks, no timeline.json)",
               f"{(chunk_hour + extra) / chunk_hour:.3f}x", "stated", "stated", machine)
