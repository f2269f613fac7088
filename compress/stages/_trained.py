"""What every stage that produces a PyTorch model does at its end: save, score on test, record."""

from __future__ import annotations

from typing import Any

from torch import nn

from compress.context import ModelRecord, RunContext
from compress.distill.trainer import FitResult, torch_predictor
from compress.models.spec import ModelSpec, save_checkpoint

__all__ = ["register_model", "param_count", "TRAIN_STATE"]

TRAIN_STATE = "train_state.pt"  # the resumable state of an unfinished training stage, written after every epoch


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def register_model(
    ctx: RunContext, name: str, spec: ModelSpec, model: nn.Module, fit: FitResult | None = None, *, structure: bool = False
) -> dict[str, Any]:
    """Save `model`'s weights in the stage folder, score it (PyTorch, test split), add it to the context.
    `structure`: the model's layer sizes differ from its spec (pruned); they are saved with the weights."""
    path = ctx.out(f"{name}.pt")
    save_checkpoint(model, path, structure=structure)
    model.eval()
    scores = ctx.task.evaluate(torch_predictor(model), "test")
    metric = ctx.task.metric.name
    summary: dict[str, Any] = {"params": param_count(model), f"test_{metric}_torch": scores[metric]}
    if fit is not None:
        summary |= {"epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch, f"best_val_{metric}": fit.best_val, "history": fit.history}
        if fit.resumed_after_epoch:
            summary["resumed_after_epoch"] = fit.resumed_after_epoch
        if fit.world_size > 1:
            summary["data_parallel"] = {
                "world_size": fit.world_size,
                "steps_per_epoch": fit.steps_per_epoch,
                "ranks_agree": fit.ranks_agree,
            }
    record = ModelRecord(
        name=name,
        stage=ctx.stage_id,
        spec=spec.model_copy(update={"checkpoint": None}),
        checkpoint=ctx.relative(path),
        metrics={"torch_test": scores, "params": summary["params"]},
    )
    ctx.put_model(record, model)
    ctx.metrics[name] = summary
    ctx.log(f"  {name}: {summary['params']:,} parameters, test {metric} (PyTorch) {scores[metric]:.4f}")
    return summary
