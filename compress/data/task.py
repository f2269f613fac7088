"""What a task gives the pipeline: three splits, the kind of output, and a metric."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, TensorDataset

from compress.data.checks import check_task_data, check_unlabeled, collate
from compress.data.metrics import ACCURACY, MSE, Metric
from compress.errors import DataError

__all__ = ["TaskData", "predict_numpy", "no_label", "NO_CLASS"]

NO_CLASS = -100
"""The target of an unlabeled input in a classification task (cross-entropy's ignore_index)."""


def no_label(kind: str, num_outputs: int) -> torch.Tensor:
    """The target an unlabeled input carries: NO_CLASS for classification, NaN per output for regression."""
    return torch.tensor(NO_CLASS) if kind == "classification" else torch.full((num_outputs,), float("nan"))


Kind = Literal["classification", "regression"]


@dataclass
class TaskData:
    """Built-in tasks and user factories (`module:function` in a recipe) both return this.

    Each split yields `(input, target)` pairs; inputs are float tensors of one fixed shape,
    targets are class indices (classification) or float tensors of shape `(num_outputs,)`.
    `augment`, if given, maps a training input batch to a randomly perturbed one.
    `unlabeled`, if given, holds inputs without targets (a float tensor shaped `(N, *input shape)`, or a
    function returning one when first asked): `distill: {unlabeled: true}` trains the student on the
    teacher's outputs for them too, on top of the train split.
    """

    train: Dataset
    val: Dataset
    test: Dataset
    kind: Kind
    num_outputs: int
    name: str = "custom"
    metric: Metric = field(default=None)  # type: ignore[assignment]
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None  # random training-time transform of an input batch
    unlabeled: torch.Tensor | Callable[[], torch.Tensor] | None = None  # inputs without targets, for distillation

    def __post_init__(self) -> None:
        if self.kind not in ("classification", "regression"):
            raise DataError(f"task {self.name!r}: kind must be 'classification' or 'regression'")
        if self.metric is None:
            self.metric = ACCURACY if self.kind == "classification" else MSE
        check_task_data(self)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.test[0][0].shape)

    def example_input(self, batch: int = 1, split: str = "test") -> torch.Tensor:
        """The first `batch` inputs of a split (fewer if the split is smaller), stacked."""
        data = getattr(self, split)
        return torch.stack([data[i][0] for i in range(min(batch, len(data)))])

    def full_batch(self, batch_size: int, split: str = "test") -> torch.Tensor:
        """Exactly `batch_size` inputs for timing: the split's first samples, repeated if it is smaller."""
        x = self.example_input(batch_size, split)
        return x.repeat(-(-batch_size // len(x)), *([1] * (x.dim() - 1)))[:batch_size]

    def loader(self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> DataLoader:
        generator = torch.Generator().manual_seed(seed)
        return DataLoader(getattr(self, split), batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=collate)

    def on_model(self, name: str, module: Callable[[], torch.nn.Module]) -> None:
        """Called when the run gains or replaces the model `name` (`module()` builds it). A task whose data
        depends on a model updates itself here: a policy task's states come from its expert's episodes."""

    def with_unlabeled(self) -> Dataset:
        """The train split followed by the unlabeled inputs, each paired with `no_label(kind)` as its
        target (the hard-label loss skips those); a one-line error when the task has none."""
        if self.unlabeled is None:
            raise DataError(
                f"task {self.name!r} has no unlabeled inputs",
                fix="give them in your task factory (TaskData(..., unlabeled=inputs)), or remove 'unlabeled' from the stage",
            )
        if callable(self.unlabeled):
            self.unlabeled = self.unlabeled()  # made once, when first asked for
        inputs = check_unlabeled(self, self.unlabeled)
        fill = no_label(self.kind, self.num_outputs)
        return ConcatDataset([self.train, TensorDataset(inputs, fill.expand(len(inputs), *fill.shape))])

    def targets(self, split: str) -> np.ndarray:
        dataset = getattr(self, split)
        return torch.stack([torch.as_tensor(dataset[i][1]) for i in range(len(dataset))]).numpy()

    def evaluate(self, predict: Callable[[np.ndarray], np.ndarray], split: str, batch_size: int = 256) -> dict[str, float]:
        """Metric values of `predict` (numpy batch -> numpy outputs) on one split."""
        outputs = predict_numpy(predict, self.loader(split, batch_size))
        return self.metric.compute(outputs, self.targets(split))


def predict_numpy(predict: Callable[[np.ndarray], np.ndarray], loader: DataLoader) -> np.ndarray:
    return np.concatenate([np.asarray(predict(x.numpy())) for x, _ in loader])
