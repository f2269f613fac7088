"""What every stage that produces a PyTorch model does at its end: save, score on test, record."""

from __future__ import annotations

from torch import nn

from compress.context import RunContext
from compress.distill.trainer import FitResult
from compress.models.predict import torch_predictor
from compress.models.spec import ModelSpec, save_checkpoint
from compress.records import ModelRecord, Score, Training

__all__ = ["register_model", "param_count", "training_of", "TRAIN_STATE"]

TRAIN_STATE = "train_state.pt"  # the resumable state of an unfinished training stage, written after every epoch


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def training_of(fit: FitResult) -> Training:
    """A fit's typed record: epochs, best epoch and validation value, history, resume and data-parallel facts."""
    parallel = None
    if fit.world_size > 1:
        parallel = {"world_size": fit.world_size, "steps_per_epoch": fit.steps_per_epoch, "ranks_agree": fit.ranks_agree}
    return Training(
        epochs_run=fit.epochs_run,
        best_epoch=fit.best_epoch,
        best_val=fit.best_val,
        history=fit.history,
        resumed_after_epoch=fit.resumed_after_epoch or None,
        data_parallel=parallel,
    )


def register_model(
    ctx: RunContext,
    name: str,
    spec: ModelSpec,
    model: nn.Module,
    training: Training | None = None,
    *,
    parent: str | None = None,
    structure: bool = False,
) -> ModelRecord:
    """Save `model`'s weights in the stage folder, score it (PyTorch, test split), add it to the context.
    `parent`: the model it was made from. `structure`: the model's layer sizes differ from its spec
    (pruned); they are saved with the weights."""
    path = ctx.out(f"{name}.pt")
    save_checkpoint(model, path, structure=structure)
    model.eval()
    scores = ctx.task.evaluate(torch_predictor(model), "test")
    record = ModelRecord(
        name=name,
        stage=ctx.stage_id,
        spec=spec.model_copy(update={"checkpoint": None}),
        parent=parent,
        checkpoint=ctx.relative(path),
        params=param_count(model),
        scores=[Score(split="test", runtime="torch", metric=k, value=v) for k, v in scores.items()],
        training=training,
    )
    ctx.put_model(record, model)
    metric = ctx.task.metric.name
    ctx.log(f"  {name}: {record.params:,} parameters, test {metric} (PyTorch) {scores[metric]:.4f}")
    return record
