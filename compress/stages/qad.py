"""`qad`: quantization-aware distillation. The FP32 model, BatchNorm folded, is trained fake-quantized
(per-channel symmetric int8 weights, 7-bit for targets whose kernels saturate, per-tensor uint8 activations with moving-average ranges, frozen
after `freeze_after` epochs) against an FP32 teacher with the distillation losses, then written as a
QDQ ONNX file that ONNX Runtime fuses into integer kernels. The quantizers sit where static PTQ puts
them, so every operator static PTQ runs on an integer kernel runs on one here too; a model with a
recurrent or attention layer, which QAD cannot see into, is refused before training. The stage reports
how closely the fake-quantized PyTorch model and the INT8 ONNX model agree on the test split."""

from __future__ import annotations

import torch
from pydantic import Field, field_validator

from compress.config import Agreement, ModelName, SevenBitWeights
from compress.context import RunContext
from compress.deploy import add_int8_model, check_int8, describe_check
from compress.distill.losses import LOSSES
from compress.distill.objective import DistillObjective, ObjectiveSpec
from compress.distill.record import TRAIN_STATE, training_of
from compress.distill.trainer import UNLABELED, FitConfig, FitResult, fit
from compress.fsio import atomic_path
from compress.models.predict import torch_predictor
from compress.records import QuantResult, Score
from compress.stages.base import Planned, Stage, need, register_stage

__all__ = ["Qad", "QadConfig"]


class QadConfig(FitConfig):
    model: ModelName = Field("student", description="the trained FP32 model to quantize")
    teacher: ModelName | None = Field(
        None, description="FP32 teacher for the distillation loss; default: the model itself before quantization"
    )
    name: ModelName | None = Field(None, description="name of the INT8 model; default: <model>_qad")
    epochs: int = Field(10, ge=1, description="fake-quantized training epochs")
    lr: float = Field(3e-4, gt=0, description="peak learning rate: about a tenth of training's, the weights start trained")
    loss: str = Field("kd", description="response loss against the teacher: kd (classification), mse or huber")
    temperature: float = Field(4.0, gt=0, description="soft-target temperature")
    alpha: float = Field(0.9, ge=0, le=1, description="weight of the distillation term (1 - alpha weights the hard labels)")
    freeze_after: int = Field(3, ge=0, description="epochs after which activation ranges stop following the batches")
    momentum: float = Field(0.01, gt=0, le=1, description="activation ranges: weight of each batch's min/max in the moving average")
    calibration_samples: int = Field(256, ge=1, description="training samples that set the initial activation ranges (min/max)")
    opset: int = Field(17, ge=13, le=20, description="ONNX opset of the INT8 file (13 to 20: the legacy exporter writes it)")
    reduce_range: SevenBitWeights = None
    unlabeled: bool = Field(False, description=UNLABELED)
    min_agreement: Agreement = Field(
        0.98, description="least top-1 agreement of the INT8 file with the fake-quantized model, through the target's arithmetic"
    )

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, name: str) -> str:
        return LOSSES.check(name)

    def objective(self) -> ObjectiveSpec:
        """One teacher, no feature terms."""
        return ObjectiveSpec(loss=self.loss, temperature=self.temperature, alpha=self.alpha)

    @property
    def output(self) -> str:
        return self.name or f"{self.model}_qad"


class _QadObjective(DistillObjective):
    """The distillation objective, plus: activation ranges freeze at epoch `freeze_after` + 1."""

    def __init__(self, student: torch.nn.Module, teacher: torch.nn.Module, cfg: QadConfig, *, kind: str, example: torch.Tensor) -> None:
        self.epochs, self.freeze_after = cfg.epochs, cfg.freeze_after  # read by start_epoch, which the base calls
        super().__init__(student, [teacher], cfg.objective(), kind=kind, example=example)
        self.student_ref = [student]  # a list: not a submodule, so its weights are not counted twice

    def start_epoch(self, progress: float, gap: float | None = None, initial_gap: float | None = None) -> dict[str, float]:
        from compress.quant.qat import freeze_ranges

        knobs = super().start_epoch(progress, gap, initial_gap)
        epoch = round(progress * self.epochs) + 1
        frozen = epoch > self.freeze_after
        if hasattr(self, "student_ref"):
            freeze_ranges(self.student_ref[0], frozen)
        return {**knobs, "ranges_frozen": float(frozen)}


@register_stage
class Qad(Stage):
    """Quantization-aware distillation: fake-quantized training against the FP32 teacher, INT8 QDQ ONNX out."""

    name = "qad"
    Config = QadConfig
    cpu_dependent = True
    every_rank = True

    def requires(self) -> list[str]:
        return [self.cfg.model] + ([self.cfg.teacher] if self.cfg.teacher else [])

    def provides(self) -> list[str]:
        return [self.cfg.output]

    def plan(self, models: dict[str, Planned]) -> None:
        need(models, self.cfg.model, kind="fp32")
        if self.cfg.teacher:
            need(models, self.cfg.teacher, kind="fp32")
        super().plan(models)
        models[self.cfg.output] = Planned(kind="int8", onnx=True)

    def run(self, ctx: RunContext, cfg: QadConfig) -> RunContext:
        from compress.quant import choose_format
        from compress.quant.qat import export_qdq

        cfg.objective().check("qad", ctx.task)
        fmt, why = choose_format(ctx.target.deploy_cpu().kind, reduce_range=cfg.reduce_range)
        student, result, before = self._train(ctx, cfg, fmt)
        dest = ctx.out(f"{cfg.output}.onnx")
        with atomic_path(dest) as tmp:
            export_qdq(student, ctx.task.example_input(2), tmp, opset=cfg.opset)
        source = ctx.record(cfg.model)
        checked = check_int8(
            ctx,
            dest,
            torch_predictor(student),
            label=f"qad: {cfg.model!r}",
            why_float="no layer was fake-quantized",
            fix="use the quantize stage",
            min_agreement=cfg.min_agreement,
            fp32=ctx.path(source.onnx) if source.onnx else None,
            what="the fake-quantized model",
        )
        quant = QuantResult(
            source=cfg.model,
            method="qad",
            backend="qad",
            teacher=cfg.teacher or f"{cfg.model} (FP32)",
            format=fmt.as_dict(),
            format_reason=why,
            reference="fake-quant",
            **checked.found(),
        )
        metric = ctx.task.metric.name
        fake_quant = ctx.task.evaluate(torch_predictor(student), "test")[metric]
        scores = [
            Score(split="test", runtime=r, metric=metric, value=v) for r, v in (("calibrated-only", before), ("fake-quant", fake_quant))
        ]
        add_int8_model(ctx, cfg.output, source, dest, quant, checked, scores)
        ctx.update_model(cfg.output, training=training_of(result))
        ctx.log(f"  {cfg.output}: {ctx.relative(dest)}, {fmt.label}, test {metric} {checked.test[metric]:.4f} (ONNX Runtime INT8)")
        ctx.log(f"    {describe_check(checked, 'the fake-quantized model')}")
        return ctx

    @staticmethod
    def _train(ctx: RunContext, cfg: QadConfig, fmt) -> tuple[torch.nn.Module, FitResult, float]:
        """The fake-quantized copy of the FP32 model, calibrated, then trained against the teacher; returns it,
        its fit and its test metric after calibration only."""
        from compress.quant.formats import SAFE_INT8_WEIGHT
        from compress.quant.qat import calibrate, prepare_qat

        levels = SAFE_INT8_WEIGHT if fmt.reduce_range else 127
        example = ctx.task.example_input(2)
        student = prepare_qat(ctx.module(cfg.model), example, momentum=cfg.momentum, weight_levels=levels)  # a copy: the FP32 model stays
        teacher = ctx.module(cfg.teacher or cfg.model).eval().requires_grad_(False)
        calibrate(student, [ctx.task.example_input(cfg.calibration_samples, split="train")])
        before = ctx.task.evaluate(torch_predictor(student), "test")[ctx.task.metric.name]
        objective = _QadObjective(student, teacher, cfg, kind=ctx.task.kind, example=example)
        objective.cache_enabled = cfg.augmentation(ctx.task) is None
        with objective:
            result = fit(
                student,
                ctx.task,
                objective,
                cfg,
                seed=ctx.seed,
                desc=f"qad {cfg.output}",
                quiet=ctx.quiet,
                checkpoint=ctx.work(TRAIN_STATE),
                train=ctx.training_inputs(cfg.unlabeled, cfg.output),
            )
        return student, result, before
