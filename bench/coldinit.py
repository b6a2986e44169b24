"""Cold init: how long importing each ``functions/<step>/app.py`` takes in a fresh interpreter.

Each measurement is a new ``python`` process with the environment the function gets from template.yaml (plus
the variables the Lambda runtime sets and dummy credentials), the layer and the function folder on
``sys.path`` and nothing else: the clock runs around the import of app.py only (interpreter start-up excluded).
moto is never imported, and an audit hook counts socket connections, so a client that reached for the network
at import would show. The baseline, timed the same way in the same rounds, is
``import boto3; boto3.client("s3")``. One more run per function with ``python -X importtime`` names the heavy
imports.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import Row, Section, ratio, status
from livefire_local.template import LocalTemplate

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "livefire"
RUNS = 7
BUDGET = 2.0
BUDGETS = {"inject": 2.5}  # the inject function needs the kubernetes client
# livefire/faults/mesh.py loads the mesh modules (the kubernetes client) on first use, so FIS/webhook drills and
# empty guardian sweeps never pay for them; a mesh fault's first Inject/Rollback does, so it is counted here as part
# of init.
FIRST_USE_IMPORTS = {"inject": ["livefire.mesh.faults", "livefire.mesh.kube"],
                     "rollback": ["livefire.mesh.faults", "livefire.mesh.kube"]}
TIMEOUT_S = 60.0
# Packages worth naming when they load (or do not) at import.
WATCH = ("boto3", "botocore", "pydantic", "aws_lambda_powertools", "aws_lambda_powertools.utilities.idempotency",
         "aws_xray_sdk", "kubernetes", "kubernetes.config", "requests", "yaml", "urllib3", "moto", "livefire.mesh.kube",
         "livefire.assessment", "livefire.evidence.report")

_CHILD = r"""
import json, sys, time
connections = []
sys.addaudithook(lambda event, args: connections.append(repr(args[1])) if event == "socket.connect" else None)
path, names, watch = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
sys.path[:0] = json.loads(names)
started = time.perf_counter()
if path == "-":
    import boto3
    boto3.client("s3")
else:
    import importlib, importlib.util
    spec = importlib.util.spec_from_file_location("app", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in json.loads(sys.argv[4]):
        importlib.import_module(name)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "connections": connections,
                  "loaded": [w for w in watch if w in sys.modules]}))
"""


@dataclass
class Function:
    step: str
    app: Path
    environment: dict[str, str]
    seconds: list[float] = field(default_factory=list)
    connections: int = 0
    loaded: list[str] = field(default_factory=list)
    heavy: list[tuple[str, float]] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _environment(extra: dict[str, str], name: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
    return {
        **keep, **extra,
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "PYTHONDONTWRITEBYTECODE": "", "PYTHONPATH": "",
    }


def _run(target: str, paths: list[str], env: dict[str, str], *flags: str,
         first_use: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", _CHILD, target, json.dumps(paths), ",".join(WATCH),
         json.dumps(first_use or [])],
        env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=True,
    )


def _package(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "livefire" else parts[0]


def heavy_imports(stderr: str, top: int = 6) -> list[tuple[str, float]]:
    """Non-livefire packages by cumulative import time (ms) in ``-X importtime`` output, nested imports included.

    A package counts once per outermost import: a line whose enclosing imports are all of other packages.
    """
    entries: list[tuple[int, str, float]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative_us, raw = line.removeprefix("import time:").split("|")
        level = (len(raw) - len(raw.lstrip(" ")) - 1) // 2
        entries.append((level, raw.strip(), int(cumulative_us) / 1000.0))
    totals: dict[str, float] = {}
    ancestors: list[tuple[int, str]] = []
    for level, name, cumulative in reversed(entries):  # a parent's line follows its children's
        while ancestors and ancestors[-1][0] >= level:
            ancestors.pop()
        package = _package(name)
        if not package.startswith("livefire") and all(_package(parent) != package for _, parent in ancestors):
            totals[package] = totals.get(package, 0.0) + cumulative
        ancestors.append((level, name))
    return sorted(totals.items(), key=lambda item: -item[1])[:top]


def measure() -> tuple[list[float], list[Function]]:
    template = LocalTemplate.load(ROOT)
    functions = []
    for local in template.functions():
        app = local.code_dir / "app.py"
        functions.append(Function(step=local.code_dir.name, app=app,
                                  environment=_environment(local.environment, local.name)))
    baseline_env = _environment({}, "baseline")
    baseline: list[float] = []
    for _ in range(RUNS):
        baseline.append(json.loads(_run("-", [], baseline_env).stdout)["seconds"])
        for function in functions:
            result = json.loads(_run(str(function.app), [str(LAYER), str(function.app.parent)],
                                     function.environment, first_use=FIRST_USE_IMPORTS.get(function.step)).stdout)
            function.seconds.append(result["seconds"])
            function.connections += len(result["connections"])
            function.loaded = result["loaded"]
    for function in functions:
        traced = _run(str(function.app), [str(LAYER), str(function.app.parent)], function.environment,
                      "-X", "importtime", first_use=FIRST_USE_IMPORTS.get(function.step))
        function.heavy = heavy_imports(traced.stderr)
    return baseline, sorted(functions, key=lambda f: f.step)


def run(machine: str) -> Section:
    section = Section("Cold init (module import)")
    baseline, functions = measure()
    reference = statistics.median(baseline)
    for function in functions:
        budget = BUDGETS.get(function.step, BUDGET)
        measured = function.median / reference
        section.rows.append(Row(
            f"Cold init of functions/{function.step}/app.py (median of {RUNS})",
            f"{function.median * 1000:.0f} ms", f"{reference * 1000:.0f} ms (import boto3; boto3.client(\"s3\"))",
            ratio(function.median, reference), f"≤ {budget:g}x the baseline",
            status(measured, budget, "x"), machine,
        ))
    lazy = [w for w in WATCH if all(w not in f.loaded for f in functions)]
    over = [f for f in functions if f.median / reference > BUDGETS.get(f.step, BUDGET)]
    within = [f for f in functions if f not in over]
    for function in functions:
        heavy = ", ".join(f"{name} {ms_:.0f} ms" for name, ms_ in function.heavy)
        missed = function.median / reference > BUDGETS.get(function.step, BUDGET)
        section.notes.append(
            f"{function.step}: median {function.median * 1000:.0f} ms (runs: "
            f"{', '.join(f'{s * 1000:.0f}' for s in function.seconds)} ms); heaviest packages (-X importtime, "
            f"cumulative, nested imports included): {heavy}; loads {', '.join(function.loaded)}"
            + (f"; {function.connections} socket connections at import" if function.connections else
               "; no socket connection at import")
            + ("; OVER BUDGET" if missed else "")
        )
    for function in over:
        allowed = BUDGETS.get(function.step, BUDGET) * reference
        extras = [w for w in function.loaded if all(w not in f.loaded for f in within)]
        cost = dict(function.heavy)
        named = ", ".join(w + (f" ({cost[w]:.0f} ms in -X importtime)" if w in cost else "") for w in extras)
        section.notes.append(
            f"Why {function.step} misses: {(function.median - allowed) * 1000:.0f} ms over its budget of "
            f"{allowed * 1000:.0f} ms; it loads at import what no function within budget does: {named or 'nothing'}."
        )
    section.notes += [
        f"Baseline runs: {', '.join(f'{s * 1000:.0f}' for s in baseline)} ms (median {reference * 1000:.0f} ms).",
        "Not imported by any function at import time (lazy already, or not needed): "
        + (", ".join(lazy) if lazy else "none of the watched packages") + ".",
        "Which functions load kubernetes at import: "
        + (", ".join(f.step for f in functions if "kubernetes" in f.loaded) or "none") + ".",
        "-X importtime inflates every import a little; the named times rank the imports, the table's medians "
        "are the real figures. Handlers build no AWS client at import (Runtime creates them on first use).",
    ]
    return section
