"""How the `distill` stage trains a student: once (fixed knobs, schedules or the learned controller,
optionally with DAgger relabelling), or once per trial of the TPE search, keeping the best."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from compress.context import RunContext
from compress.data.metrics import r2
from compress.distill.controller import LearnedController
from compress.distill.dagger import Dagger
from compress.distill.objective import DistillObjective, EmaObjective
from compress.distill.schedules import endpoints
from compress.distill.search import tpe_search
from compress.distill.trainer import FitResult, fit
from compress.errors import RecipeError
from compress.fsio import atomic_path
from compress.models.predict import torch_predictor
from compress.models.spec import build_model

__all__ = ["train_student", "search_student"]


def train_student(
    ctx: RunContext, cfg: Any, *, seed: int, checkpoint: Path | None, desc: str | None = None
) -> tuple[nn.Module, FitResult, dict]:
    """One distillation run of `cfg` (a DistillConfig); returns the student, its fit and what to record."""
    student = build_model(cfg.model, ctx.task)
    objective = _objective(ctx, cfg, student)
    info: dict[str, Any] = {"teacher_cache": objective.cache_enabled}
    if cfg.controller is not None:
        objective.controller = _controller(ctx, cfg, objective, seed)
        objective.agreement = _agreement(ctx, objective, student)
        untrained = ctx.task.evaluate(torch_predictor(student.eval()), "val")[ctx.task.metric.name]
        objective.controller.prime(untrained, objective.agreement())  # so that the first epoch's gain is measured too
    data, train = None, ctx.training_inputs(cfg.unlabeled, cfg.name)
    if cfg.dagger is not None:
        data = Dagger(ctx.task, objective.teachers[0], cfg.dagger)  # type: ignore[arg-type]
    with objective:
        result = fit(
            student,
            ctx.task,
            objective,
            cfg,
            seed=seed,
            desc=desc or f"distill {cfg.name}",
            quiet=ctx.quiet,
            checkpoint=checkpoint,
            data=data,
            train=train,
        )
    if objective.controller is not None:
        info["controller"] = {
            "kind": "learned",
            "decisions": objective.controller.decisions,
            "config": cfg.controller.model_dump(mode="json"),
        }
    if data is not None:
        info["dagger"] = {"episodes_per_epoch": cfg.dagger.episodes, "states": len(data.dataset)}
    return student, result, info


def _objective(ctx: RunContext, cfg: Any, student: nn.Module) -> DistillObjective:
    task = ctx.task
    if cfg.self_distill:
        objective: DistillObjective = EmaObjective(
            student, cfg.objective(), decay=cfg.ema_decay, kind=task.kind, example=task.example_input(2)
        )
    else:
        teachers = [ctx.module(name).eval().requires_grad_(False) for name in cfg.teachers]
        objective = DistillObjective(student, teachers, cfg.objective(), kind=task.kind, example=task.example_input(2))
        scores = [task.evaluate(torch_predictor(t), "val")[task.metric.name] for t in teachers]
        objective.reference = max(scores) if task.metric.higher_is_better else min(scores)  # the gap the adaptive weight closes
    objective.cache_enabled = _cache_teacher(ctx, cfg)
    return objective


def _cache_teacher(ctx: RunContext, cfg: Any) -> bool:
    augmented = cfg.augmentation(ctx.task) is not None
    why_not = (
        "the teacher changes while training (ema)"
        if cfg.self_distill
        else "training inputs are augmented"
        if augmented
        else "the training states grow (dagger)"
        if cfg.dagger is not None
        else None
    )
    if cfg.cache_teacher and why_not:
        raise RecipeError(f"distill: cache_teacher is on but {why_not}", fix="remove cache_teacher, or set augment: false")
    return why_not is None if cfg.cache_teacher is None else cfg.cache_teacher


def _controller(ctx: RunContext, cfg: Any, objective: DistillObjective, seed: int) -> LearnedController:
    start = (endpoints(cfg.temperature)[0], endpoints(cfg.alpha)[0])  # the agent starts at the recipe's own setting
    return LearnedController(
        cfg.controller,
        pairs=len(cfg.features),
        start=start,
        seed=seed,
        higher_is_better=ctx.task.metric.higher_is_better,
        scale=getattr(objective, "reference", None),
    )


def _agreement(ctx: RunContext, objective: DistillObjective, student: nn.Module):
    """Teacher-student agreement on the validation inputs: top-1 for classification, R^2 (>= 0) for regression."""
    x = ctx.task.example_input(len(ctx.task.val), split="val")
    classification = ctx.task.kind == "classification"

    def agreement() -> float:
        with torch.no_grad():
            was = student.training
            s, t = student.eval()(x).numpy(), objective.teachers[0](x).numpy()
            student.train(was)
        return float(np.mean(s.argmax(1) == t.argmax(1))) if classification else max(0.0, r2(s, t))

    return agreement


def search_student(ctx: RunContext, cfg: Any, *, state_file: Path) -> tuple[nn.Module, FitResult, dict]:
    """The TPE baseline: `trials` runs of `epochs // trials` epochs at constant settings; the best validated
    student is kept. Progress is saved after every trial, so an interrupted search resumes there."""
    search = cfg.controller
    per_trial = max(1, cfg.epochs // search.trials)
    saved = torch.load(state_file, weights_only=True) if state_file.exists() else {"trials": [], "best": None}
    maximize = ctx.task.metric.higher_is_better

    def train_trial(index: int, params: dict[str, Any]) -> tuple[float, Any]:
        features = [cfg.features[params["feature_pair"]]] if "feature_pair" in params else cfg.features
        update = {
            "epochs": per_trial,
            "temperature": params["temperature"],
            "alpha": params["alpha"],
            "features": features,
            "controller": None,
        }
        student, result, _ = train_student(
            ctx, cfg.model_copy(update=update), seed=ctx.seed + index, checkpoint=None, desc=f"trial {index + 1}"
        )
        return float(result.best_val), (student, result)

    def keep(record: dict[str, Any], kept: Any) -> None:
        best = saved["best"]
        if best is None or ctx.task.metric.better(record["value"], best["value"]):
            student, result = kept
            saved["best"] = {
                "value": record["value"],
                "index": record["index"],
                "weights": student.state_dict(),
                "fit": dataclasses.asdict(result),
            }
        saved["trials"].append(record)
        with atomic_path(state_file) as tmp:
            torch.save(saved, tmp)

    trials = tpe_search(train_trial, search, pairs=len(cfg.features), seed=ctx.seed, maximize=maximize, done=saved["trials"], on_trial=keep)
    best = saved["best"]
    student = build_model(cfg.model, ctx.task)
    student.load_state_dict(best["weights"])
    info = {
        "controller": {
            "kind": "search",
            "epochs_per_trial": per_trial,
            "trials": trials,
            "best_trial": best["index"],
            "config": search.model_dump(mode="json"),
        }
    }
    return student, FitResult(**best["fit"]), info
