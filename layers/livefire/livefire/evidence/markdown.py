"""The Markdown building blocks of the reports (a drill's report.md, a campaign's report.md): the dash that stands
for nothing, and tables whose cells are escaped so no value can break a row (docs/architecture.md §8)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DASH = "—"


def markdown_cell(value: object) -> str:
    """The value as one table cell: a dash for nothing; backslashes, pipes and line breaks escaped."""
    text = DASH if value is None or value == "" else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """The lines of a Markdown table: the header, its rule, one line a row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(markdown_cell(v) for v in row) + " |" for row in rows]
    return lines
