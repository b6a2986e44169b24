"""The spec reader never lets an exception other than InvalidDrillSpec escape, and every refusal is one line that
names the file and then the field path or the line:column.

Two sources of bad input: at least 2,000 generated spec texts per run (valid specs with their YAML damaged, their
values replaced, or random YAML-like text), and every example spec under drills/ mutated field by field."""

from __future__ import annotations

import copy
import io
import math
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livefire.errors import InvalidDrillSpec
from livefire.spec import parse_spec, read_spec
from tests.conftest import ROOT, field_paths

EXAMPLES = sorted(path for path in (ROOT / "drills").rglob("*.yaml") if "mesh" not in path.parts)
TEXTS = [path.read_text() for path in EXAMPLES]
GENERATED = 2000
# "<stdin>:12:7: problem" or "<stdin>: field.path: problem" (parts after the first joined by "; ").
READER_LINE = re.compile(r"^<stdin>(:\d+:\d+: \S| (\(spec\)|[A-Za-z0-9_'-]+(\.[A-Za-z0-9_'.-]+)*): \S|: \S)")
FIELD_PART = re.compile(r"^(\(spec\)|[A-Za-z0-9_'-]+(\.[A-Za-z0-9_'-]+)*(\.\.\.)?): \S")
# Characters that matter to YAML, so damaged texts exercise the scanner and parser, not only the validator.
YAML_CHARS = [*":-?[]{},#&*!|>'\"%@`\t\n ", "\x00", "\x07", "\ufeff", "é", "0", "a", ".inf", "!!", "<<: "]


def read(data: bytes) -> str | None:
    """The refusal of ``data`` as a spec (None if it is a valid spec); fails on any other exception."""
    try:
        read_spec(Path("-"), stdin=io.BytesIO(data))
    except InvalidDrillSpec as exc:
        return str(exc)
    return None


def assert_one_clean_line(message: str) -> None:
    assert message and "\n" not in message and "\r" not in message, message
    assert READER_LINE.match(message), message
    assert len(message) < 4000


@st.composite
def damaged_texts(draw: st.DrawFn) -> bytes:
    """An example spec with a few YAML-significant edits: inserted characters, deleted spans, repeated lines."""
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "repeat-line", "indent"]))
        if edit == "insert":
            text = text[:at] + draw(st.sampled_from(YAML_CHARS)) + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + draw(st.integers(min_value=1, max_value=20)):]
        else:
            lines = text.splitlines(keepends=True) or [""]
            index = at % len(lines)
            lines.insert(index, lines[index] if edit == "repeat-line" else "  " + lines[index])
            text = "".join(lines)
    return text.encode("utf-8", "surrogatepass")


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["0s", "1ms", "0.5ms", "10000h", "1h", "250ms", "http://x", "https://u:p@h/", "ftp://h/",
                     "https://h/p?token=abc", "payments", "live", "dry-run", "", "100", "-1s", "1e999s"]),
)
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=8)




DOCUMENTS = [yaml.safe_load(text) for text in TEXTS]
PATHS = [(index, path) for index, document in enumerate(DOCUMENTS) for path in field_paths(document)]


@st.composite
def revalued_texts(draw: st.DrawFn) -> bytes:
    """An example spec with values replaced by arbitrary ones, dumped back to YAML (or JSON-ish flow style)."""
    index, _ = draw(st.sampled_from(PATHS))
    document = copy.deepcopy(DOCUMENTS[index])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        _, path = draw(st.sampled_from([p for p in PATHS if p[0] == index]))
        parent: Any = document
        try:
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = draw(_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed this path
    flow = draw(st.booleans())
    try:
        return yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True).encode("utf-8", "surrogatepass")
    except yaml.YAMLError:
        return b"{}"


_texts = st.one_of(
    damaged_texts(), revalued_texts(),
    st.lists(st.sampled_from(YAML_CHARS), max_size=120).map(lambda parts: "".join(parts).encode()),
    st.binary(max_size=200),
)


def test_generated_spec_texts_are_valid_or_one_clean_line_never_another_exception() -> None:
    seen: list[int] = []

    @settings(max_examples=GENERATED, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_texts)
    def reads_cleanly(data: bytes) -> None:
        seen.append(1)
        message = read(data)
        if message is not None:
            assert_one_clean_line(message)

    reads_cleanly()
    assert len(seen) >= GENERATED


MUTATIONS: list[Any] = [None, True, -1, 0, 10**40, 1e308, math.inf, math.nan, "", "x" * 300, [], {}, {"x": 1},
                        [None], "1ms", "10000h", "0.5ms", "https://u:p@h/", "https://h/p?token=abc"]
DELETE = object()


def test_every_field_of_every_example_spec_mutated_is_valid_or_one_clean_line() -> None:
    tried = 0
    for index, path in PATHS:
        for mutation in [DELETE, *MUTATIONS]:
            document = copy.deepcopy(DOCUMENTS[index])
            parent: Any = document
            for part in path[:-1]:
                parent = parent[part]
            if mutation is DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(mutation)
            tried += 1
            try:
                parse_spec(document)
            except InvalidDrillSpec as exc:
                message = str(exc)
                assert message and "\n" not in message, message
                assert all(FIELD_PART.match(part) for part in message.split("; ")), message
    assert tried >= len(EXAMPLES) * 20 * len(MUTATIONS)


def test_every_example_spec_reads_as_valid() -> None:
    for path, text in zip(EXAMPLES, TEXTS, strict=True):
        assert read(text.encode()) is None, path
