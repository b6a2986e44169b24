"""Reading a spec file (``livefire run`` and ``livefire start``): one error path for every way it can be wrong.

``read_spec`` turns a path (``-``: standard input) into the document and its ``DrillSpec``, or raises
``InvalidDrillSpec`` with one line that starts with the file's name and then names the field path (from
``parse_spec``) or the line and column (``spec.yaml:12:7: ...``). It refuses what YAML would otherwise accept and
JSON cannot carry: duplicate keys (YAML keeps the last one silently), tags (``!!python/object``, ``!!binary``),
timestamps and sets; and what would hurt the reader itself: a file over ``MAX_SPEC_BYTES``, text that is not
UTF-8, nesting deeper than ``MAX_DEPTH``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

from livefire.errors import InvalidDrillSpec
from livefire.spec.document import parse_spec
from livefire.spec.drill import DrillSpec
from livefire.spec.limits import MAX_DEPTH, MAX_SPEC_BYTES

STDIN = "-"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# The parser's own guard against deep nesting (its composer recurses); anything deeper than MAX_DEPTH but within
# this is refused by parse_spec with its field path, as the same document given as an execution input would be.
PARSER_DEPTH = 4 * MAX_DEPTH
# YAML types with no JSON equivalent, and what to write instead.
_NOT_JSON = {
    "tag:yaml.org,2002:timestamp": "a YAML date or time is not a JSON value: quote it",
    "tag:yaml.org,2002:binary": "binary data is not a JSON value",
    "tag:yaml.org,2002:set": "a YAML set is not a JSON value: use a list",
    "tag:yaml.org,2002:omap": "a YAML ordered map is not a JSON value: use a mapping",
    "tag:yaml.org,2002:pairs": "YAML pairs are not a JSON value: use a mapping",
}


class _SpecLoader(yaml.SafeLoader):
    """The safe loader, made strict: duplicate keys, non-JSON types and deep nesting are errors with a mark."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > PARSER_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if isinstance(key_node, ScalarNode):
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable: the constructor reports it with its mark
                if first is not None:
                    raise ConstructorError(
                        None, None,
                        f"duplicate key {str(key)[:60]!r} (first given on line {first.start_mark.line + 1}): "
                        "YAML would keep only the last one",
                        key_node.start_mark,
                    )
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # more digits than Python converts
            raise ConstructorError(None, None, "integer too large", node.start_mark) from None

    def refuse_non_json(self, node: Node) -> Any:
        raise ConstructorError(None, None, _NOT_JSON[node.tag], node.start_mark)


_SpecLoader.add_constructor("tag:yaml.org,2002:int", _SpecLoader.construct_yaml_int)
for _tag in _NOT_JSON:
    _SpecLoader.add_constructor(_tag, _SpecLoader.refuse_non_json)


def _marked(error: yaml.YAMLError, text: str, source: str) -> str:
    """``source:line:column: problem`` (1-based) for any YAML error."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = ", ".join(part for part in (error.context, error.problem) if part) or "not valid YAML"
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        return f"{where}: {problem}"
    if isinstance(error, yaml.reader.ReaderError):
        before = text[: error.position]
        line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        return f"{source}:{line}:{column}: character {error.character!r} is not allowed in YAML"
    return f"{source}: not valid YAML ({type(error).__name__})"


def load_document(text: str, *, source: str) -> Any:
    """The document in ``text`` (YAML or JSON); InvalidDrillSpec ``source:line:column: problem``."""
    try:
        loader = _SpecLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise InvalidDrillSpec(" ".join(_marked(exc, text, source).split())) from None
    except (RecursionError, ValueError, TypeError) as exc:  # the loader's last resort: never a traceback
        raise InvalidDrillSpec(f"{source}: not a readable spec ({type(exc).__name__})") from None


def _read_bytes(path: Path, stdin: BinaryIO) -> bytes:
    if str(path) == STDIN:
        return stdin.read(MAX_SPEC_BYTES + 1)
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise InvalidDrillSpec(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidDrillSpec(f"{path}: is a directory, not a spec file") from None
    except PermissionError:
        raise InvalidDrillSpec(f"{path}: cannot be read (permission denied)") from None
    except OSError as exc:
        raise InvalidDrillSpec(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None


def read_spec(path: Path, *, stdin: BinaryIO | None = None) -> tuple[Any, DrillSpec]:
    """The document at ``path`` (``-``: standard input) and its validated spec; InvalidDrillSpec otherwise,
    one line starting with the file's name."""
    source = "<stdin>" if str(path) == STDIN else str(path)
    data = _read_bytes(path, stdin if stdin is not None else sys.stdin.buffer)
    if len(data) > MAX_SPEC_BYTES:
        raise InvalidDrillSpec(f"{source}: (spec): larger than {MAX_SPEC_BYTES} bytes, the most a Step Functions "
                               "execution input may carry")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDrillSpec(f"{source}: not UTF-8 text (byte {exc.start})") from None
    document = load_document(text, source=source)
    try:
        return document, parse_spec(document)
    except InvalidDrillSpec as exc:
        raise InvalidDrillSpec(f"{source}: {exc}") from None
