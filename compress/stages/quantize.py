"""`quantize`: post-training INT8 quantization of exported models with ONNX Runtime (static, calibrated
on real task samples, or dynamic), checked where it is made: onnx.checker, a run in ONNX Runtime,
agreement with the FP32 ONNX model on the test split, and the operators ORT still runs in float."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from compress.config import Agreement, ModelName, SevenBitWeights, StageConfig
from compress.context import RunContext
from compress.data.task import TaskData
from compress.deploy import add_int8_model, check_int8, cpu_runner, describe_check
from compress.errors import DataError, RecipeError
from compress.fsio import atomic_path
from compress.quant.formats import Int8Format
from compress.quant.ort import recurrent_layers, refuse_mostly_float
from compress.records import QuantResult
from compress.stages.base import Planned, Stage, need, register_stage

__all__ = ["Quantize", "QuantizeConfig", "CalibrationConfig", "TuneConfig"]


class CalibrationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    method: Literal["minmax", "entropy", "percentile"] = Field("minmax", description="how activation ranges are set from the samples")
    samples: int = Field(256, ge=1, description="calibration samples, taken in order from the split")
    split: Literal["train", "val"] = Field("train", description="where calibration samples come from (never test)")
    file: str | None = Field(
        None,
        description="your own calibration inputs: a .npy array shaped (N, *input shape), or an .npz holding that array under "
        "the model's graph input name (numpy.savez(path, x=inputs)); the first `samples` rows are used",
    )


class TuneConfig(BaseModel):
    """Accuracy-driven tuning: stop at the first configuration within `tolerable_loss` of FP32 (validation split)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    tolerable_loss: float = Field(gt=0, description="largest accepted metric loss vs the FP32 ONNX model on the validation split")
    relative: bool = Field(False, description="tolerable_loss is a fraction of the FP32 metric (0.01 = 1%), not metric points")
    max_trials: int = Field(24, ge=1, description="give up after this many trials and keep the best one")
    max_float_layers: int = Field(3, ge=1, description="at most this many of the most sensitive layers kept in float")


class QuantizeConfig(StageConfig):
    backend: Literal["ort", "inc"] = Field(
        "ort", description="ort: onnxruntime.quantization on the exported ONNX; inc: neural-compressor PT2E on the PyTorch model"
    )
    models: list[ModelName] | None = Field(None, description="exported models to quantize; default: every exported FP32 model")
    mode: Literal["static", "dynamic"] = Field(
        "static", description="static: calibrated activations (CNNs); dynamic: Linear/recurrent-heavy models"
    )
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig, description="static mode: method, samples, split")
    per_channel: bool = Field(True, description="one weight scale per output channel")
    activations: Literal["uint8", "int8"] = Field("uint8", description="activation type; uint8 fuses fully on x86 CPUs (see README)")
    weights: Literal["int8", "uint8"] | None = Field(
        None, description="weight type; default int8 (uint8 weights, u8u8, cannot saturate on x86 without VNNI either)"
    )
    reduce_range: SevenBitWeights = None
    min_agreement: Agreement = Field(
        0.98, description="least top-1 agreement with FP32 on the test split through the target's arithmetic; below it the stage fails"
    )
    exclude_nodes: list[str] = Field(default_factory=list, description="ONNX node names kept in float")
    exclude_op_types: list[str] = Field(default_factory=list, description="ONNX op types kept in float, e.g. [Gemm]")
    suffix: str = Field("_int8", pattern=r"^[A-Za-z0-9_.-]+$", description="the quantized model is <name><suffix>")
    tune: TuneConfig | None = Field(None, description="accuracy-driven tuning, e.g. {tolerable_loss: 0.003}; static mode only")

    @model_validator(mode="after")
    def _tune_static(self) -> QuantizeConfig:
        if self.tune is not None and self.mode != "static":
            raise ValueError("tune applies to mode: static (dynamic quantization has no calibration to tune)")
        if self.backend == "inc":
            if self.weights == "uint8":
                raise ValueError("backend inc writes int8 weights: drop weights: uint8 (7-bit weights protect x86 without VNNI)")
            if self.mode != "static" or self.exclude_nodes or self.exclude_op_types:
                raise ValueError("backend inc does static quantization of the whole model: drop mode, exclude_nodes and exclude_op_types")
            if self.calibration.method == "percentile":
                raise ValueError("backend inc calibrates with minmax or entropy, not percentile")
        return self


@register_stage
class Quantize(Stage):
    """Quantize exported models to INT8 with ONNX Runtime; check, compare with FP32, list float-only operators."""

    name = "quantize"
    Config = QuantizeConfig
    cpu_dependent = True

    def requires(self) -> list[str]:
        return list(self.cfg.models or [])

    def input_files(self) -> list[tuple[str, str]]:
        return [("calibration file", self.cfg.calibration.file)] if self.cfg.calibration.file else []

    def check_inputs(self, task: TaskData) -> None:
        if self.cfg.calibration.file:
            _calibration_file(self.cfg.calibration, task, mmap=True)

    def plan(self, models: dict[str, Planned]) -> None:
        names = self.cfg.models or [n for n, m in models.items() if m.kind == "fp32" and m.onnx]
        if not names:
            raise RecipeError("no exported FP32 model to quantize at this point", fix="add an export stage before quantize")
        for name in names:
            # the INT8 file is checked and timed against the FP32 one; neural-compressor quantizes the PyTorch model
            need(models, name, kind="fp32", onnx=True, torch=self.cfg.backend == "inc")
            out = f"{name}{self.cfg.suffix}"
            if out in models:
                raise RecipeError(f"model name {out!r} is already used by an earlier stage", fix="set another suffix")
            models[out] = Planned(kind="int8", onnx=True)

    def run(self, ctx: RunContext, cfg: QuantizeConfig) -> RunContext:
        names = cfg.models or [n for n, r in ctx.models.items() if r.onnx and r.kind == "fp32"]
        if not names:
            raise RecipeError("quantize: no exported model to quantize", fix="add an export stage before quantize")
        calibration = _calibration_inputs(ctx, cfg.calibration) if cfg.mode == "static" else None
        for name in names:
            self._quantize(ctx, cfg, name, calibration)
        return ctx

    def _quantize(self, ctx: RunContext, cfg: QuantizeConfig, name: str, calibration: np.ndarray | None) -> None:
        from compress.quant import choose_format, dynamic_op_types, quantize_onnx

        record = ctx.record(name)
        if not record.onnx:
            raise RecipeError(f"quantize: model {name!r} has no ONNX file", fix="export it in an earlier stage")
        source = ctx.path(record.onnx)
        out_name = f"{name}{cfg.suffix}"
        dest = ctx.out(f"{out_name}.onnx")
        fmt, why = choose_format(
            ctx.target.deploy_cpu().kind,
            activations=cfg.activations,
            weights=cfg.weights,
            reduce_range=cfg.reduce_range,
            per_channel=cfg.per_channel,
        )
        options = {"method": cfg.calibration.method, "per_channel": cfg.per_channel, "exclude_nodes": cfg.exclude_nodes}
        recurrent = refuse_mostly_float(source, name, cfg.mode, cfg.exclude_nodes, cfg.exclude_op_types) if cfg.backend == "ort" else []
        if cfg.backend == "inc" and (layers := recurrent_layers(source, "static", exclude_nodes=[], exclude_op_types=[])):
            ops = "/".join(sorted({r.op for r in layers}))
            raise RecipeError(
                f"quantize: backend inc does not quantize the recurrent layers ({ops}) of {name!r}",
                fix="use backend: ort (mode: dynamic runs LSTM on integer kernels; GRU has none)",
            )
        tuning = None
        if cfg.backend == "inc":
            tuning = _inc(ctx, cfg, name, dest, calibration, seven_bit=fmt.reduce_range)
        elif cfg.tune is not None:
            tuning = _tune(ctx, cfg, cfg.tune, source, dest, calibration, fmt)
            options = {k: tuning["chosen"][k] for k in options}
        else:
            with atomic_path(dest) as tmp:
                quantize_onnx(
                    source,
                    tmp,
                    mode=cfg.mode,
                    calibration=calibration,
                    fmt=fmt,
                    method=cfg.calibration.method,
                    exclude_nodes=cfg.exclude_nodes,
                    exclude_op_types=cfg.exclude_op_types,
                )
        import onnxruntime

        checked = check_int8(
            ctx,
            dest,
            cpu_runner(ctx.target).load(source),
            label=f"quantize: {name!r}",
            why_float=f"ONNX Runtime {onnxruntime.__version__}'s dynamic mode quantizes {', '.join(dynamic_op_types())}; not Gemm, GRU or RNN"
            if cfg.mode == "dynamic"
            else "no operator was quantized",
            fix="use mode: static" if cfg.mode == "dynamic" else "check exclude_nodes / exclude_op_types",
            min_agreement=cfg.min_agreement,
            fp32=source,
        )
        calibration_cfg = {**cfg.calibration.model_dump(), "method": options["method"]} if cfg.mode == "static" else None
        quant = QuantResult(
            source=name,
            method=cfg.mode,
            backend=cfg.backend,
            calibration=calibration_cfg,
            format=replace(fmt, per_channel=options["per_channel"]).as_dict(),
            format_reason=why,
            exclude_nodes=options["exclude_nodes"],
            reference="fp32 onnx",
            tuning=tuning,
            recurrent=recurrent,
            **checked.found(),
        )
        add_int8_model(ctx, out_name, record, dest, quant, checked)
        ctx.log(f"  {out_name}: {ctx.relative(dest)}, {fmt.label} ({why})")
        ctx.log(f"    {describe_check(checked)}")
        for layer in (r for r in recurrent if not r.integer):
            ctx.log(f"    note: {layer.op} {layer.node} ({layer.weight_share:.0%} of the weights) stays float: {layer.why}")


def _calibration_inputs(ctx: RunContext, cfg: CalibrationConfig) -> np.ndarray:
    """The calibration batch: the task split's first samples, or the rows of the user's .npy file (or of the
    .npz array named after the graph input of the run's FP32 ONNX files, which each take the task's one input)."""
    if cfg.file is None:
        return ctx.task.example_input(cfg.samples, split=cfg.split).numpy()
    import onnx

    from compress.models.onnx_file import graph_inputs

    files = [ctx.path(r.onnx) for r in ctx.models.values() if r.kind == "fp32" and r.onnx]
    inputs = {i.name for f in files for i in graph_inputs(onnx.load(str(f), load_external_data=False).graph)}
    return np.ascontiguousarray(_calibration_file(cfg, ctx.task, inputs=inputs)[: cfg.samples], dtype=np.float32)


def _calibration_file(cfg: CalibrationConfig, task: TaskData, *, mmap: bool = False, inputs: set[str] | None = None) -> np.ndarray:
    """The user's calibration array, checked against the task's input shape and, for an .npz, its name
    against the graph `inputs` (None: not known yet). `mmap`: read a .npy lazily, for the check before the run."""
    path = Path(cfg.file or "").expanduser()
    shape = ", ".join(map(str, task.input_shape))
    fix = f"save an array of shape (N, {shape}) with numpy.save, or numpy.savez(path, <graph input name>=array)"
    try:
        loaded = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except FileNotFoundError:
        raise DataError(f"quantize: calibration file {str(path)!r} not found", fix=fix) from None
    except (OSError, ValueError) as err:
        raise DataError(f"quantize: calibration file {str(path)!r} is not a numpy .npy array or .npz archive ({err})", fix=fix) from None
    data = _npz_array(loaded, path, inputs) if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
    if not isinstance(data, np.ndarray) or tuple(data.shape[1:]) != task.input_shape or len(data) == 0:
        found = getattr(data, "shape", "?")
        raise DataError(f"quantize: calibration file {path.name} has shape {found}, the task's inputs are {task.input_shape}", fix=fix)
    if not np.issubdtype(data.dtype, np.number) or not np.isfinite(data[: cfg.samples]).all():
        raise DataError(f"quantize: calibration file {path.name} holds non-numeric or non-finite values", fix=fix)
    return data


def _npz_array(archive, path: Path, inputs: set[str] | None) -> np.ndarray:
    """The one array of an .npz, which must be named after the graph input (`inputs`: the names allowed)."""
    wanted = ", " + " or ".join(repr(n) for n in sorted(inputs)) if inputs else ""
    example = f"numpy.savez({path.name!r}, {min(inputs) if inputs else '<graph input name>'}=inputs)"
    with archive:
        names = list(archive.files)
        if len(names) != 1 or (inputs and names[0] not in inputs):
            held = ", ".join(repr(n) for n in names) or "no array"
            raise DataError(f"quantize: calibration file {path.name} holds {held}; the model takes one input{wanted}", fix=example)
        try:
            return archive[names[0]]
        except (OSError, ValueError) as err:  # a damaged archive, or an object array (pickles are refused)
            raise DataError(f"quantize: calibration file {path.name}: array {names[0]!r} cannot be read ({err})", fix=example) from None


def _inc(
    ctx: RunContext, cfg: QuantizeConfig, name: str, dest: Path, calibration: np.ndarray | None, *, seven_bit: bool
) -> dict[str, Any] | None:
    """neural-compressor's PT2E static quantization (with autotune when `tune` is set) on the PyTorch model;
    with `seven_bit`, its 8-bit weights are rescaled to 7 bits afterwards (it has no such option)."""
    import torch

    from compress.distill.trainer import torch_predictor
    from compress.quant.inc import quantize_inc

    metric, tune_cfg = ctx.task.metric, cfg.tune
    model = ctx.module(name).eval()
    evaluate, relative, baseline = None, None, None
    if tune_cfg is not None:
        baseline = ctx.task.evaluate(torch_predictor(model), "val")[metric.name]
        relative = tune_cfg.tolerable_loss if tune_cfg.relative else tune_cfg.tolerable_loss / max(abs(baseline), 1e-12)

        def evaluate(m: torch.nn.Module) -> float:
            return ctx.task.evaluate(torch_predictor(m), "val")[metric.name]

    with atomic_path(dest) as tmp:
        scores = quantize_inc(
            model,
            ctx.task.example_input(2),
            torch.from_numpy(calibration),
            tmp,
            per_channel=cfg.per_channel,
            activations=cfg.activations,
            method=cfg.calibration.method,
            evaluate=evaluate,
            tolerable_loss=relative,
            max_trials=tune_cfg.max_trials if tune_cfg else 24,
        )
        if seven_bit:
            _restrict(tmp)
    if tune_cfg is None or baseline is None:
        return None
    return {
        "split": "val",
        "metric": metric.name,
        "fp32": baseline,
        "relative_tolerable_loss": relative,
        "backend": "inc autotune",
        "trial_metrics": scores,
    }


def _restrict(path: Path) -> None:
    import onnx

    from compress.quant.arithmetic import restrict_weights
    from compress.quant.qdq import fold_quantized_weights

    proto = onnx.load(str(path))
    fold_quantized_weights(proto)
    restrict_weights(proto)
    onnx.save(proto, str(path))


def _tune(
    ctx: RunContext,
    cfg: QuantizeConfig,
    tune_cfg: TuneConfig,
    source: Path,
    dest: Path,
    calibration: np.ndarray | None,
    fmt: Int8Format,
) -> dict[str, Any]:
    """Accuracy-driven search (see `compress.quant.tune`); the chosen trial's file ends at `dest`."""
    import onnx

    from compress.quant import CALIBRATION_METHODS, quantize_onnx
    from compress.quant.tune import Candidate, tune

    runner, metric = cpu_runner(ctx.target), ctx.task.metric
    baseline = ctx.task.evaluate(runner.load(source), "val")[metric.name]
    allowed = tune_cfg.tolerable_loss * abs(baseline) if tune_cfg.relative else tune_cfg.tolerable_loss
    layers = [n.name for n in onnx.load(str(source)).graph.node if n.op_type in ("Conv", "Gemm", "MatMul") and n.name]
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[Candidate, Path] = {}

        def evaluate(candidate: Candidate) -> float:
            path = files[candidate] = Path(tmp) / f"trial{len(files)}.onnx"
            quantize_onnx(
                source,
                path,
                mode="static",
                calibration=calibration,
                fmt=replace(fmt, per_channel=candidate.per_channel),
                method=candidate.method,
                exclude_nodes=list(candidate.exclude_nodes),
                exclude_op_types=cfg.exclude_op_types,
            )
            return ctx.task.evaluate(runner.load(path), "val")[metric.name]

        base = Candidate(cfg.calibration.method, cfg.per_channel, tuple(cfg.exclude_nodes))
        result = tune(
            evaluate,
            base,
            baseline=baseline,
            allowed_loss=allowed,
            higher_is_better=metric.higher_is_better,
            layers=layers,
            methods=CALIBRATION_METHODS,
            max_trials=tune_cfg.max_trials,
            max_float_layers=tune_cfg.max_float_layers,
        )
        with atomic_path(dest) as out:
            shutil.copyfile(files[result.chosen.candidate], out)
    chosen = result.chosen
    how = f"trial {chosen.index} of {len(result.trials)} meets" if result.met else f"no trial of {len(result.trials)} met"
    ctx.log(f"  tuning: {how} the tolerable loss {allowed:.4g} (val {metric.name} FP32 {baseline:.4f}, chosen {chosen.metric:.4f})")
    if not result.met:
        ctx.log("  warning: keeping the trial with the smallest loss; raise tune.max_trials or tune.max_float_layers, or try the qad stage")
    return {
        "split": "val",
        "metric": metric.name,
        "fp32": baseline,
        "allowed_loss": allowed,
        "met": result.met,
        "chosen": chosen.as_dict(),
        "trials": [t.as_dict() for t in result.trials],
    }
