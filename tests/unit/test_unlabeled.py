"""Unlabeled inputs for distillation: the task's pool joins the train split with no-label targets, the
hard-label loss skips them, and a task without a pool, or a malformed one, is a one-line error."""

import math

import pytest
import torch
from torch.utils.data import TensorDataset

from compress.data.task import NO_CLASS, TaskData
from compress.distill.losses import task_loss
from compress.errors import DataError


def _task(kind="classification", unlabeled=None):
    x = torch.randn(12, 1, 6)
    y = torch.arange(12) % 3 if kind == "classification" else torch.randn(12, 2)
    split = TensorDataset(x, y)
    return TaskData(split, split, split, kind=kind, num_outputs=3 if kind == "classification" else 2, name="t", unlabeled=unlabeled)


def test_the_pool_follows_the_train_split_with_no_label_targets_and_is_made_once():
    made = []

    def pool():
        made.append(1)
        return torch.randn(5, 1, 6)

    task = _task(unlabeled=pool)
    data = task.with_unlabeled()
    assert len(data) == 17 and data[0][1] == 0 and data[12][1] == NO_CLASS and data[16][1] == NO_CLASS
    task.with_unlabeled()
    assert made == [1]
    regression = _task("regression", unlabeled=torch.randn(4, 1, 6)).with_unlabeled()
    assert len(regression) == 16 and torch.isnan(regression[15][1]).all() and not torch.isnan(regression[0][1]).any()


@pytest.mark.parametrize(
    ("unlabeled", "message"),
    [
        (None, "task 't' has no unlabeled inputs"),
        (torch.randn(5, 6), "unlabeled inputs are a torch.float32 tensor of shape (5, 6), not a float tensor of shape (N, 1, 6)"),
        (torch.zeros(5, 1, 6, dtype=torch.long), "unlabeled inputs are a torch.int64 tensor"),
        (torch.full((2, 1, 6), math.nan), "unlabeled inputs hold NaN or infinite values"),
    ],
)
def test_a_missing_or_malformed_pool_is_a_one_line_error(unlabeled, message):
    with pytest.raises(DataError) as err:
        _task(unlabeled=unlabeled).with_unlabeled()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_hard_label_loss_counts_only_labelled_samples():
    out = torch.randn(4, 3, requires_grad=True)
    labelled = torch.tensor([0, 2, NO_CLASS, NO_CLASS])
    assert torch.isclose(task_loss(out, labelled, "classification"), torch.nn.functional.cross_entropy(out[:2], labelled[:2]))
    none = task_loss(out, torch.full((4,), NO_CLASS), "classification")
    none.backward()
    assert none.item() == 0 and out.grad is not None and not out.grad.any()  # a finite zero, not NaN
    reg_out, targets = torch.randn(3, 2), torch.tensor([[1.0, 2.0], [math.nan, math.nan], [0.0, 1.0]])
    expected = torch.nn.functional.mse_loss(reg_out[[0, 2]], targets[[0, 2]])
    assert torch.isclose(task_loss(reg_out, targets, "regression"), expected)
    assert task_loss(torch.randn(3, 1), torch.tensor([1.0, math.nan, 2.0]), "regression").isfinite()


def test_an_option_added_since_a_run_does_not_make_its_stages_look_changed():
    """`unlabeled` arrived after older runs were recorded: at its default it is left out of the resume key;
    set, it is kept, at the top level and inside prune's fine-tune settings."""
    from compress.config import as_recorded
    from compress.stages.prune import PruneConfig

    old = PruneConfig(model="student").model_dump(mode="json")
    del old["finetune"]["unlabeled"]
    same = PruneConfig(model="student")
    assert as_recorded(same, same.model_dump(mode="json"), old) == old
    changed = PruneConfig(model="student", finetune={"unlabeled": True})
    assert as_recorded(changed, changed.model_dump(mode="json"), old)["finetune"]["unlabeled"] is True
    assert as_recorded(same, same.model_dump(mode="json"), None)["finetune"]["unlabeled"] is False
