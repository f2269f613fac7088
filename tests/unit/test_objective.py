"""One objective contract: distill, prune's fine-tuning and qad fill in the same `ObjectiveSpec`, checked
against the task in one place; `fit` takes an `Objective` whose hooks default to doing nothing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compress.data.builtin import TASKS
from compress.distill.objective import ObjectiveSpec
from compress.distill.trainer import FitConfig, Objective, TaskLoss, fit
from compress.errors import RecipeError
from compress.stages.distill import DistillConfig
from compress.stages.prune import FinetuneConfig
from compress.stages.qad import QadConfig

MLP = {"arch": "mlp", "hidden": [8]}


def test_every_stage_fills_in_the_same_objective():
    pair = {"student": "layer1", "teacher": "layer1", "loss": "hint"}
    distill = DistillConfig(model=MLP, loss="mse", temperature=2.0, alpha=0.5, features=[pair]).objective()
    prune = FinetuneConfig(loss="mse", temperature=2.0, alpha=0.5, features=[pair]).objective()
    qad = QadConfig(loss="mse", temperature=2.0, alpha=0.5).objective()
    assert distill == prune
    assert qad == ObjectiveSpec(loss="mse", temperature=2.0, alpha=0.5)  # one teacher, no feature terms
    weighted = DistillConfig(model=MLP, teacher=["a", "b"], ensemble="weighted", teacher_weights=[2, 1]).objective()
    assert weighted.ensemble == "weighted" and weighted.teacher_weights == (2.0, 1.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ObjectiveSpec(loss="kd"), "loss 'kd' needs a classification task; task 'diabetes' is regression; use loss: mse or huber"),
        (ObjectiveSpec(loss="mse", ensemble="confident"), "ensemble 'confident' needs a classification task"),
    ],
)
def test_the_task_is_checked_in_one_place(spec, message):
    regression, classification = TASKS.get("diabetes")(), TASKS.get("digits")()
    with pytest.raises(RecipeError, match=message):
        spec.check("prune finetune", regression)
    spec.check("prune finetune", classification)  # both fine on a classification task


def test_an_objective_needs_only_forward_and_a_plain_loss_is_one_too():
    task = TASKS.get("digits")()
    cfg = FitConfig(epochs=2, batch_size=256)

    class Plain(Objective):
        def forward(self, model, x, y):
            return nn.functional.cross_entropy(model(x), y)

    for objective in (
        Plain(),
        TaskLoss(lambda m, x, y: nn.functional.cross_entropy(m(x), y)),
        lambda m, x, y: nn.functional.cross_entropy(m(x), y),
    ):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        result = fit(model, task, objective, cfg, seed=0, desc="t", quiet=True)
        assert result.epochs_run == 2 and set(result.history[0]) == {"epoch", "train_loss", "val_accuracy"}  # no knobs, no teacher
    base = Objective()
    assert base.start_epoch(0.5, 0.1, 0.2) == {} and base.measure_reference(task) is None and not base.moving_reference
