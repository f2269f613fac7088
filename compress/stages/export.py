"""`export`: each model to ONNX with a dynamic batch axis, checked with `onnx.checker` (full check),
then run in ONNX Runtime on a real test batch and compared with PyTorch. Beyond tolerance, the stage fails."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from compress.config import ModelName, StageConfig
from compress.context import RunContext
from compress.deploy import cpu_runner, export_onnx, parity
from compress.errors import ArtifactError, RecipeError
from compress.records import Agreement
from compress.stages.base import Planned, Stage, need, register_stage

__all__ = ["Export", "ExportConfig"]


MAX_OPSET = {"legacy": 20, "dynamo": 23}
"""The newest opset each torch.onnx exporter of torch 2.13 writes (torch.onnx._constants)."""


class ExportConfig(StageConfig):
    models: list[ModelName] | None = Field(
        None, description="FP32 models to export; default: every FP32 model in the run (INT8 models are ONNX already)"
    )
    opset: int = Field(17, ge=13, description="ONNX opset (13 to 20 with the legacy exporter, to 23 with dynamo)")
    exporter: Literal["legacy", "dynamo"] = Field("legacy", description="torch.onnx exporter (legacy is faster; both match PyTorch)")
    atol: float = Field(1e-4, gt=0, description="fail if any output differs from PyTorch by more than this")
    min_agreement: float = Field(0.99, ge=0, le=1, description="fail if top-1 agreement with PyTorch is lower (classification)")
    parity_samples: int = Field(256, ge=1, description="test samples compared between PyTorch and ONNX Runtime")

    @model_validator(mode="after")
    def _opset_the_exporter_writes(self) -> ExportConfig:
        if self.opset > MAX_OPSET[self.exporter]:
            raise ValueError(f"opset {self.opset}: the {self.exporter} exporter writes opsets 13 to {MAX_OPSET[self.exporter]}")
        return self


@register_stage
class Export(Stage):
    """Export models to ONNX (dynamic batch), run onnx.checker, compare with PyTorch on real test inputs."""

    name = "export"
    Config = ExportConfig

    def requires(self) -> list[str]:
        return list(self.cfg.models or [])

    def plan(self, models: dict[str, Planned]) -> None:
        names = self.cfg.models or [n for n, m in models.items() if m.kind == "fp32" and m.torch]
        if not names:
            raise RecipeError("no FP32 model to export at this point", fix="add a train, load or distill stage before export")
        for name in names:
            if need(models, name, torch=models.get(name, Planned()).kind != "int8").kind == "int8":
                raise RecipeError(
                    f"model {name!r} is INT8 and already has its ONNX file; exporting its PyTorch form would write a float model under its name",
                    fix=f"remove {name!r} from export.models",
                )
            models[name].onnx = True

    def run(self, ctx: RunContext, cfg: ExportConfig) -> RunContext:
        runner = cpu_runner(ctx.target)
        for name in cfg.models or [n for n, r in ctx.models.items() if r.kind == "fp32" and r.spec.onnx is None]:
            model = ctx.module(name).eval()
            path = ctx.out(f"{name}.onnx")
            export_onnx(model, ctx.task.example_input(2), path, opset=cfg.opset, exporter=cfg.exporter)
            batch = ctx.task.example_input(cfg.parity_samples)
            gap = parity(model, runner.load(path), batch, classification=ctx.task.kind == "classification")
            _enforce(name, gap, cfg)
            ctx.update_model(name, onnx=ctx.relative(path), size_bytes=path.stat().st_size, parity=gap)
            ctx.log(f"  {name}: {ctx.relative(path)}, max |ONNX - PyTorch| {gap.max_abs_diff:.2e}")
        return ctx


def _enforce(name: str, gap: Agreement, cfg: ExportConfig) -> None:
    if not math.isfinite(gap.max_abs_diff):
        raise ArtifactError(
            f"export of {name!r}: the model's outputs are not finite (NaN or inf) on real test inputs",
            fix="retrain it: its weights or its arithmetic overflowed",
        )
    if gap.max_abs_diff > cfg.atol:
        raise ArtifactError(
            f"export of {name!r}: ONNX Runtime differs from PyTorch by {gap.max_abs_diff:.3g} (atol {cfg.atol:g})",
            fix="raise export.atol if this gap is acceptable, or try exporter: dynamo",
        )
    if gap.top1_agreement is not None and gap.top1_agreement < cfg.min_agreement:
        raise ArtifactError(
            f"export of {name!r}: top-1 agreement with PyTorch {gap.top1_agreement:.3f} < min_agreement {cfg.min_agreement}",
        )
