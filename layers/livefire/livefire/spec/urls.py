"""The one URL validator of the spec: every endpoint, entrypoint and webhook URL goes through it."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

_URL = r"^https?://[^\s/]+(/\S*)?$"

HttpUrl = Annotated[str, Field(pattern=_URL)]
