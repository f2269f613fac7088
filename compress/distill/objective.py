"""`DistillObjective`: the per-batch distillation loss of the `distill` stage. It combines the response
loss (soft targets), the hard-label loss and any feature-pair losses, with temperature and weights
that follow their schedules epoch by epoch. Used as a context manager: its hooks live only while training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn
from torch.utils.data import DataLoader, Dataset

from compress.data.checks import collate
from compress.distill.controller import LearnedController
from compress.distill.features import FeatureTaps, Projector, match_spatial
from compress.distill.losses import FEATURE_LOSSES, LOSSES, combine_teachers, distill_objective, task_loss
from compress.distill.schedules import Schedule, value_of
from compress.distill.trainer import Objective
from compress.errors import RecipeError

__all__ = ["FeaturePair", "ObjectiveSpec", "DistillObjective", "EmaObjective", "EMA"]


EMA = "ema"  # the teacher name that means self-distillation from an exponential moving average of the student


class FeaturePair(BaseModel):
    """One intermediate-feature term: `{student: layer2, teacher: layer2, loss: hint, weight: 1.0}`."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    student: str = Field(description="module path in the student, e.g. layer2 or layer2.0.body")
    teacher: str = Field(description="module path in the teacher")
    loss: str = Field("hint", description="hint (FitNets, through a learned projector), attention, rkd_distance or rkd_angle")
    weight: float | Schedule = Field(1.0, description="weight of this term, a number or a schedule")
    channel_attention: bool = Field(False, description="hint only: squeeze-excitation gate on the projected feature")

    @field_validator("loss")
    @classmethod
    def _known(cls, name: str) -> str:
        return FEATURE_LOSSES.check(name)


class ObjectiveSpec(BaseModel):
    """The distillation objective, the one contract distill, prune's fine-tuning and qad fill in from
    their configs (`cfg.objective()`): response loss against the teachers' combined outputs at a
    temperature, mixed with the hard-label loss by alpha, plus feature-pair terms."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    loss: str = "kd"
    temperature: float | Schedule = 4.0
    alpha: float | Schedule = 0.9
    features: tuple[FeaturePair, ...] = ()
    ensemble: Literal["mean", "weighted", "confident"] = "mean"
    teacher_weights: tuple[float, ...] | None = None

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, name: str) -> str:
        return LOSSES.check(name)

    def check(self, where: str, task: Any) -> None:
        """What the task decides: `kd` compares class distributions (on regression its term would always
        be 0), and so does the per-sample most confident teacher."""
        if self.loss == "kd" and task.kind != "classification":
            raise RecipeError(
                f"{where} loss 'kd' needs a classification task; task {task.name!r} is regression", fix="use loss: mse or huber"
            )
        if self.ensemble == "confident" and task.kind != "classification":
            raise RecipeError(f"{where}: ensemble 'confident' needs a classification task", fix="use ensemble: mean or weighted")


class DistillObjective(Objective):
    def __init__(self, student: nn.Module, teachers: list[nn.Module], cfg: ObjectiveSpec, *, kind: str, example: torch.Tensor) -> None:
        """Feature pairs read the first teacher's layers; the response loss uses all teachers' combined outputs."""
        super().__init__()
        self.cfg, self.kind = cfg, kind
        self.response = LOSSES.get(cfg.loss)
        self.teachers = list(teachers)  # a plain list keeps the teachers out of this module's parameters
        teacher = self.teachers[0]
        pairs: list[FeaturePair] = list(cfg.features)
        self.student_taps = FeatureTaps(student, [p.student for p in pairs], "student")
        self.teacher_taps = FeatureTaps(teacher, [p.teacher for p in pairs], "teacher")
        self.pairs = pairs
        self.feature_losses = [FEATURE_LOSSES.get(p.loss) for p in pairs]
        self.projectors = nn.ModuleList(self._projectors(student, teacher, example) if pairs else [])
        self.knobs: dict[str, float] = {}
        self.controller: LearnedController | None = None  # set by the stage: chooses the knobs each epoch
        self.agreement: Callable[[], float] | None = None  # teacher-student agreement on validation inputs, for the controller
        self.cache_enabled = False  # set by the stage when teacher outputs may be computed once
        self._cache: dict[str, Any] | None = None
        self.start_epoch(0.0)

    def _projectors(self, student: nn.Module, teacher: nn.Module, example: torch.Tensor) -> list[nn.Module]:
        """One forward pass of each model on `example` gives every pair's feature shapes."""
        with self.student_taps, self.teacher_taps, torch.no_grad():
            was_training = student.training
            student.eval()
            student(example)
            teacher(example)
            student.train(was_training)
        return [
            self._projector(pair, self.student_taps.outputs[pair.student], self.teacher_taps.outputs[pair.teacher]) for pair in self.pairs
        ]

    @staticmethod
    def _projector(pair: FeaturePair, s: torch.Tensor, t: torch.Tensor) -> nn.Module:
        if pair.loss == "attention" and (s.dim() < 3 or t.dim() < 3):
            raise RecipeError(
                f"attention transfer needs spatial features; {pair.student!r} is {tuple(s.shape)}, {pair.teacher!r} is {tuple(t.shape)}"
            )
        if pair.loss == "hint":
            return Projector(s.shape, t.shape, channel_attention=pair.channel_attention)
        return nn.Identity()

    def start_epoch(self, progress: float, gap: float | None = None, initial_gap: float | None = None) -> dict[str, float]:
        """Set this epoch's temperature and weights from their schedules, or from the controller's
        decision when there is one; returns them for the history."""
        knobs = {"temperature": value_of(self.cfg.temperature, progress), "alpha": value_of(self.cfg.alpha, progress, gap, initial_gap)}
        chosen = None
        if self.controller is not None:
            decision = self.controller.decide(progress)
            knobs.update(temperature=decision.temperature, alpha=decision.alpha)
            chosen = decision.pair
            if chosen is not None:
                knobs["feature_pair"] = chosen
        for i, pair in enumerate(self.pairs):
            on = chosen is None or chosen == i
            knobs[f"weight_{i}_{pair.loss}"] = value_of(pair.weight, progress, gap, initial_gap) if on else 0.0
        self.knobs = knobs
        return knobs

    def observe(self, row: dict[str, Any]) -> None:
        """After an epoch is validated: the controller (if any) is rewarded and learns."""
        if self.controller is not None:
            agreement = self.agreement() if self.agreement is not None else None
            val_key = next(k for k in row if k.startswith("val_"))
            row["reward"] = self.controller.observe(row, agreement, val_key)
            if agreement is not None:
                row["agreement"] = agreement

    def get_extra_state(self) -> dict[str, Any]:
        """The controller's state travels in this module's state dict, so an epoch checkpoint restores it."""
        return {"controller": self.controller.state_dict() if self.controller is not None else None}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if self.controller is not None and state.get("controller") is not None:
            self.controller.load_state_dict(state["controller"])

    def __enter__(self) -> DistillObjective:
        self.student_taps.__enter__()
        self.teacher_taps.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.student_taps.__exit__(*exc)
        self.teacher_taps.__exit__(*exc)

    def wrap_train(self, dataset: Dataset) -> Dataset:
        """With caching on: compute every training sample's teacher outputs (and hooked features) once,
        and attach each sample's index to its target so that `forward` can look them up."""
        if not self.cache_enabled:
            return dataset
        outputs: list[list[torch.Tensor]] = [[] for _ in self.teachers]
        features: dict[str, list[torch.Tensor]] = {name: [] for name in self.teacher_taps.names}
        with torch.no_grad():
            for x, _ in DataLoader(dataset, batch_size=256, collate_fn=collate):
                for k, teacher in enumerate(self.teachers):
                    outputs[k].append(teacher(x))
                for name in features:
                    features[name].append(self.teacher_taps.outputs[name])
        self._cache = {"outputs": [torch.cat(o) for o in outputs], "features": {n: torch.cat(f) for n, f in features.items()}}
        return IndexedTargets(dataset)

    def _teacher_view(self, x: torch.Tensor, y: Any) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, torch.Tensor]]:
        """(labels, teacher outputs, teacher features) for a batch: from the cache or by running the teachers."""
        if self._cache is not None:
            y, index = y
            return y, [o[index] for o in self._cache["outputs"]], {n: f[index] for n, f in self._cache["features"].items()}
        with torch.no_grad():
            outputs = [teacher(x) for teacher in self.teachers]
        return y, outputs, {n: self.teacher_taps.outputs[n].detach() for n in self.teacher_taps.names}

    def forward(self, student: nn.Module, x: torch.Tensor, y: Any) -> torch.Tensor:
        temperature = self.knobs["temperature"]
        y, outputs, teacher_features = self._teacher_view(x, y)
        target = combine_teachers(
            outputs,
            mode=self.cfg.ensemble,
            temperature=temperature,
            weights=self.cfg.teacher_weights,
            classification=self.kind == "classification",
        )
        out = student(x)
        soft = self.response(out, target, temperature=temperature)
        loss = distill_objective(soft, task_loss(out, y, self.kind), alpha=self.knobs["alpha"])
        for i, (pair, projector, term) in enumerate(zip(self.pairs, self.projectors, self.feature_losses, strict=True)):
            s, t = projector(self.student_taps.outputs[pair.student]), teacher_features[pair.teacher]
            if pair.loss in ("hint", "attention"):
                s, t = match_spatial(s, t)
            loss = loss + self.knobs[f"weight_{i}_{pair.loss}"] * term(s, t)
        return loss


class IndexedTargets(Dataset):
    """`(x, y)` -> `(x, (y, index))`: lets a cached objective find each sample's teacher outputs."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, tuple[Any, int]]:
        x, y = self.dataset[index]
        return x, (y, index)


class EmaObjective(DistillObjective):
    """Self-distillation (mean teacher): the teacher is an exponential moving average of the student,
    updated after every optimizer step. Distilling from the *current* student under no_grad would give
    a zero gradient at that point (its soft targets equal its own outputs); the average lags behind and
    so carries information the current weights do not."""

    moving_reference = True

    def __init__(self, student: nn.Module, cfg: ObjectiveSpec, *, decay: float, kind: str, example: torch.Tensor) -> None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        average = AveragedModel(student, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        average.requires_grad_(False)
        average.module.eval()  # also keeps the shape probe below from moving its BatchNorm statistics
        super().__init__(student, [average.module], cfg, kind=kind, example=example)
        self._average = [average]  # a list keeps it out of this module's parameters

    def after_step(self, student: nn.Module) -> None:
        self._average[0].update_parameters(student)
        self.teachers[0].eval()

    def measure_reference(self, task: Any) -> float:
        """The average's validation metric this epoch: the adaptive weight follows how far it is ahead."""
        from compress.models.predict import torch_predictor

        return task.evaluate(torch_predictor(self.teachers[0]), "val")[task.metric.name]

    def get_extra_state(self) -> dict[str, Any]:
        """The average travels with this module's state dict, so an epoch checkpoint restores the teacher too."""
        return {**super().get_extra_state(), "average": self._average[0].state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self._average[0].load_state_dict(state["average"])
