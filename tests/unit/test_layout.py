"""The project's layout rules (docs/architecture.md §1): small runtime modules, no import cycles, a layer that
holds runtime code only, and documentation that lives in the repository."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

LAYER = ROOT / "layers" / "livefire"
RUNTIME = LAYER / "livefire"
TOOLING = ROOT / "tooling" / "livefire_local"
MAX_RUNTIME_MODULE_LINES = 450
SOURCE_ROOTS = {"livefire": RUNTIME, "livefire_local": TOOLING}


def _module_name(path: Path) -> str:
    for package, folder in SOURCE_ROOTS.items():
        if path.is_relative_to(folder):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(path)


def _source_files() -> Iterator[Path]:
    for folder in SOURCE_ROOTS.values():
        yield from sorted(folder.rglob("*.py"))


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every project module ``path`` imports, at module level or inside a function (a lazy import still couples)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in candidates if name in known)
    found.discard(module)
    return found


def _import_graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for path in _source_files()}
    return {name: _imports(path, set(files)) for name, path in files.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of module imports, ignoring a package's own ``__init__`` re-exports of its submodules."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node):], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph[node]):
            if node.startswith(target + "."):  # a module importing its own parent package's __init__
                continue
            if target.startswith(node + "."):  # a package __init__ exposing its submodules
                continue
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


@pytest.mark.parametrize("module", sorted(RUNTIME.rglob("*.py")), ids=lambda p: str(p.relative_to(RUNTIME)))
def test_runtime_modules_stay_small(module: Path) -> None:
    lines = len(module.read_text().splitlines())

    assert lines <= MAX_RUNTIME_MODULE_LINES, f"{module.name} has {lines} lines: split it by idea"


def test_the_import_graph_has_no_cycles() -> None:
    graph = _import_graph()

    assert _find_cycle(graph) is None


def test_the_cycle_finder_reports_a_cycle_it_is_given() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}

    assert _find_cycle(graph) == ["a", "b", "c", "a"]


def test_assessment_is_a_package() -> None:
    assert (RUNTIME / "assessment" / "__init__.py").is_file()
    assert not (RUNTIME / "assessment.py").exists()


def test_the_layer_holds_no_cli_runner_or_sandbox_code() -> None:
    layer_files = {path.relative_to(LAYER).as_posix() for path in LAYER.rglob("*") if path.is_file()}
    tooling_modules = {
        path.relative_to(TOOLING).as_posix() for path in TOOLING.rglob("*.py") if path.name != "__init__.py"
    }

    assert not any("sandbox" in name or name.endswith(("cli.py", "runner.py")) for name in layer_files)
    assert not {f"livefire/{name}" for name in tooling_modules} & layer_files


def test_the_layer_requires_no_test_or_local_libraries() -> None:
    requirements = (LAYER / "requirements.txt").read_text().lower()

    assert not re.search(r"^(moto|pytest|hypothesis|livefire)\b", requirements, flags=re.MULTILINE)


def test_every_layer_module_imports_with_moto_and_the_tooling_unavailable() -> None:
    """What `sam build` ships is layers/livefire/ alone: every module must import with nothing else on the path."""
    modules = sorted(_module_name(path) for path in RUNTIME.rglob("*.py"))
    script = (
        "import sys\n"
        "sys.path = [p for p in sys.path if 'tooling' not in p and not p.endswith('/main') and p != '']\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "for blocked in ('moto', 'livefire_local', 'pytest', 'hypothesis', 'prometheus_client'):\n"
        "    sys.modules[blocked] = None\n"
        "import importlib\n"
        "for name in sys.argv[2:]:\n"
        "    importlib.import_module(name)\n"
    )

    completed = subprocess.run([sys.executable, "-c", script, str(LAYER), *modules], capture_output=True, text=True,
                               timeout=120, check=False, cwd=LAYER)

    assert completed.returncode == 0, completed.stderr[-2000:]


CODE_SUFFIXES = {".py", ".json", ".yaml", ".yml", ".toml", ".cfg"}
TOP_LEVEL_FILES = ["pyproject.toml", "template.yaml", "probe-vantage.yaml", "Makefile"]
SEARCHED = ["layers", "functions", "tooling", "tests", "bench", "statemachines", "tools", "events", "drills"]


def test_code_cites_only_documents_in_the_repository() -> None:
    outside = re.compile(r"\b" + "DES" + r"IGN\b")  # spelt in two parts so this file does not match itself
    citing = [
        path.relative_to(ROOT).as_posix()
        for folder in SEARCHED
        for path in (ROOT / folder).rglob("*")
        if path.suffix in CODE_SUFFIXES and ".work" not in path.parts and outside.search(path.read_text())
    ]
    citing += [name for name in TOP_LEVEL_FILES if outside.search((ROOT / name).read_text())]

    assert citing == []
