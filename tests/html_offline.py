"""Find everything in an HTML page that could make a browser fetch something (or run a script)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlparse

URL_ATTRIBUTES = {"src", "href", "xlink:href", "action", "formaction", "poster", "data", "srcset", "background",
                  "ping", "manifest", "codebase", "cite", "longdesc"}
FETCHING_TAGS = {"script", "link", "iframe", "frame", "object", "embed", "img", "video", "audio", "source",
                 "track", "image", "use", "feimage", "base", "meta"}
_CSS_FETCH = re.compile(r"@import|url\s*\(", re.IGNORECASE)


def _leaves_the_page(value: str) -> bool:
    """Any scheme (http:, https:, data:, javascript:, file:) or a protocol-relative //host reference."""
    value = value.strip()
    return bool(urlparse(value).scheme) or value.startswith("//") or value.startswith("\\\\")


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        harmless_meta = tag == "meta" and {name for name, _ in attrs} <= {"charset", "name", "content"}
        if tag in FETCHING_TAGS and not harmless_meta:  # <meta charset> and <meta name=viewport> fetch nothing
            self.problems.append(f"<{tag}> element")
        for name, value in attrs:
            if value is None:
                continue
            if name in URL_ATTRIBUTES and _leaves_the_page(value):
                self.problems.append(f"<{tag} {name}={value!r}>")
            if name == "style" and _CSS_FETCH.search(value):
                self.problems.append(f"<{tag} style={value!r}>")
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...> event handler")
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style and _CSS_FETCH.search(data):
            self.problems.append(f"<style> fetches: {_CSS_FETCH.search(data)}")


def network_references(html: str) -> list[str]:
    scanner = _Scanner()
    scanner.feed(html)
    scanner.close()
    return scanner.problems


def relative_links(html: str) -> list[str]:
    """Every href of an <a> element, in order."""
    links: list[str] = []

    class _Links(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "a":
                links.extend(value for name, value in attrs if name == "href" and value is not None)

    parser = _Links()
    parser.feed(html)
    parser.close()
    return links
