"""One training loop for every stage that trains: AdamW, cosine LR, early stopping on the task metric,
best weights restored at the end. The loss is a callable, so the loop knows nothing about distillation."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from compress.config import StageConfig
from compress.data.task import TaskData

__all__ = ["FitConfig", "FitResult", "fit", "torch_predictor"]

BatchLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


class FitConfig(StageConfig):
    """Optimisation settings shared by every training stage."""

    epochs: int = Field(60, ge=0, description="maximum training epochs")
    batch_size: int = Field(64, ge=1, description="training batch size")
    lr: float = Field(3e-3, gt=0, description="peak learning rate (AdamW, cosine decay to 0)")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay")
    patience: int | None = Field(
        None, ge=1, description="stop after this many epochs without a better validation metric; null: run all epochs"
    )
    grad_clip: float | None = Field(None, gt=0, description="clip the gradient norm to this value; null: no clipping")
    augment: bool = Field(True, description="apply the task's training augmentation, if it has one (digits: random 1-pixel shifts)")


@dataclass
class FitResult:
    best_epoch: int
    best_val: float | None
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)


def torch_predictor(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    return predict


def fit(model: nn.Module, task: TaskData, loss_fn: BatchLoss, cfg: FitConfig, *, seed: int, desc: str, quiet: bool) -> FitResult:
    """Train `model` in place; it ends holding the weights of its best validation epoch.

    `loss_fn(model, x, y)` may be an `nn.Module` with parameters of its own (projectors), trained
    alongside, and may have `start_epoch(progress, gap, initial_gap) -> dict`, called before each
    epoch with the validation gap to `loss_fn.reference` (a metric value) when it has one; what it
    returns goes into the history; `after_step(model)`, called after each optimizer step; and
    `wrap_train(dataset) -> dataset`, which may attach data to each target (the loss unpacks it).
    """
    wrap = getattr(loss_fn, "wrap_train", None)
    train = wrap(task.train) if wrap is not None else task.train
    loader = DataLoader(train, batch_size=cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    extra = list(loss_fn.parameters()) if isinstance(loss_fn, nn.Module) else []
    optimizer = torch.optim.AdamW([*model.parameters(), *extra], lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = max(1, cfg.epochs * len(loader))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))
    metric = task.metric
    result, best_state = FitResult(0, None, 0), copy.deepcopy(model.state_dict())
    gaps: list[float] = []
    bar = tqdm(range(1, cfg.epochs + 1), desc=desc, unit="epoch", disable=quiet, leave=False)
    for epoch in bar:
        knobs = _start_epoch(loss_fn, (epoch - 1) / max(cfg.epochs, 1), gaps)
        train_loss = _train_epoch(model, loader, loss_fn, optimizer, schedule, task.augment if cfg.augment else None, cfg.grad_clip)
        model.eval()
        val = task.evaluate(torch_predictor(model), "val")[metric.name]
        reference = getattr(loss_fn, "reference", None)
        if reference is not None:
            gaps.append((reference - val) if metric.higher_is_better else (val - reference))
        result.history.append({"epoch": epoch, "train_loss": train_loss, f"val_{metric.name}": val, **knobs})
        result.epochs_run = epoch
        if metric.better(val, result.best_val):
            result.best_val, result.best_epoch, best_state = val, epoch, copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{train_loss:.4f}", **{f"val_{metric.name}": f"{val:.4f}"})
        if cfg.patience is not None and epoch - result.best_epoch >= cfg.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    return result


def _start_epoch(loss_fn: BatchLoss, progress: float, gaps: list[float]) -> dict[str, float]:
    start = getattr(loss_fn, "start_epoch", None)
    if start is None:
        return {}
    return start(progress, gaps[-1] if gaps else None, gaps[0] if gaps else None)


def _train_epoch(model: nn.Module, loader, loss_fn: BatchLoss, optimizer, schedule, augment, grad_clip: float | None) -> float:
    model.train()
    after_step = getattr(loss_fn, "after_step", None)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    total, count = 0.0, 0
    for x, y in loader:
        if augment is not None:
            x = augment(x)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, x, y)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        if after_step is not None:
            after_step(model)
        schedule.step()
        total += loss.item() * len(x)
        count += len(x)
    return total / max(count, 1)
