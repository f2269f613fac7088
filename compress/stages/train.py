"""`train`: train a model (usually the teacher) on the task's hard labels; `load`: bring a trained one."""

from __future__ import annotations

from pydantic import Field, field_validator

from compress.config import ModelName, StageConfig
from compress.context import RunContext
from compress.deploy import add_onnx_model
from compress.distill.losses import task_loss
from compress.distill.record import TRAIN_STATE, register_model, training_of
from compress.distill.trainer import FitConfig, fit
from compress.models.spec import ModelSpec, build_model
from compress.stages.base import Planned, Stage, register_stage

__all__ = ["Train", "Load"]


class TrainConfig(FitConfig):
    name: ModelName = Field("teacher", description="name of the trained model in this run")
    model: ModelSpec = Field(
        description="architecture: {arch: <zoo name>, ...} or {factory: 'module:function'}; a checkpoint here is fine-tuned"
    )


@register_stage
class Train(Stage):
    """Train `model` with the task loss (cross-entropy or MSE), early stopping on the validation metric."""

    name = "train"
    Config = TrainConfig
    every_rank = True

    def provides(self) -> list[str]:
        return [self.cfg.name]

    def run(self, ctx: RunContext, cfg: TrainConfig) -> RunContext:
        model = build_model(cfg.model, ctx.task)
        kind = ctx.task.kind
        result = fit(
            model,
            ctx.task,
            lambda m, x, y: task_loss(m(x), y, kind),
            cfg,
            seed=ctx.seed,
            desc=f"train {cfg.name}",
            quiet=ctx.quiet,
            checkpoint=ctx.work(TRAIN_STATE),
        )
        register_model(ctx, cfg.name, cfg.model, model, training_of(result))
        return ctx


class LoadConfig(StageConfig):
    name: ModelName = Field("teacher", description="name of the model in this run")
    model: ModelSpec = Field(
        description="architecture plus 'checkpoint' (a state dict file, loaded with weights_only=True), "
        "or {onnx: file.onnx}: an ONNX model as it is, for quantize, benchmark and report"
    )

    @field_validator("model")
    @classmethod
    def _needs_weights(cls, spec: ModelSpec) -> ModelSpec:
        if spec.checkpoint is None and spec.factory is None and spec.onnx is None:
            raise ValueError("a zoo model needs 'checkpoint' to load trained weights from (or give {onnx: file.onnx})")
        return spec


@register_stage
class Load(Stage):
    """Bring a trained model into the run (a user's teacher), scored on the test split."""

    name = "load"
    Config = LoadConfig
    every_rank = True

    def provides(self) -> list[str]:
        return [self.cfg.name]

    def plan(self, models: dict[str, Planned]) -> None:
        super().plan(models)
        if self.cfg.model.onnx is not None:
            models[self.cfg.name] = Planned(kind="fp32", onnx=True, torch=False)

    def run(self, ctx: RunContext, cfg: LoadConfig) -> RunContext:
        if cfg.model.onnx is not None:
            add_onnx_model(ctx, cfg.name, cfg.model)
        else:
            register_model(ctx, cfg.name, cfg.model, build_model(cfg.model, ctx.task))
        return ctx
