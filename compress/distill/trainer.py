"""One training loop for every stage that trains: AdamW, cosine LR, early stopping on the task metric,
best weights restored at the end. The loss is a callable, so the loop knows nothing about distillation."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from pydantic import Field
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler

from compress import distributed
from compress.config import BatchSize, StageConfig
from compress.data.checks import collate
from compress.data.task import TaskData
from compress.errors import ModelError, RecipeError
from compress.fsio import atomic_path
from compress.models.predict import torch_predictor
from compress.progress import progress

__all__ = ["UNLABELED", "EpochData", "FitConfig", "FitResult", "Objective", "TaskLoss", "fit", "torch_predictor"]

log = logging.getLogger("compress")
BatchLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


class Objective(nn.Module):
    """What `fit` minimises: `forward(model, x, y) -> loss`, plus hooks that default to doing nothing.

    It may have parameters of its own (projectors), trained alongside the model. `reference`: a metric
    value the validation gap is measured against (for adaptive weights); with `moving_reference`,
    `measure_reference(task)` re-measures it every epoch (a teacher that moves)."""

    reference: float | None = None
    moving_reference: bool = False

    def wrap_train(self, dataset: Dataset) -> Dataset:
        """The training set as this objective reads it (it may attach data to each target)."""
        return dataset

    def start_epoch(self, progress: float, gap: float | None = None, initial_gap: float | None = None) -> dict[str, float]:
        """Called before each epoch (`progress` in [0, 1), the validation gap to `reference`); what it
        returns goes into the history."""
        return {}

    def after_step(self, model: nn.Module) -> None:
        """Called after each optimizer step."""

    def observe(self, row: dict[str, Any]) -> None:
        """Called with each epoch's history row once it is validated (a controller learns from it)."""

    def measure_reference(self, task: TaskData) -> float | None:
        return self.reference


class TaskLoss(Objective):
    """A plain loss `fn(model, x, y)` as an objective with no hooks (training without a teacher)."""

    def __init__(self, fn: BatchLoss) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, model: nn.Module, x: torch.Tensor, y: Any) -> torch.Tensor:
        return self.fn(model, x, y)


UNLABELED = (
    "also train on the task's unlabeled inputs (mnist1d has 20,000; a factory gives them as TaskData(unlabeled=...)), "
    "whose only targets are the teacher's outputs; an epoch then covers the train split and them"
)
"""The `unlabeled` option of the stages that distill (distill, prune's fine-tuning, qad)."""


class FitConfig(StageConfig):
    """Optimisation settings shared by every training stage."""

    epochs: int = Field(60, ge=1, description="maximum training epochs")
    batch_size: BatchSize = Field(64, description="training batch size")
    lr: float = Field(3e-3, gt=0, description="peak learning rate (AdamW, cosine decay to 0)")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay")
    patience: int | None = Field(
        None, ge=1, description="stop after this many epochs without a better validation metric; null: run all epochs"
    )
    grad_clip: float | None = Field(None, gt=0, description="clip the gradient norm to this value; null: no clipping")
    augment: bool = Field(True, description="apply the task's training augmentation, if it has one (digits: random 1-pixel shifts)")

    def augmentation(self, task: TaskData) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The augmentation training applies: the task's, unless switched off or absent."""
        return task.augment if self.augment else None


@dataclass
class FitResult:
    best_epoch: int
    best_val: float | None
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    steps_per_epoch: int = 0
    world_size: int = 1
    ranks_agree: bool = True
    resumed_after_epoch: int = 0


def fit(
    model: nn.Module,
    task: TaskData,
    objective: Objective | BatchLoss,
    cfg: FitConfig,
    *,
    seed: int,
    desc: str,
    quiet: bool,
    checkpoint: Path | None = None,
    data: EpochData | None = None,
    train: Dataset | None = None,
) -> FitResult:
    """Train `model` in place; it ends holding the weights of its best validation epoch.

    `objective`: an `Objective` (its hooks are called around each epoch and step), or a plain
    `loss(model, x, y)` (taken as a `TaskLoss`).

    `data` replaces the task's training split with a dataset that grows between epochs (DAgger):
    `data.before_epoch(model, epoch)` runs before every epoch but the first and may add samples; an
    epoch is then as many samples, drawn without replacement, as the dataset held at the start.

    `train` replaces the task's training split for the whole fit (the split plus unlabeled inputs).

    With `checkpoint`, the full training state (weights, objective, optimizer, schedule, random
    streams, best epoch so far) is written there atomically after every epoch and training resumes
    from it when it exists. The file stays when training ends (a stop before the result is recorded
    must not lose the epochs): its owner removes it, the pipeline once the stage is in the manifest. Under torchrun the work is split
    across ranks (see `compress.distributed`); `cfg.batch_size` stays the global batch.
    """
    rank, size = distributed.world()
    loss_fn = objective if isinstance(objective, Objective) else TaskLoss(objective)
    source = data.dataset if data is not None else task.train if train is None else train
    train = loss_fn.wrap_train(source)
    generator = torch.Generator().manual_seed(seed)
    sampler = _sampler(train, size, rank, seed, generator, growing=data is not None)
    loader = DataLoader(
        train,
        batch_size=max(1, math.ceil(cfg.batch_size / size)),
        shuffle=sampler is None,
        sampler=sampler,
        generator=generator,
        collate_fn=collate,
    )
    step = _Step(model, loss_fn)
    runner: nn.Module = DistributedDataParallel(step) if size > 1 else step
    optimizer = torch.optim.AdamW(step.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = max(1, cfg.epochs * len(loader))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, total) / total)))
    metric = task.metric
    state = _FitState(result=FitResult(0, None, 0, steps_per_epoch=len(loader), world_size=size), best=copy.deepcopy(model.state_dict()))
    saved = distributed.broadcast_object(_load_state(checkpoint) if checkpoint is not None and checkpoint.exists() else None)
    if saved is not None:
        state.restore(saved, step, optimizer, schedule, generator, data)
        state.result.resumed_after_epoch = state.result.epochs_run
        log.info("  %s: resuming after epoch %d (from %s)", desc, state.result.epochs_run, checkpoint)
    moving = loss_fn.moving_reference
    bar = progress(range(state.result.epochs_run + 1, cfg.epochs + 1), desc=desc, unit="epoch", disable=quiet)
    for epoch in bar:
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        grown = data.before_epoch(model, epoch) if data is not None and epoch > 1 else {}
        knobs = _start_epoch(loss_fn, (epoch - 1) / max(cfg.epochs, 1), state.gaps, moving=moving)
        train_loss = _train_epoch(model, runner, loader, optimizer, schedule, cfg.augmentation(task), cfg.grad_clip, loss_fn)
        _check_finite(model, train_loss, desc=desc, epoch=epoch, lr=cfg.lr)
        distributed.sync_state(model)  # BatchNorm statistics differ per shard; rank 0's decide
        model.eval()
        val = distributed.broadcast_object(task.evaluate(torch_predictor(model), "val")[metric.name])
        reference = distributed.broadcast_object(loss_fn.measure_reference(task))
        if reference is not None:
            state.gaps.append((reference - val) if metric.higher_is_better else (val - reference))
        result = state.result
        teacher = {f"teacher_val_{metric.name}": reference} if moving else {}
        result.history.append({"epoch": epoch, "train_loss": train_loss, f"val_{metric.name}": val, **teacher, **knobs, **grown})
        loss_fn.observe(result.history[-1])
        result.epochs_run = epoch
        if metric.better(val, result.best_val):
            result.best_val, result.best_epoch, state.best = val, epoch, copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{train_loss:.4f}", **{f"val_{metric.name}": f"{val:.4f}"})
        stop = cfg.patience is not None and epoch - result.best_epoch >= cfg.patience
        if checkpoint is not None and distributed.is_main() and not stop:  # the last epoch too: see below
            _save_state(checkpoint, state.capture(epoch, step, optimizer, schedule, generator, data))
        if stop:
            break
    bar.close()
    model.load_state_dict(state.best)
    model.eval()
    state.result.ranks_agree = distributed.ranks_agree(model)
    return state.result


class EpochData(Protocol):
    """A training set that changes between epochs (see `fit`'s `data`)."""

    dataset: Dataset

    def before_epoch(self, model: nn.Module, epoch: int) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _sampler(train: Dataset, size: int, rank: int, seed: int, generator: torch.Generator, *, growing: bool) -> Sampler | None:
    if growing:
        if size > 1:
            raise RecipeError(
                "training data that grows between epochs (dagger) cannot be split across torchrun ranks", fix="run it in one process"
            )
        return RandomSampler(train, num_samples=len(train), generator=generator)  # type: ignore[arg-type]
    return DistributedSampler(train, num_replicas=size, rank=rank, shuffle=True, seed=seed) if size > 1 else None


class _Step(nn.Module):
    """The model and the objective (with its projectors) as one module, so one optimizer and one
    DistributedDataParallel wrapper cover both."""

    def __init__(self, model: nn.Module, loss_fn: BatchLoss) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, x: torch.Tensor, y: Any) -> torch.Tensor:
        return self.loss_fn(self.model, x, y)


@dataclass
class _FitState:
    """What training needs to continue exactly where it stopped."""

    result: FitResult
    best: dict[str, torch.Tensor]
    gaps: list[float] = field(default_factory=list)

    def capture(self, epoch: int, step: _Step, optimizer, schedule, generator: torch.Generator, data: EpochData | None) -> dict[str, Any]:
        r = self.result
        return {
            "data": data.state_dict() if data is not None else None,
            "epoch": epoch,
            "step": step.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "best": self.best,
            "best_val": r.best_val,
            "best_epoch": r.best_epoch,
            "history": r.history,
            "gaps": self.gaps,
            "torch_rng": torch.get_rng_state(),
            "loader_rng": generator.get_state(),
        }

    def restore(self, saved: dict[str, Any], step: _Step, optimizer, schedule, generator: torch.Generator, data: EpochData | None) -> None:
        if data is not None and saved.get("data") is not None:
            data.load_state_dict(saved["data"])  # first: the objective's state may refer to the grown data
        step.load_state_dict(saved["step"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        self.best, self.gaps = saved["best"], list(saved["gaps"])
        r = self.result
        r.best_val, r.best_epoch, r.epochs_run, r.history = saved["best_val"], saved["best_epoch"], saved["epoch"], list(saved["history"])
        torch.set_rng_state(saved["torch_rng"])
        generator.set_state(saved["loader_rng"])


def _save_state(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_state(path: Path) -> dict[str, Any] | None:
    try:
        return torch.load(path, weights_only=True)
    except Exception as err:  # a damaged file: start the stage again rather than fail the run
        log.warning("  ignoring unreadable training checkpoint %s (%s); starting the stage again", path, err)
        return None


def _check_finite(model: nn.Module, loss: float, *, desc: str, epoch: int, lr: float) -> None:
    """Divergence is an error, not a model: a non-finite loss or weight stops training before it is saved."""
    bad = not math.isfinite(loss) or any(not torch.isfinite(p).all() for p in model.parameters())
    if distributed.broadcast_object(bad if distributed.is_main() else None):
        raise ModelError(
            f"{desc}: training diverged in epoch {epoch} (loss {loss:g}, or weights no longer finite)",
            fix=f"lower lr (now {lr:g}), set grad_clip, or look for extreme values in the data",
        )


def _start_epoch(loss_fn: Objective, progress: float, gaps: list[float], *, moving: bool) -> dict[str, float]:
    """A fixed teacher's gap is measured against the first epoch's; a moving teacher's (EMA) against
    the largest seen so far, since it starts as untrained as the student."""
    start = loss_fn.start_epoch
    if not gaps:  # nothing measured yet: a moving teacher is as untrained as the student, so no pull
        return start(progress, 0.0, 0.0) if moving else start(progress, None, None)
    return start(progress, gaps[-1], max(gaps) if moving else gaps[0])


def _train_epoch(
    model: nn.Module, runner: nn.Module, loader, optimizer, schedule, augment, grad_clip: float | None, loss_fn: Objective
) -> float:
    model.train()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    total, count = 0.0, 0
    for x, y in loader:
        if augment is not None:
            x = augment(x)
        optimizer.zero_grad(set_to_none=True)
        loss = runner(x, y)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        loss_fn.after_step(model)
        schedule.step()
        total += loss.item() * len(x)
        count += len(x)
    return total / max(count, 1)
