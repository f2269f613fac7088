"""The base class of every stage config."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = ["StageConfig", "ModelName", "NAME_PATTERN", "BatchSizes", "SevenBitWeights", "Agreement"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ModelName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]


def _positive_sizes(sizes: list[int]) -> list[int]:
    if any(b < 1 for b in sizes):
        raise ValueError("batch sizes must be >= 1")
    return sizes


BatchSizes = Annotated[list[int], Field(min_length=1), AfterValidator(_positive_sizes)]
"""Batch sizes to time: at least one, each >= 1."""

SevenBitWeights = Annotated[
    bool | None,
    Field(description="7-bit weights (|w| <= 64); default: from target.cpu (on for x86-avx2 and x86-avx512, whose kernels saturate)"),
]
Agreement = Annotated[float, Field(ge=0, le=1)]
"""A top-1 agreement bound, 0 to 1."""
"""A model's name in a run: also its file name (`<stage>/<name>.pt`), so letters, digits, `_ . -` only."""


class StageConfig(BaseModel):
    """Unknown keys are errors; configs are frozen, plain JSON-able data (hashed for resume)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
