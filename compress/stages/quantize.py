"""`quantize`: post-training INT8 quantization of exported models with ONNX Runtime (static, calibrated
on real task samples, or dynamic), checked where it is made: onnx.checker, a run in ONNX Runtime,
agreement with the FP32 ONNX model on the test split, and the operators ORT still runs in float."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from compress.bench.runners import OrtCpuRunner
from compress.config import ModelName, StageConfig
from compress.context import ModelRecord, RunContext
from compress.errors import ArtifactError, RecipeError
from compress.stages.base import Stage, register_stage

__all__ = ["Quantize", "QuantizeConfig", "CalibrationConfig"]


class CalibrationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["minmax", "entropy", "percentile"] = Field("minmax", description="how activation ranges are set from the samples")
    samples: int = Field(256, ge=1, description="calibration samples, taken in order from the split")
    split: Literal["train", "val"] = Field("train", description="where calibration samples come from (never test)")


class QuantizeConfig(StageConfig):
    models: list[ModelName] | None = Field(None, description="exported models to quantize; default: every exported FP32 model")
    mode: Literal["static", "dynamic"] = Field(
        "static", description="static: calibrated activations (CNNs); dynamic: Linear/recurrent-heavy models"
    )
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig, description="static mode: method, samples, split")
    per_channel: bool = Field(True, description="one weight scale per output channel")
    activations: Literal["uint8", "int8"] = Field("uint8", description="activation type; uint8 fuses fully on x86 CPUs (see README)")
    exclude_nodes: list[str] = Field(default_factory=list, description="ONNX node names kept in float")
    exclude_op_types: list[str] = Field(default_factory=list, description="ONNX op types kept in float, e.g. [Gemm]")
    suffix: str = Field("_int8", pattern=r"^[A-Za-z0-9_.-]+$", description="the quantized model is <name><suffix>")


@register_stage
class Quantize(Stage):
    """Quantize exported models to INT8 with ONNX Runtime; check, compare with FP32, list float-only operators."""

    name = "quantize"
    Config = QuantizeConfig

    def requires(self) -> list[str]:
        return list(self.cfg.models or [])

    def provides(self) -> list[str]:
        return [f"{m}{self.cfg.suffix}" for m in self.cfg.models or []]

    def run(self, ctx: RunContext, cfg: QuantizeConfig) -> RunContext:
        names = cfg.models or [n for n, r in ctx.models.items() if r.onnx and "quant" not in r.metrics]
        if not names:
            raise RecipeError("quantize: no exported model to quantize", fix="add an export stage before quantize")
        calibration = ctx.task.example_input(cfg.calibration.samples, split=cfg.calibration.split).numpy() if cfg.mode == "static" else None
        for name in names:
            self._quantize(ctx, cfg, name, calibration)
        return ctx

    def _quantize(self, ctx: RunContext, cfg: QuantizeConfig, name: str, calibration: np.ndarray | None) -> None:
        import onnx

        from compress.quant import float_ops, quantize_onnx

        record = ctx.record(name)
        if not record.onnx:
            raise RecipeError(f"quantize: model {name!r} has no ONNX file", fix="export it in an earlier stage")
        out_name = f"{name}{cfg.suffix}"
        dest = ctx.out(f"{out_name}.onnx")
        quantize_onnx(
            ctx.path(record.onnx),
            dest,
            mode=cfg.mode,
            calibration=calibration,
            method=cfg.calibration.method,
            per_channel=cfg.per_channel,
            activations=cfg.activations,
            exclude_nodes=cfg.exclude_nodes,
            exclude_op_types=cfg.exclude_op_types,
        )
        try:
            onnx.checker.check_model(str(dest), full_check=True)
        except onnx.checker.ValidationError as err:
            raise ArtifactError(f"quantized {dest.name} fails onnx.checker: {str(err).splitlines()[0]}") from None
        runner = OrtCpuRunner(ctx.target.num_threads)
        fp32, int8 = runner.load(ctx.path(record.onnx)), runner.load(dest)
        x = ctx.task.example_input(len(ctx.task.test), split="test").numpy()
        a, b = fp32(x), int8(x)
        agreement = {"samples": len(x), "max_abs_diff": float(np.abs(a - b).max())}
        if ctx.task.kind == "classification":
            agreement["top1_agreement"] = float(np.mean(a.argmax(1) == b.argmax(1)))
        ops = float_ops(dest, ctx.target.num_threads)
        if not set(ops["integer_ops"]) - {"QuantizeLinear", "DequantizeLinear"}:
            dest.unlink()
            why = (
                "ONNX Runtime's dynamic mode covers MatMul, Attention, LSTM/GRU and Gather, not Gemm"
                if cfg.mode == "dynamic"
                else "no operator was quantized"
            )
            raise RecipeError(
                f"quantize: {name!r} would run entirely in float ({why})",
                fix="use mode: static" if cfg.mode == "dynamic" else "check exclude_nodes / exclude_op_types",
            )
        quant = {"source": name, "mode": cfg.mode, "calibration": cfg.calibration.model_dump() if cfg.mode == "static" else None}
        quant |= {"per_channel": cfg.per_channel, "activations": cfg.activations, "vs_fp32_onnx": agreement, **ops}
        ctx.put_model(
            ModelRecord(
                name=out_name,
                stage=ctx.stage_id,
                spec=record.spec,
                checkpoint=record.checkpoint,
                onnx=ctx.relative(dest),
                metrics={"quant": quant},
            )
        )
        ctx.metrics[out_name] = quant
        left = ", ".join(f"{op} x{c}" for op, c in ops["float_ops"].items()) or "none"
        agree = f"top-1 agreement with FP32 {agreement['top1_agreement']:.4f}, " if "top1_agreement" in agreement else ""
        ctx.log(f"  {out_name}: {ctx.relative(dest)}, {agree}float ops left: {left}")
