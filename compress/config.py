"""The base class of every stage config."""

from __future__ import annotations

import math
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "as_recorded",
    "no_booleans_as_numbers",
    "StageConfig",
    "ModelName",
    "NAME_PATTERN",
    "BatchSize",
    "BatchSizes",
    "MAX_BATCH",
    "SevenBitWeights",
    "Agreement",
    "Acceptance",
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


class Acceptance(StageConfig):
    """A recipe's `acceptance` section: what the shipped model must keep and gain against `reference`.
    A run that misses a gate exits 1 and writes `acceptance.xml` (JUnit) in the run folder."""

    reference: ModelName = Field("teacher", description="the model the others are compared with")
    model: ModelName | None = Field(None, description="the model the gates check; default: the recommended one")
    max_metric_drop: float | None = Field(
        None, ge=0, description="largest tolerated metric drop in metric units (accuracy: 0.005 = half a point; mse: a rise)"
    )
    min_speedup: float | dict[int, float] | None = Field(
        None,
        description="x faster than the reference (p50): one number for every benchmarked batch size, or {batch: x}; "
        "the gate passes when the lower bound of the speedup's 95% interval over the benchmark's rounds reaches it, "
        "not the point estimate alone",
    )
    min_param_reduction: float | None = Field(None, gt=0, description="x fewer parameters than the reference")
    min_size_reduction: float | None = Field(None, gt=0, description="x smaller ONNX file than the reference")
    target: str | None = Field(None, description="the benchmark target the latencies come from; default: the run's")

    @field_validator("min_speedup", mode="before")
    @classmethod
    def _speedups(cls, value: Any) -> Any:
        if isinstance(value, dict):  # JSON (the manifest) writes the batch sizes as strings
            value = {int(b) if isinstance(b, str) and b.isdigit() else b: x for b, x in value.items()}
        wanted = value.items() if isinstance(value, dict) else [(None, value)] if value is not None else []
        for batch, x in wanted:
            if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= MAX_BATCH):
                raise ValueError(f"batch size {batch!r} is not a whole number from 1 to {MAX_BATCH}; write {{1: 4, 32: 10}}")
            if isinstance(x, bool) or not isinstance(x, int | float) or not 0 < x < math.inf:
                raise ValueError(f"{x!r} is not a positive number (x faster than the reference)")
        return value

    def speedup_wanted(self, batches: list[str]) -> dict[str, float]:
        if self.min_speedup is None:
            return {}
        if isinstance(self.min_speedup, dict):
            return {str(b): x for b, x in self.min_speedup.items()}
        return dict.fromkeys(batches, self.min_speedup)


def as_recorded(config: BaseModel, dumped: dict[str, Any], recorded: dict[str, Any] | None) -> dict[str, Any]:
    """`dumped` (config's JSON dump) without the settings `recorded` (an earlier run's dump of the same
    stage) lacks and that hold their default: options added to edge-compress since that run default to
    what it did, so they must not make its finished stages look changed. Nested configs are compared
    the same way."""
    if recorded is None:
        return dumped
    kept: dict[str, Any] = {}
    for key, value in dumped.items():
        field = type(config).model_fields.get(key)
        if key not in recorded:
            if field is not None and not field.is_required() and _dumped(field.get_default(call_default_factory=True)) == value:
                continue
            kept[key] = value
            continue
        inner = getattr(config, key, None)
        nested = isinstance(inner, BaseModel) and isinstance(value, dict) and isinstance(recorded[key], dict)
        kept[key] = as_recorded(inner, value, recorded[key]) if nested else value
    return kept


def _dumped(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value
