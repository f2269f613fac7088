"""`distill`: train a student from a frozen teacher: soft targets (temperature, T^2 scaling) mixed with the
hard-label loss, plus optional feature-pair terms (hints, attention transfer, relational), with
temperature and weights given as numbers or schedules."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, ValidationInfo, field_validator

from compress.config import ModelName
from compress.context import RunContext
from compress.distill.controller import ControllerConfig
from compress.distill.dagger import DaggerConfig
from compress.distill.losses import LOSSES
from compress.distill.objective import EMA, FeaturePair, ObjectiveSpec
from compress.distill.record import TRAIN_STATE, param_count, register_model, training_of
from compress.distill.run import search_student, train_student
from compress.distill.schedules import Schedule, endpoints
from compress.distill.trainer import UNLABELED, FitConfig
from compress.errors import RecipeError
from compress.models.spec import ModelSpec, build_model
from compress.records import Training
from compress.stages.base import Planned, Stage, need, register_stage

__all__ = ["Distill", "DistillConfig"]

SEARCH_STATE = "search_state.pt"  # finished trials and the best student so far, written after every trial


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
    controller: ControllerConfig | None = Field(
        None,
        description="choose temperature, alpha (and the feature pair) while training: {kind: learned} (an agent, per epoch) "
        "or {kind: search} (Optuna TPE, a trial per setting); they replace the temperature and alpha settings",
    )
    dagger: DaggerConfig | None = Field(
        None, description="policy tasks: each epoch add the states the student visits, relabelled by the teacher: {episodes: 4}"
    )
    unlabeled: bool = Field(False, description=UNLABELED)

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

    def objective(self) -> ObjectiveSpec:
        return ObjectiveSpec(
            loss=self.loss,
            temperature=self.temperature,
            alpha=self.alpha,
            features=tuple(self.features),
            ensemble=self.ensemble,
            teacher_weights=tuple(self.teacher_weights) if self.teacher_weights else None,
        )

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
            raise ValueError(f"temperature must be > 0, got {_shown(ends)}")
        return t

    @field_validator("alpha")
    @classmethod
    def _unit_alpha(cls, a: float | Schedule) -> float | Schedule:
        ends = endpoints(a)
        if not all(0 <= v <= 1 for v in ends):
            raise ValueError(f"alpha must stay within [0, 1], got {_shown(ends)}")
        return a


@register_stage
class Distill(Stage):
    """Train a student from a frozen teacher: soft targets, hard labels, optional feature terms, schedules,
    a learned controller or a search over the knobs, and DAgger relabelling for policies."""

    name = "distill"
    Config = DistillConfig
    every_rank = True

    def requires(self) -> list[str]:
        return [] if self.cfg.self_distill else self.cfg.teachers

    def provides(self) -> list[str]:
        return [self.cfg.name]

    def plan(self, models: dict[str, Planned]) -> None:
        for name in self.requires():  # a teacher runs as PyTorch: an INT8 model's would be its FP32 network
            need(models, name, kind="fp32")
        super().plan(models)

    def run(self, ctx: RunContext, cfg: DistillConfig) -> RunContext:
        self._check(ctx, cfg)
        self._warn_if_not_smaller(ctx, cfg)
        if cfg.controller is not None and cfg.controller.kind == "search":
            student, result, info = search_student(ctx, cfg, state_file=ctx.work(SEARCH_STATE))
        else:
            student, result, info = train_student(ctx, cfg, seed=ctx.seed, checkpoint=ctx.work(TRAIN_STATE))
        teacher = student if cfg.self_distill else ctx.module(cfg.teachers[0])  # self-distillation: its own average
        training = training_of(result).model_copy(update={**info, "params_vs_teacher": param_count(student) / param_count(teacher)})
        parent = None if cfg.self_distill else cfg.teachers[0]
        register_model(ctx, cfg.name, cfg.model, student, Training.model_validate(dict(training)), parent=parent)
        return ctx

    @staticmethod
    def _warn_if_not_smaller(ctx: RunContext, cfg: DistillConfig) -> None:
        """Before training: a student at least as large as its (first) teacher is said out loud."""
        if cfg.self_distill:
            return
        with torch.random.fork_rng(devices=[]):  # a look at its size must not move the training's random stream
            mine = param_count(build_model(cfg.model, ctx.task))
        theirs = param_count(ctx.module(cfg.teachers[0]))
        if mine >= theirs:
            ctx.log(
                f"  warning: student {cfg.name!r} has {mine:,} parameters, {mine / theirs:.2f}x its teacher's {theirs:,}: "
                "distilling will not make the model smaller; give a smaller student (model: ...)"
            )

    @staticmethod
    def _check(ctx: RunContext, cfg: DistillConfig) -> None:
        cfg.objective().check("distill", ctx.task)
        if cfg.dagger is not None and not getattr(ctx.task, "env_id", None):
            raise RecipeError(f"distill: dagger needs a policy task; {ctx.task.name!r} has no environment", fix="remove dagger")
        if cfg.dagger is not None and cfg.self_distill:
            raise RecipeError("distill: dagger needs a teacher to relabel the student's states, not 'ema'", fix="name a teacher model")
        if cfg.unlabeled and (cfg.dagger is not None or cfg.self_distill):
            raise RecipeError("distill: unlabeled inputs need a fixed teacher, not dagger or 'ema'", fix="remove unlabeled")


def _shown(ends: tuple[float, ...]) -> str:
    """A number as written, or a schedule's start and end."""
    return f"{ends[0]:g}" if len(set(ends)) == 1 else f"a schedule from {ends[0]:g} to {ends[-1]:g}"
