"""`export`: each model to ONNX with a dynamic batch axis, checked with `onnx.checker` (full check),
then run in ONNX Runtime on a real test batch and compared with PyTorch. Beyond tolerance, the stage fails."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from compress.bench.runners.ort import OrtCpuRunner
from compress.config import ModelName, StageConfig
from compress.context import RunContext
from compress.errors import ArtifactError
from compress.fsio import atomic_path
from compress.stages.base import Stage, register_stage

__all__ = ["Export", "export_onnx", "parity", "agreement"]


class ExportConfig(StageConfig):
    models: list[ModelName] | None = Field(None, description="models to export; default: every model in the run")
    opset: int = Field(17, ge=13, description="ONNX opset")
    exporter: Literal["legacy", "dynamo"] = Field("legacy", description="torch.onnx exporter (legacy is faster; both match PyTorch)")
    atol: float = Field(1e-4, gt=0, description="fail if any output differs from PyTorch by more than this")
    min_agreement: float = Field(0.99, ge=0, le=1, description="fail if top-1 agreement with PyTorch is lower (classification)")
    parity_samples: int = Field(256, ge=1, description="test samples compared between PyTorch and ONNX Runtime")


@register_stage
class Export(Stage):
    """Export models to ONNX (dynamic batch), run onnx.checker, compare with PyTorch on real test inputs."""

    name = "export"
    Config = ExportConfig

    def requires(self) -> list[str]:
        return list(self.cfg.models or [])

    def run(self, ctx: RunContext, cfg: ExportConfig) -> RunContext:
        runner = OrtCpuRunner(ctx.target.num_threads)
        for name in cfg.models or list(ctx.models):
            model = ctx.module(name).eval()
            path = ctx.out(f"{name}.onnx")
            export_onnx(model, ctx.task.example_input(2), path, opset=cfg.opset, exporter=cfg.exporter)
            batch = ctx.task.example_input(cfg.parity_samples)
            gap = parity(model, runner.load(path), batch, classification=ctx.task.kind == "classification")
            _enforce(name, gap, cfg)
            ctx.update_model(name, onnx=ctx.relative(path), metrics={"parity": gap})
            ctx.metrics[name] = gap
            ctx.log(f"  {name}: {ctx.relative(path)}, max |ONNX - PyTorch| {gap['max_abs_diff']:.2e}")
        return ctx


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path, *, opset: int, exporter: str) -> None:
    """Write `model` as ONNX with a dynamic batch axis and check it; the file appears only if both succeed."""
    import onnx

    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs: dict[str, Any] = {"input_names": ["input"], "output_names": ["output"], "opset_version": opset}
        if exporter == "dynamo":
            kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
        else:
            kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # its fused kernel has no ONNX form; the plain path exports
        try:
            torch.onnx.export(model, (example,), str(tmp), dynamo=exporter == "dynamo", **kwargs)
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except onnx.checker.ValidationError as err:
            raise ArtifactError(f"exported {path.name} fails onnx.checker: {str(err).splitlines()[0]}") from None


def parity(model: nn.Module, predict, batch: torch.Tensor, *, classification: bool) -> dict[str, float]:
    """Compare PyTorch and ONNX Runtime outputs on `batch`: max/mean absolute difference, top-1 agreement."""
    with torch.no_grad():
        expected = model(batch).numpy()
    got = predict(batch.numpy())
    return {**agreement(expected, got, classification=classification), "mean_abs_diff": float(np.abs(expected - got).mean())}


def agreement(a: np.ndarray, b: np.ndarray, *, classification: bool) -> dict[str, float]:
    """How closely two models' outputs on the same inputs agree: max absolute difference, top-1 agreement."""
    result = {"samples": len(a), "max_abs_diff": float(np.abs(a - b).max())}
    if classification:
        result["top1_agreement"] = float(np.mean(a.argmax(1) == b.argmax(1)))
    return result


def _enforce(name: str, gap: dict[str, float], cfg: ExportConfig) -> None:
    if gap["max_abs_diff"] > cfg.atol:
        raise ArtifactError(
            f"export of {name!r}: ONNX Runtime differs from PyTorch by {gap['max_abs_diff']:.3g} (atol {cfg.atol:g})",
            fix="raise export.atol if this gap is acceptable, or try exporter: dynamo",
        )
    if gap.get("top1_agreement", 1.0) < cfg.min_agreement:
        raise ArtifactError(
            f"export of {name!r}: top-1 agreement with PyTorch {gap['top1_agreement']:.3f} < min_agreement {cfg.min_agreement}",
        )
