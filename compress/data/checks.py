"""What a task's data must satisfy before anything trains on it, checked where the data arrives: finite
values, one input shape across samples and splits, class labels in range. Each failure is one line
naming the task, the split and the first bad sample."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from compress.errors import DataError, first_line

if TYPE_CHECKING:
    from compress.data.task import TaskData

__all__ = ["check_task_data", "collate"]

SPLITS = ("train", "val", "test")
FULL_SCAN = 20_000
"""Datasets up to this size are checked sample by sample; larger ones at evenly spaced samples (and every
batch is still checked for shape when it is stacked, see `collate`)."""
SPOT_CHECKS = 2_000


def check_task_data(task: TaskData) -> None:
    for split in SPLITS:
        if len(getattr(task, split)) == 0:
            raise DataError(f"task {task.name!r}: the {split} split is empty")
        _check_finite(task, split)
    shapes = {split: _shape(task, split, getattr(task, split)[0][0], 0) for split in SPLITS}
    for split in SPLITS:
        if shapes[split] != shapes["train"]:
            raise DataError(
                f"task {task.name!r}: the {split} split's inputs have shape {shapes[split]}, the train split's {shapes['train']}",
                fix="give every split inputs of one shape",
            )
        _check_samples(task, split, shapes["train"])


def collate(batch: Sequence[Any]) -> Any:
    """`default_collate`, with samples of different shapes as a one-line error instead of torch's stack error."""
    try:
        return default_collate(batch)
    except RuntimeError as err:
        raise DataError(
            f"samples of different shapes in one batch ({first_line(err)})", fix="give every sample one shape (pad or crop)"
        ) from None


def _shape(task: TaskData, split: str, x: Any, index: int) -> tuple[int, ...]:
    if not isinstance(x, torch.Tensor | np.ndarray):
        raise DataError(
            f"task {task.name!r}: the {split} split's sample {index} has an input of type {type(x).__name__}, not a tensor",
            fix="return (tensor input, target) pairs from the dataset",
        )
    return tuple(x.shape)


def _check_finite(task: TaskData, split: str) -> None:
    """NaN or inf in the data would train a NaN model: refused before training, naming the first sample.
    (Checked on tensor datasets, which hold their data; others are checked sample by sample below.)"""
    for role, tensor in zip(("inputs", "targets"), getattr(getattr(task, split), "tensors", ()), strict=False):
        if tensor.is_floating_point():
            bad = ~torch.isfinite(tensor.reshape(len(tensor), -1)).all(dim=1)
            _refuse(task, split, bad, f"the {split} split's {role} hold NaN or inf", "drop or impute those samples before training")


def _check_samples(task: TaskData, split: str, shape: tuple[int, ...]) -> None:
    dataset: Dataset = getattr(task, split)
    tensors = getattr(dataset, "tensors", None)
    if tensors is not None and len(tensors) == 2:  # a TensorDataset: one shape by construction, labels at once
        if task.kind == "classification":
            labels = tensors[1]
            bad = ((labels < 0) | (labels >= task.num_outputs)).reshape(len(labels), -1).any(dim=1)
            _refuse(task, split, bad, _labels_message(task, split), _LABEL_FIX)
        return
    n = len(dataset)  # type: ignore[arg-type]
    indices = range(n) if n <= FULL_SCAN else sorted({round(i * (n - 1) / (SPOT_CHECKS - 1)) for i in range(SPOT_CHECKS)})
    for i in indices:
        x, y = dataset[i]
        if _shape(task, split, x, i) != shape:
            raise DataError(
                f"task {task.name!r}: the {split} split's sample {i} has shape {tuple(x.shape)}, sample 0 of train {shape}",
                fix="give every sample one shape (pad or crop)",
            )
        if not torch.isfinite(torch.as_tensor(x, dtype=torch.float32)).all():
            raise DataError(f"task {task.name!r}: the {split} split's sample {i} holds NaN or inf", fix="drop or impute it before training")
        if task.kind == "classification" and not 0 <= int(torch.as_tensor(y)) < task.num_outputs:
            raise DataError(f"{_labels_message(task, split)} (sample {i} has label {int(torch.as_tensor(y))})", fix=_LABEL_FIX)


_LABEL_FIX = "labels must be class indices 0 .. num_outputs - 1: relabel, or raise num_outputs"


def _labels_message(task: TaskData, split: str) -> str:
    return f"task {task.name!r}: the {split} split has labels outside 0..{task.num_outputs - 1}"


def _refuse(task: TaskData, split: str, bad: torch.Tensor, what: str, fix: str) -> None:
    if bad.any():
        first = int(bad.nonzero()[0])
        message = what if what.startswith("task ") else f"task {task.name!r}: {what}"
        raise DataError(f"{message} ({int(bad.sum())} samples, the first at index {first})", fix=fix)
