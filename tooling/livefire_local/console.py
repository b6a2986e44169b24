"""How the CLI writes for people: a rich console that colours only a terminal without ``NO_COLOR``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

from rich.console import Console

PLAIN_WIDTH = 120  # columns when the output is not a terminal and COLUMNS is not set


def make_console(stream: TextIO, environ: Mapping[str, str] = os.environ) -> Console:
    """A console on ``stream``: colours only on a terminal without ``NO_COLOR`` (set and not empty); as wide as
    the terminal, or ``COLUMNS``, or 120 columns."""
    terminal = stream.isatty()
    width = None if terminal or environ.get("COLUMNS") else PLAIN_WIDTH
    return Console(file=stream, width=width, no_color=bool(environ.get("NO_COLOR")), highlight=False,
                   soft_wrap=False)
