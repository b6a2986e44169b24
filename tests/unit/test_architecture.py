"""Structural rules of docs/architecture.md §1: runtime code never imports local tooling, handlers stay thin, and
only the fault lifecycle writes fault records."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "layers" / "livefire" / "livefire"
RUNTIME_MODULES = sorted(PACKAGE.rglob("*.py"))
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", [*RUNTIME_MODULES, *HANDLERS], ids=lambda p: str(p.relative_to(ROOT)))
def test_runtime_code_does_not_import_test_or_mock_libraries(module: Path) -> None:
    offending = {name for name in _imported_modules(module) if name.split(".")[0] in {"moto", "pytest", "hypothesis"}}

    assert offending == set()


def test_there_is_one_handler_per_step() -> None:
    assert {path.parent.name for path in HANDLERS} == {
        "plan", "probe", "inject", "rollback", "assess", "evidence", "guardian", "approval", "campaign"
    }


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda p: p.parent.name)
def test_handlers_are_thin(handler: Path) -> None:
    tree = ast.parse(handler.read_text())
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]

    assert [f.name for f in functions] == ["handler"]
    body = functions[0]
    assert body.end_lineno is not None
    assert body.end_lineno - body.lineno + 1 <= 20
    code_lines = [line for line in handler.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert len(code_lines) <= 30


FAULT_RECORD_WRITES = re.compile(r"\.(put_fault_pending|fence_fault|mark_fault|reopen_fault)\(")
# The lifecycle and its write-ahead half (which Plan uses to open the data checks' marker cleanup).
FAULT_LIFECYCLE = {PACKAGE / "faults" / "lifecycle.py", PACKAGE / "faults" / "write_ahead.py"}


def test_only_the_fault_lifecycle_writes_fault_records() -> None:
    code = [*RUNTIME_MODULES, *HANDLERS, *sorted((ROOT / "tooling").rglob("*.py"))]

    writers = {path.relative_to(ROOT) for path in code if FAULT_RECORD_WRITES.search(path.read_text())}

    assert writers == {path.relative_to(ROOT) for path in FAULT_LIFECYCLE}
