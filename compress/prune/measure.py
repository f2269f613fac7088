"""Latency of an in-memory model on the run's target (the whole target: threads, graph optimization
level, precision), through a temporary ONNX export, and where that time goes (the runtime's own
per-node profile)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from compress.bench import TimingConfig, make_runner, measure
from compress.context import RunContext

__all__ = ["latency_of", "speedup_of", "dominant_nodes"]


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


def speedup_of(before: nn.Module, after: nn.Module, ctx: RunContext, batch_size: int, timing: TimingConfig, rounds: int = 7) -> float:
    """p50(before) / p50(after), timed in alternating rounds so that both see the same machine state;
    the median of the per-round ratios."""
    runner = make_runner(ctx.target)
    x = _batch(ctx, batch_size)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        first, second = runner.load(_exported(before, ctx, a)), runner.load(_exported(after, ctx, b))
        ratios = [measure(lambda: first(x), timing)["p50"] / measure(lambda: second(x), timing)["p50"] for _ in range(rounds)]
    return float(np.median(ratios))


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
