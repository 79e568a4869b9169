"""The results document's JSON building blocks: its schema version, the number types every
field uses, and the base model all its parts share (unknown fields kept, `to_json`)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict

SCHEMA_VERSION = 2

# A finite JSON number (booleans and strings refused); an int stays an int.
Num = Annotated[int, Strict()] | Annotated[float, Strict(), Field(allow_inf_nan=False)]
Count = Annotated[int, Strict(), Field(ge=0)]


class JsonModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=False)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


def num(value: Any) -> float | None:
    """A finite JSON number as a float; None for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
