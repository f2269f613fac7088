"""`distill`: train a student from a frozen teacher with soft targets (temperature, T^2 scaling) mixed
with the hard-label loss. The distillation suite extends this stage through the loss registry."""

from __future__ import annotations

import torch
from pydantic import Field, field_validator
from torch import nn

from compress.context import RunContext
from compress.distill.losses import LOSSES, distill_objective, task_loss
from compress.distill.trainer import FitConfig, fit
from compress.errors import RecipeError
from compress.models.spec import ModelSpec, build_model
from compress.stages._trained import param_count, register_model
from compress.stages.base import Stage, register_stage

__all__ = ["Distill"]


class DistillConfig(FitConfig):
    teacher: str = Field("teacher", description="name of the teacher model made by an earlier stage")
    name: str = Field("student", description="name of the student model in this run")
    model: ModelSpec = Field(description="student architecture, e.g. {arch: mobilenet_v2, width: 8}")
    loss: str = Field("kd", description="response loss: kd (classification) or mse (regression)")
    temperature: float = Field(4.0, gt=0, description="softmax temperature of the soft targets")
    alpha: float = Field(0.9, ge=0, le=1, description="weight of the distillation term; 1 - alpha weights the hard labels")

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, name: str) -> str:
        if name not in LOSSES:
            raise ValueError(LOSSES.unknown_message(name))
        return name


@register_stage
class Distill(Stage):
    """Train a student from a frozen teacher: alpha * soft-target loss + (1 - alpha) * hard-label loss."""

    name = "distill"
    Config = DistillConfig

    def requires(self) -> list[str]:
        return [self.cfg.teacher]

    def provides(self) -> list[str]:
        return [self.cfg.name]

    def run(self, ctx: RunContext, cfg: DistillConfig) -> RunContext:
        if cfg.loss == "kd" and ctx.task.kind != "classification":
            raise RecipeError(f"distill loss 'kd' needs a classification task; task {ctx.task.name!r} is regression", fix="use loss: mse")
        teacher = ctx.module(cfg.teacher).eval().requires_grad_(False)
        student = build_model(cfg.model, ctx.task)
        result = fit(
            student, ctx.task, self._loss(teacher, cfg, ctx.task.kind), cfg, seed=ctx.seed, desc=f"distill {cfg.name}", quiet=ctx.quiet
        )
        summary = register_model(ctx, cfg.name, cfg.model, student, result)
        summary["params_vs_teacher"] = summary["params"] / param_count(teacher)
        return ctx

    @staticmethod
    def _loss(teacher: nn.Module, cfg: DistillConfig, kind: str):
        response = LOSSES.get(cfg.loss)

        def loss(student: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                target = teacher(x)
            out = student(x)
            return distill_objective(response(out, target, temperature=cfg.temperature), task_loss(out, y, kind), alpha=cfg.alpha)

        return loss
