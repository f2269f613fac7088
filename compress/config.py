"""The base class of every stage config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StageConfig"]


class StageConfig(BaseModel):
    """Unknown keys are errors; configs are frozen, plain JSON-able data (hashed for resume)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
