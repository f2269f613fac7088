"""The base class of every stage config."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = ["StageConfig", "ModelName", "NAME_PATTERN", "BatchSize", "BatchSizes", "MAX_BATCH", "SevenBitWeights", "Agreement"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ModelName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]


MAX_BATCH = 65536
"""Beyond it a batch is a typo (an extra digit), not a setting: its inputs alone would take gigabytes."""
BatchSize = Annotated[int, Field(ge=1, le=MAX_BATCH)]


def _sizes_in_range(sizes: list[int]) -> list[int]:
    if any(not 1 <= b <= MAX_BATCH for b in sizes):
        raise ValueError(f"batch sizes must be between 1 and {MAX_BATCH}")
    return sizes


BatchSizes = Annotated[list[int], Field(min_length=1), AfterValidator(_sizes_in_range)]
"""Batch sizes to time: at least one, each 1 to MAX_BATCH."""

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
