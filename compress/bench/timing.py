"""Latency measurement: warm up, then time single calls in rounds until each round has both a minimum
count and a minimum time; summarize all calls (median, p90, p99, mean, spread, throughput) and judge
stability from the spread of the round medians, so a noisy measurement is flagged, not reported as if
it were clean."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from compress.bench.runners import Clock, wall_clock

__all__ = ["TimingConfig", "measure", "measure_rounds", "sample_round", "sample_rounds", "warm_up", "summarize", "robust_cv", "QUANTILES"]

QUANTILES = np.linspace(0, 100, 41)
"""Percentiles kept for distribution plots."""


class TimingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    warmup: int = Field(10, ge=0, description="untimed calls before measuring")
    warmup_time_s: float = Field(0.05, ge=0, description="and at least this much untimed time (caches, clocks, lazy init settle)")
    rounds: int = Field(5, ge=1, description="measuring rounds; their medians show how stable the result is")
    min_iters: int = Field(20, ge=5, description="at least this many timed calls per round")
    min_time_s: float = Field(0.1, ge=0, le=600, description="and at least this much timed time per round")
    max_iters: int = Field(5000, ge=5, description="at most this many timed calls per round")
    fresh_sessions: bool = Field(True, description="load the model anew for each round (loads of one file can differ by 10-40% in speed)")
    noise_threshold: float = Field(
        0.05, gt=0, description="flag the measurement noisy when round medians vary more than this (coefficient of variation)"
    )


def sample_round(call: Callable[[], Any], cfg: TimingConfig, clock: Clock = wall_clock) -> np.ndarray:
    """One round of per-call times in milliseconds (no warm-up)."""
    samples: list[int] = []
    budget = cfg.min_time_s * 1e9
    spent = 0
    while len(samples) < cfg.max_iters and (len(samples) < cfg.min_iters or spent < budget):
        samples.append(clock(call))
        spent += samples[-1]
    return np.asarray(samples, dtype=float) / 1e6


def warm_up(call: Callable[[], Any], cfg: TimingConfig) -> None:
    calls, start = 0, time.perf_counter()
    while calls < cfg.warmup or time.perf_counter() - start < cfg.warmup_time_s:
        call()
        calls += 1


def sample_rounds(call: Callable[[], Any], cfg: TimingConfig, clock: Clock = wall_clock) -> list[np.ndarray]:
    warm_up(call, cfg)
    return [sample_round(call, cfg, clock) for _ in range(cfg.rounds)]


def measure_rounds(prepare: Callable[[], tuple[Callable[[], Any], Clock]], cfg: TimingConfig, *, batch_size: int = 1) -> dict[str, Any]:
    """Like `measure`, but each round gets its call (and clock) from `prepare()`, e.g. from a fresh load;
    every round is warmed up."""
    rounds = []
    for _ in range(cfg.rounds):
        call, clock = prepare()
        warm_up(call, cfg)
        rounds.append(sample_round(call, cfg, clock))
    return summarize(rounds, batch_size=batch_size, noise_threshold=cfg.noise_threshold)


def measure(call: Callable[[], Any], cfg: TimingConfig, *, clock: Clock = wall_clock, batch_size: int = 1) -> dict[str, Any]:
    """Time `call()` (after `cfg.warmup` untimed calls); statistics in milliseconds, see `summarize`."""
    rounds = sample_rounds(call, cfg, clock)
    return summarize(rounds, batch_size=batch_size, noise_threshold=cfg.noise_threshold)


def _blocks(rounds: list[np.ndarray]) -> list[np.ndarray]:
    """Round samples, or five consecutive blocks of the only round, for the stability check."""
    return rounds if len(rounds) > 1 else [b for b in np.array_split(rounds[0], 5) if len(b)]


def robust_cv(values: list[float]) -> float:
    """Spread of `values` relative to their median, from the median absolute deviation (scaled to match
    the standard deviation for normal data), so one disturbed round does not flag a whole measurement."""
    from scipy.stats import median_abs_deviation

    v = np.asarray(values, dtype=float)
    center = float(np.median(v)) if len(v) else 0.0
    return float(median_abs_deviation(v, scale="normal") / center) if len(v) > 1 and center > 0 else 0.0


def summarize(rounds: list[np.ndarray] | np.ndarray, *, batch_size: int = 1, noise_threshold: float = 0.05) -> dict[str, Any]:
    """p50/p90/p99/mean/std/cv over every call, throughput (samples per second over the timed time),
    the per-round medians, and `noisy` when those medians vary by more than `noise_threshold`."""
    rounds = [np.asarray(rounds, dtype=float)] if isinstance(rounds, np.ndarray) else [np.asarray(r, dtype=float) for r in rounds]
    ms = np.concatenate(rounds)
    p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if len(ms) > 1 else 0.0
    stability = robust_cv([float(np.median(b)) for b in _blocks(rounds)])
    return {
        "p50": p50,
        "p90": p90,
        "p99": p99,
        "mean": mean,
        "std": std,
        "cv": std / mean if mean else 0.0,
        "n": len(ms),
        "throughput": batch_size * len(ms) / (ms.sum() / 1e3) if ms.sum() > 0 else 0.0,
        "round_p50": [float(np.median(r)) for r in rounds],
        "round_cv": stability,
        "noisy": stability > noise_threshold,  # robust CV of the round medians
        "quantiles": [float(f"{q:.5g}") for q in np.percentile(ms, QUANTILES)],
    }
