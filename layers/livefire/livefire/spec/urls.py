"""The one URL validator of the spec: every endpoint, entrypoint, webhook and telemetry URL goes through ``check_url``.

A URL is ``http(s)://host[:port][/path][?query]``: no whitespace, a host that IDNA can encode, a valid port, and
no credentials (``user:password@`` is refused: a secret in a spec would be kept wherever the spec is). Error
messages show the URL through ``redact_url``, so a refused URL's query values are not repeated either.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

from livefire.redaction import redact_url

MAX_URL_CHARS = 2048
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


def _shown(url: str) -> str:
    text = redact_url(url)
    return repr(text if len(text) <= 120 else text[:117] + "...")


def check_url(url: str) -> str:
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"must be at most {MAX_URL_CHARS} characters long (got {len(url)})")
    if not _URL.match(url):
        raise ValueError(f"must be an http(s) URL like https://host/path (got {_shown(url)})")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a bad port or IPv6 literal
        raise ValueError(f"is not a valid URL: {exc} (got {_shown(url)})") from None
    if "@" in parts.netloc:
        raise ValueError("must not carry credentials (user:password@): a webhook's go in its headersSecret")
    if not parts.hostname or port == 0:
        raise ValueError(f"must name a host and a port from 1 to 65535 (got {_shown(url)})")
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        raise ValueError(f"has a host name that cannot be encoded (got {_shown(url)})") from None
    return url


def _no_query(url: str) -> str:
    if urlsplit(url).query or "#" in url:
        raise ValueError("must not carry a query string or fragment: give parameters in query, secret ones in the "
                         "headersSecret")
    return url


def endpoint_of(url: str) -> tuple[str, str, int, str]:
    """What a URL probes, ignoring the query: scheme, host (lower case), port (default filled in) and path."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path or "/"


HttpUrl = Annotated[str, AfterValidator(check_url)]
# A webhook URL carries no query: a call's parameters are given apart (those that are not secret in its query,
# secret ones in its headersSecret), so the URL and the call can be stored and shown as they are.
WebhookUrl = Annotated[HttpUrl, AfterValidator(_no_query)]
