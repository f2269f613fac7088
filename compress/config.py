"""The base class of every stage config."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "no_booleans_as_numbers",
    "StageConfig",
    "ModelName",
    "NAME_PATTERN",
    "BatchSize",
    "BatchSizes",
    "MAX_BATCH",
    "SevenBitWeights",
    "Agreement",
]

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

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, data: Any) -> Any:
        return no_booleans_as_numbers(cls, data)


def no_booleans_as_numbers(model: type[BaseModel], data: Any) -> Any:
    """For a `mode="before"` validator: `epochs: true` is a typo, not 1 (pydantic's lax mode would take it)."""
    if isinstance(data, dict):
        for key, value in data.items():
            field = model.model_fields.get(key)
            if isinstance(value, bool) and field is not None and _numeric(field.annotation):
                raise ValueError(f"{key}: {str(value).lower()} is not a number")
    return data


def _numeric(annotation: Any) -> bool:
    """int or float, possibly `| None` or Annotated."""
    args = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) in (Union, UnionType) else [annotation]
    base = [get_args(a)[0] if get_origin(a) is Annotated else a for a in args]
    return bool(base) and all(b in (int, float) for b in base)
