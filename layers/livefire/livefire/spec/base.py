"""The base of every spec section: camelCase keys, unknown keys rejected, immutable."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

_SLUG = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"

Slug = Annotated[str, Field(pattern=_SLUG)]


class SpecModel(BaseModel):
    """Base of every spec section: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )
