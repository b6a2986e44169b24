"""Secrets never leave their box: what livefire shows or stores passes through here (docs/architecture.md §9).

- ``redact_url``: the one way a URL is shown or stored. Every query value (and a fragment) becomes
  ``[redacted]``; credentials in the URL (``user:password@``) too, although the spec refuses them.
- ``redact_urls_in_text``: the same for every http(s) URL inside a free text (an error message, a progress line).
- ``Redactor``: removes the values of a secret from a text in every form a receiver may echo them: as they are,
  JSON-escaped (JSON inside JSON too), percent-encoded, and base64 (standard and URL-safe, at every byte
  alignment, so a secret inside a longer encoded blob is caught too). ``Redactor.cut`` redacts *before* it shortens
  the text: a cut must never keep the prefix of a secret that redaction would have removed whole.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

REDACTED = "[redacted]"
# The shortest value worth hunting for in encoded forms: a shorter one would match by chance.
MIN_SECRET_CHARS = 4
# How many times a secret may have been JSON-escaped (a JSON document echoed inside another) and still be found.
JSON_DEPTH = 3
_URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with every query value, the fragment and any userinfo replaced by ``[redacted]``.

    Keys stay (``?token=[redacted]&region=[redacted]``): they tell a reader what was sent, not what it was.
    A text that is not a URL comes back unchanged.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return _redact_query_like(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = _redact_query(parts.query)
    fragment = REDACTED if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _redact_query(query: str) -> str:
    if not query:
        return ""
    items = []
    for item in query.split("&"):
        key, sep, _ = item.partition("=")
        items.append(f"{key}={REDACTED}" if sep else REDACTED)
    return "&".join(items)


def _redact_query_like(text: str) -> str:
    """A malformed URL: keep what comes before the first ``?`` or ``#`` (or ``@`` credentials), hide the rest."""
    head = re.split(r"[?#]", text, maxsplit=1)[0]
    if "@" in head:
        scheme, sep, rest = head.partition("://")
        head = f"{scheme}{sep}{REDACTED}@{rest.rpartition('@')[2]}"
    return head if head == text else f"{head}?{REDACTED}"


def redact_urls_in_text(text: str) -> str:
    """Every http(s) URL inside ``text`` passed through ``redact_url``."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 text that ``raw`` becomes at each of the three byte alignments inside a longer blob, without
    the partial characters at either end (those depend on the neighbouring bytes)."""
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        start = (offset * 8 + 5) // 6  # characters touched by the padding bytes in front
        end = len(encoded) - encoded.count("=")
        tail_bits = (offset + len(raw)) * 8 % 6
        if tail_bits:
            end -= 1  # the last character mixes in bits of whatever follows
        core = encoded[start:end]
        if len(core) >= MIN_SECRET_CHARS:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))
    return cores


def secret_forms(value: str) -> set[str]:
    """Every form of ``value`` a redaction removes: as it is and JSON-escaped (also JSON inside JSON, up to
    ``JSON_DEPTH`` times), each of those percent-encoded and base64-encoded."""
    if not value:
        return set()
    escaped = [value]
    for _ in range(JSON_DEPTH):
        escaped += [json.dumps(escaped[-1])[1:-1], json.dumps(escaped[-1], ensure_ascii=False)[1:-1]]
    forms: set[str] = set()
    for form in dict.fromkeys(escaped):
        forms |= {form, quote(form, safe=""), quote_plus(form)} | _base64_cores(form.encode())
    return {form for form in forms if form}


def credential_parts(value: str) -> set[str]:
    """The pieces of a header value a receiver may echo alone: the credentials after an auth scheme
    (``Bearer <token>``), and for ``Basic`` the decoded ``user:password`` and the password."""
    parts = {value}
    scheme, _, credentials = value.partition(" ")
    if credentials.strip() and scheme.isalpha():
        credentials = credentials.strip()
        parts.add(credentials)
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            decoded = ""
        if decoded:
            parts.add(decoded)
            parts.add(decoded.partition(":")[2])
    return {part for part in parts if len(part) >= MIN_SECRET_CHARS or part == value}


class Redactor:
    """Removes every form of a set of secret values from texts (see ``secret_forms``)."""

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            for part in credential_parts(value):
                forms |= secret_forms(part)
        # Longest first: a form that contains another is removed whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def text(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def cut(self, text: str, limit: int) -> str:
        """Redact, then keep the first ``limit`` characters."""
        return self.text(text)[:limit]
