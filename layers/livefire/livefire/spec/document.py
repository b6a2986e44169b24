"""``parse_spec``: a spec document (already parsed from YAML or JSON) to a ``DrillSpec``, or ``InvalidDrillSpec``.

It is the single entry point of validation, wherever the document comes from (``livefire run``, ``livefire
start``, an execution input): it raises ``InvalidDrillSpec`` with one line naming the field path of each problem
(``fault.abort.percent: ...``) and never lets another exception escape. Before the models see it, the document
must be JSON: string keys, finite numbers, no other types (a YAML date, a set), at most ``MAX_DEPTH`` deep and at
most ``MAX_SPEC_BYTES`` as the execution input that carries it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import ValidationError

from livefire.errors import InvalidDrillSpec
from livefire.redaction import redact_urls_in_text
from livefire.spec.drill import DrillSpec
from livefire.spec.limits import MAX_DEPTH, MAX_SPEC_BYTES

# At most this many problems are listed; the rest are counted.
MAX_PROBLEMS = 5
_ENVELOPE = len('{"spec":}')
_UNION_TAG = re.compile(r"^(str|int|float|bool|none|constrained-(str|int|float|bytes)|[a-z-]+\[.*\])$")
_PATH_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*): (.+)$", re.DOTALL)


def _path_part(part: Any) -> str:
    text = str(part)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else repr(text[:40])


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(_path_part(part) for part in path) or "(spec)"


def _one_line(text: str) -> str:
    return " ".join(redact_urls_in_text(text).split())


def _describe(error: Any) -> tuple[str, str]:
    """(field path, problem) of one pydantic error; the tags pydantic adds for the members of a union
    (``'dict[str,any]'``, ``str``) are not fields and are left out."""
    loc = tuple(part for part in error["loc"] if not _UNION_TAG.match(str(part)))
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif error["type"] == "value_error":
        message = message.removeprefix("Value error, ")
        named = _PATH_PREFIX.match(message)
        if named is not None:  # a check spanning fields names the field it is about
            loc = (*loc, *named.group(1).split("."))
            message = named.group(2)
    return _dotted(loc), _one_line(message)


def _json_size(value: str) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def check_document(document: Any) -> None:
    """Refuse what is not a JSON document of bounded size and depth; InvalidDrillSpec names the path."""
    if not isinstance(document, dict):
        got = "nothing (an empty document)" if document is None else type(document).__name__
        raise InvalidDrillSpec(f"(spec): must be a mapping, got {got}")
    size = _ENVELOPE
    stack: list[tuple[Any, tuple[Any, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise InvalidDrillSpec(f"{_dotted(path[:4])}...: nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            size += 2 + max(len(value) - 1, 0)
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidDrillSpec(f"{_dotted(path)}: key {str(key)[:40]!r} is a {type(key).__name__}, "
                                           "not a string: quote it")
                size += _json_size(key) + 1
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            size += 2 + max(len(value) - 1, 0)
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
        elif isinstance(value, str):
            size += _json_size(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidDrillSpec(f"{_dotted(path)}: must be a finite number (got {value})")
        elif value is None or isinstance(value, bool | int | float):
            size += len(json.dumps(value))
        else:
            raise InvalidDrillSpec(f"{_dotted(path)}: a {type(value).__name__} is not a JSON value: quote it")
        if size > MAX_SPEC_BYTES:
            raise InvalidDrillSpec(f"(spec): larger than {MAX_SPEC_BYTES} bytes, the most a Step Functions "
                                   "execution input may carry")


def parse_spec(document: Any) -> DrillSpec:
    """Validate a spec document (already parsed from YAML/JSON); raise InvalidDrillSpec on any problem."""
    check_document(document)
    try:
        return DrillSpec.model_validate(document)
    except ValidationError as exc:
        by_path: dict[str, list[str]] = {}
        for error in exc.errors():
            path, message = _describe(error)
            by_path.setdefault(path, []).append(message)
        problems = [f"{path}: {' or '.join(dict.fromkeys(messages))}" for path, messages in by_path.items()]
        more = len(problems) - MAX_PROBLEMS
        listed = "; ".join(problems[:MAX_PROBLEMS]) + (f"; (spec): and {more} more problems" if more > 0 else "")
        raise InvalidDrillSpec(listed) from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidDrillSpec(f"(spec): {_one_line(str(exc))[:300]}") from None
