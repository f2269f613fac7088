"""Schedules for temperature and loss weights: pure functions of training progress in [0, 1],
plus an adaptive weight driven by how close the student's validation metric is to the teacher's."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Schedule", "constant", "linear", "cosine", "step", "adaptive", "endpoints", "value_of"]


def constant(progress: float, start: float, end: float) -> float:
    return start


def linear(progress: float, start: float, end: float) -> float:
    return start + (end - start) * _clip(progress)


def cosine(progress: float, start: float, end: float) -> float:
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * _clip(progress)))


def step(progress: float, start: float, end: float, steps: int) -> float:
    """`steps` equal plateaus from `start` to `end`: the first at the start, the last reached at (steps-1)/steps."""
    level = min(int(_clip(progress) * steps), steps - 1)
    return start + (end - start) * level / (steps - 1)


def adaptive(gap: float | None, initial_gap: float | None, start: float, end: float) -> float:
    """`start` while the student is as far from the teacher as at first, moving to `end` as the gap closes."""
    if gap is None or initial_gap is None:
        return start
    if gap <= 0 or initial_gap <= 0:
        return end  # caught up (or the teacher is behind): no more pull towards it
    return linear(1.0 - _clip(gap / initial_gap), start, end)


def _clip(x: float) -> float:
    return min(max(x, 0.0), 1.0)


class Schedule(BaseModel):
    """A value that changes over training: `{kind: cosine, start: 8, end: 1}`.

    kinds: constant, linear, cosine, step (`steps` plateaus), adaptive (a distillation weight that goes
    from `start` to `end` as the student's validation metric approaches the teacher's).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["constant", "linear", "cosine", "step", "adaptive"]
    start: float
    end: float | None = Field(None, description="final value; required except for constant")
    steps: int = Field(4, ge=2, description="plateaus, for kind: step")

    @model_validator(mode="after")
    def _needs_end(self) -> Schedule:
        if self.kind != "constant" and self.end is None:
            raise ValueError(f"a {self.kind} schedule needs 'end'")
        return self

    @property
    def final(self) -> float:
        return self.start if self.end is None else self.end

    def at(self, progress: float, gap: float | None = None, initial_gap: float | None = None) -> float:
        end = self.final
        if self.kind == "step":
            return step(progress, self.start, end, self.steps)
        if self.kind == "adaptive":
            return adaptive(gap, initial_gap, self.start, end)
        return {"constant": constant, "linear": linear, "cosine": cosine}[self.kind](progress, self.start, end)


def endpoints(setting: float | Schedule) -> tuple[float, ...]:
    """The values a setting starts and ends at; every kind of schedule stays between the two."""
    return (setting,) if isinstance(setting, int | float) else (setting.start, setting.final)


def value_of(setting: float | Schedule, progress: float, gap: float | None = None, initial_gap: float | None = None) -> float:
    """A recipe value that is either a number or a `Schedule`, at this point of training."""
    return setting if isinstance(setting, int | float) else setting.at(progress, gap, initial_gap)
