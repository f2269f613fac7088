"""Latency measurement: warm up, then time single calls until both a minimum count and a minimum
time are reached; report the median, p90, mean and spread of the per-call times."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TimingConfig", "measure", "summarize"]


class TimingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup: int = Field(10, ge=0, description="untimed calls before measuring")
    min_iters: int = Field(50, ge=5, description="at least this many timed calls")
    min_time_s: float = Field(0.5, ge=0, description="and at least this much timed time")
    max_iters: int = Field(5000, ge=5, description="stop after this many timed calls")


def measure(fn: Callable[[], Any], cfg: TimingConfig) -> dict[str, float]:
    """Time `fn()` call by call; results in milliseconds."""
    for _ in range(cfg.warmup):
        fn()
    samples: list[int] = []
    start = time.perf_counter_ns()
    while len(samples) < cfg.max_iters and (len(samples) < cfg.min_iters or time.perf_counter_ns() - start < cfg.min_time_s * 1e9):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return summarize(np.asarray(samples) / 1e6)


def summarize(ms: np.ndarray) -> dict[str, float]:
    p50, p90 = np.percentile(ms, [50, 90])
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if len(ms) > 1 else 0.0
    return {"p50": float(p50), "p90": float(p90), "mean": mean, "std": std, "cv": std / mean if mean else 0.0, "n": len(ms)}
