"""`distill`: train a student from a frozen teacher: soft targets (temperature, T^2 scaling) mixed with the
hard-label loss, plus optional feature-pair terms (hints, attention transfer, relational), with
temperature and weights given as numbers or schedules."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from compress.config import ModelName
from compress.context import RunContext
from compress.distill.losses import LOSSES
from compress.distill.objective import EMA, DistillObjective, EmaObjective, FeaturePair
from compress.distill.schedules import Schedule, endpoints
from compress.distill.trainer import FitConfig, fit, torch_predictor
from compress.errors import RecipeError
from compress.models.spec import ModelSpec, build_model
from compress.stages._trained import TRAIN_STATE, param_count, register_model
from compress.stages.base import Stage, register_stage

__all__ = ["Distill", "DistillConfig"]


class DistillConfig(FitConfig):
    teacher: ModelName | list[ModelName] = Field(
        "teacher", description="teacher model name, several names for an ensemble, or 'ema': self-distillation from an EMA of the student"
    )
    cache_teacher: bool | None = Field(
        None, description="compute teacher outputs once per training sample; null: whenever valid (frozen teachers, no augmentation)"
    )
    ema_decay: float = Field(0.99, gt=0, lt=1, description="teacher: ema: weight of the old average at each step")
    ensemble: Literal["mean", "weighted", "confident"] = Field(
        "mean", description="several teachers: mean of probabilities, weighted mean (teacher_weights), or per-sample most confident"
    )
    teacher_weights: list[float] | None = Field(
        None, validate_default=True, description="ensemble: weighted, one positive weight per teacher"
    )
    name: ModelName = Field("student", description="name of the student model in this run")
    model: ModelSpec = Field(description="student architecture, e.g. {arch: mobilenet_v2, width: 8}")
    loss: str = Field(
        "kd", description="response loss: kd (classification), mse or huber (regression; on classification they match logits)"
    )
    temperature: float | Schedule = Field(
        4.0, description="soft-target temperature: a number or a schedule, e.g. {kind: cosine, start: 8, end: 1}"
    )
    alpha: float | Schedule = Field(
        0.9, description="weight of the distillation term (1 - alpha weights the hard labels); number or schedule, incl. adaptive"
    )
    features: list[FeaturePair] = Field(
        default_factory=list, description="intermediate-feature terms: [{student: layer2, teacher: layer2, loss: hint}]"
    )

    @field_validator("teacher")
    @classmethod
    def _teacher_names(cls, teacher: str | list[str]) -> str | list[str]:
        names = [teacher] if isinstance(teacher, str) else teacher
        if EMA in names and len(names) > 1:
            raise ValueError("teacher 'ema' (self-distillation) cannot be part of an ensemble")
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"teacher names must be distinct and non-empty, got {names}")
        return teacher

    @field_validator("teacher_weights")
    @classmethod
    def _weights(cls, weights: list[float] | None, info: ValidationInfo) -> list[float] | None:
        teacher, ensemble = info.data.get("teacher"), info.data.get("ensemble")
        if teacher is None or ensemble is None:
            return weights  # reported on their own keys
        teachers = [teacher] if isinstance(teacher, str) else teacher
        if ensemble == "weighted":
            if weights is None or len(weights) != len(teachers) or min(weights) <= 0:
                raise ValueError(f"ensemble 'weighted' needs teacher_weights: one positive number for each of {teachers}")
        elif weights is not None:
            raise ValueError("teacher_weights apply only to ensemble: weighted")
        return weights

    @property
    def self_distill(self) -> bool:
        return self.teacher == EMA

    @property
    def teachers(self) -> list[str]:
        return [self.teacher] if isinstance(self.teacher, str) else list(self.teacher)

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, name: str) -> str:
        return LOSSES.check(name)

    @field_validator("temperature")
    @classmethod
    def _positive_temperature(cls, t: float | Schedule) -> float | Schedule:
        if isinstance(t, Schedule) and t.kind == "adaptive":
            raise ValueError("temperature cannot be adaptive; use constant, linear, cosine or step")
        ends = endpoints(t)
        if min(ends) <= 0:
            raise ValueError(f"temperature must be > 0, got {ends}")
        return t

    @field_validator("alpha")
    @classmethod
    def _unit_alpha(cls, a: float | Schedule) -> float | Schedule:
        ends = endpoints(a)
        if not all(0 <= v <= 1 for v in ends):
            raise ValueError(f"alpha must stay within [0, 1], got {ends}")
        return a


@register_stage
class Distill(Stage):
    """Train a student from a frozen teacher: soft targets, hard labels, optional feature terms, schedules."""

    name = "distill"
    Config = DistillConfig
    every_rank = True

    def requires(self) -> list[str]:
        return [] if self.cfg.self_distill else self.cfg.teachers

    def provides(self) -> list[str]:
        return [self.cfg.name]

    def run(self, ctx: RunContext, cfg: DistillConfig) -> RunContext:
        if cfg.loss == "kd" and ctx.task.kind != "classification":
            raise RecipeError(
                f"distill loss 'kd' needs a classification task; task {ctx.task.name!r} is regression", fix="use loss: mse or huber"
            )
        if cfg.ensemble == "confident" and ctx.task.kind != "classification":
            raise RecipeError("ensemble 'confident' needs a classification task", fix="use ensemble: mean or weighted")
        student = build_model(cfg.model, ctx.task)
        if cfg.self_distill:
            objective = EmaObjective(student, cfg, kind=ctx.task.kind, example=ctx.task.example_input(2))
        else:
            teachers = [ctx.module(name).eval().requires_grad_(False) for name in cfg.teachers]
            objective = DistillObjective(student, teachers, cfg, kind=ctx.task.kind, example=ctx.task.example_input(2))
            metric = ctx.task.metric
            scores = [ctx.task.evaluate(torch_predictor(t), "val")[metric.name] for t in teachers]
            objective.reference = max(scores) if metric.higher_is_better else min(scores)  # the gap the adaptive weight closes
        objective.cache_enabled = self._cache_teacher(ctx, cfg)
        with objective:
            result = fit(
                student,
                ctx.task,
                objective,
                cfg,
                seed=ctx.seed,
                desc=f"distill {cfg.name}",
                quiet=ctx.quiet,
                checkpoint=ctx.out(TRAIN_STATE),
            )
        summary = register_model(ctx, cfg.name, cfg.model, student, result)
        summary["teacher_cache"] = objective.cache_enabled
        summary["params_vs_teacher"] = summary["params"] / param_count(objective.teachers[0])
        return ctx

    @staticmethod
    def _cache_teacher(ctx: RunContext, cfg: DistillConfig) -> bool:
        augmented = cfg.augmentation(ctx.task) is not None
        why_not = "the teacher changes while training (ema)" if cfg.self_distill else "training inputs are augmented" if augmented else None
        if cfg.cache_teacher and why_not:
            raise RecipeError(f"distill: cache_teacher is on but {why_not}", fix="remove cache_teacher, or set augment: false")
        return why_not is None if cfg.cache_teacher is None else cfg.cache_teacher
