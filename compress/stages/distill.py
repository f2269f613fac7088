"""`distill`: train a student from a frozen teacher: soft targets (temperature, T^2 scaling) mixed with the
hard-label loss, plus optional feature-pair terms (hints, attention transfer, relational), with
temperature and weights given as numbers or schedules."""

from __future__ import annotations

from pydantic import Field, field_validator

from compress.context import RunContext
from compress.distill.losses import LOSSES
from compress.distill.objective import DistillObjective, FeaturePair
from compress.distill.schedules import Schedule
from compress.distill.trainer import FitConfig, fit, torch_predictor
from compress.errors import RecipeError
from compress.models.spec import ModelSpec, build_model
from compress.stages._trained import param_count, register_model
from compress.stages.base import Stage, register_stage

__all__ = ["Distill", "DistillConfig"]


class DistillConfig(FitConfig):
    teacher: str = Field("teacher", description="name of the teacher model made by an earlier stage")
    name: str = Field("student", description="name of the student model in this run")
    model: ModelSpec = Field(description="student architecture, e.g. {arch: mobilenet_v2, width: 8}")
    loss: str = Field("kd", description="response loss: kd (classification) or mse (regression)")
    temperature: float | Schedule = Field(
        4.0, description="soft-target temperature: a number or a schedule, e.g. {kind: cosine, start: 8, end: 1}"
    )
    alpha: float | Schedule = Field(
        0.9, description="weight of the distillation term (1 - alpha weights the hard labels); number or schedule, incl. adaptive"
    )
    features: list[FeaturePair] = Field(
        default_factory=list, description="intermediate-feature terms: [{student: layer2, teacher: layer2, loss: hint}]"
    )

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, name: str) -> str:
        if name not in LOSSES:
            raise ValueError(LOSSES.unknown_message(name))
        return name

    @field_validator("temperature")
    @classmethod
    def _positive_temperature(cls, t: float | Schedule) -> float | Schedule:
        if isinstance(t, Schedule) and t.kind == "adaptive":
            raise ValueError("temperature cannot be adaptive; use constant, linear, cosine or step")
        ends = (t,) if not isinstance(t, Schedule) else (t.start, t.start if t.end is None else t.end)
        if min(ends) <= 0:
            raise ValueError(f"temperature must be > 0, got {ends}")
        return t

    @field_validator("alpha")
    @classmethod
    def _unit_alpha(cls, a: float | Schedule) -> float | Schedule:
        ends = (a,) if not isinstance(a, Schedule) else (a.start, a.start if a.end is None else a.end)
        if not all(0 <= v <= 1 for v in ends):
            raise ValueError(f"alpha must stay within [0, 1], got {ends}")
        return a


@register_stage
class Distill(Stage):
    """Train a student from a frozen teacher: soft targets, hard labels, optional feature terms, schedules."""

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
        objective = DistillObjective(student, teacher, cfg, kind=ctx.task.kind, example=ctx.task.example_input(2))
        objective.reference = ctx.task.evaluate(torch_predictor(teacher), "val")[ctx.task.metric.name]
        with objective:
            result = fit(student, ctx.task, objective, cfg, seed=ctx.seed, desc=f"distill {cfg.name}", quiet=ctx.quiet)
        summary = register_model(ctx, cfg.name, cfg.model, student, result)
        summary["params_vs_teacher"] = summary["params"] / param_count(teacher)
        return ctx
