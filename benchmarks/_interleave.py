"""Latency of several ONNX models measured interleaved: in every round each model is timed once (its
p50 for that round), so all of them see the same machine state; the result is the median over rounds
and the median (and worst) per-round ratio to a baseline model."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from compress.bench import TimingConfig, make_runner, measure

TIMING = TimingConfig(warmup=20, rounds=1, min_iters=50, min_time_s=0.3, max_iters=5000)


def interleaved(paths: dict[str, Path], x: np.ndarray, *, baseline: str, rounds: int, threads: int) -> dict[str, dict[str, float]]:
    """`{name: {p50_ms, speedup, speedup_min}}`, speedup = baseline p50 / model p50 per round."""
    runner = make_runner("ort-cpu", threads)
    predicts = {n: runner.load(p) for n, p in paths.items()}
    times: dict[str, list[float]] = {n: [] for n in paths}
    for _ in range(rounds):
        for n, predict in predicts.items():
            times[n].append(measure(lambda p=predict: p(x), TIMING)["p50"])
    base = np.asarray(times[baseline])
    return {
        n: {
            "p50_ms": statistics.median(t),
            "speedup": float(np.median(base / np.asarray(t))),
            "speedup_min": float(np.min(base / np.asarray(t))),
        }
        for n, t in times.items()
    }
