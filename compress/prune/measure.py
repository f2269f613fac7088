"""Latency of an in-memory model on the run's target (the whole target: threads, graph optimization
level, precision), through a temporary ONNX export, and where that time goes (the runtime's own
per-node profile)."""

from __future__ import annotations

import contextlib
import functools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from compress.bench import TimingConfig, make_runner, measure
from compress.context import RunContext

__all__ = ["latency_of", "interleaved", "speedup", "dominant_nodes"]


def _batch(ctx: RunContext, batch_size: int) -> np.ndarray:
    return ctx.task.full_batch(batch_size).numpy()


def _exported(model: nn.Module, ctx: RunContext, folder: str) -> Path:
    from compress.deploy import export_onnx

    path = Path(folder) / "model.onnx"
    was_training = model.training
    model.eval()
    try:
        export_onnx(model, ctx.task.example_input(2), path, opset=17, exporter="legacy")
    finally:
        model.train(was_training)
    return path


def latency_of(model: nn.Module, ctx: RunContext, batch_size: int, timing: TimingConfig) -> dict[str, float]:
    """p50/p90/... in milliseconds of one call at `batch_size`, on the run's target."""
    runner = make_runner(ctx.target)
    x = _batch(ctx, batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        predict = runner.load(_exported(model, ctx, tmp))
        return measure(lambda: predict(x), timing)


def interleaved(models: list[nn.Module], ctx: RunContext, batch_size: int, timing: TimingConfig) -> list[dict[str, Any]]:
    """Latency statistics of each model at `batch_size` on the run's target, timed in alternating rounds
    (as the benchmark does) so that all see the same machine state; each with its per-round p50s."""
    from compress.bench.timing import sample_round, summarize, warm_up

    runner = make_runner(ctx.target)
    x = _batch(ctx, batch_size)
    with contextlib.ExitStack() as stack:
        folders = [stack.enter_context(tempfile.TemporaryDirectory()) for _ in models]
        calls = [functools.partial(runner.load(_exported(m, ctx, f)), x) for m, f in zip(models, folders, strict=True)]
        for call in calls:
            warm_up(call, timing)
        rounds: list[list[np.ndarray]] = [[] for _ in calls]
        for _ in range(timing.rounds):
            for samples, call in zip(rounds, calls, strict=True):
                samples.append(sample_round(call, timing))
    return [summarize(r, batch_size=batch_size, noise_threshold=timing.noise_threshold) for r in rounds]


def speedup(before: dict[str, Any], after: dict[str, Any]) -> float:
    """The median of the per-round p50 ratios of two interleaved measurements."""
    return float(np.median(np.asarray(before["round_p50"]) / np.asarray(after["round_p50"])))


def dominant_nodes(model: nn.Module, ctx: RunContext, batch_size: int, top: int = 5) -> list[dict[str, Any]]:
    """The graph nodes that take most of the run time, as ONNX Runtime's profiler sees them."""
    runner = make_runner(ctx.target)
    profile = getattr(runner, "profile", None)
    if profile is None:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        nodes = profile(_exported(model, ctx, tmp), _batch(ctx, batch_size))
    total = sum(n["ms"] for n in nodes) or 1.0
    return [{**n, "share": n["ms"] / total} for n in sorted(nodes, key=lambda n: -n["ms"])[:top]]
