"""The base class of every stage config."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["StageConfig", "ModelName", "NAME_PATTERN"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ModelName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
"""A model's name in a run: also its file name (`<stage>/<name>.pt`), so letters, digits, `_ . -` only."""


class StageConfig(BaseModel):
    """Unknown keys are errors; configs are frozen, plain JSON-able data (hashed for resume)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
