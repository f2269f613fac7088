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

__all__ = ["check_task_data", "check_unlabeled", "collate"]

SPLITS = ("train", "val", "test")
FULL_SCAN = 20_000
"""Datasets up to this size are checked sample by sample; larger ones at evenly spaced samples (and every
batch is still checked for shape when it is stacked, see `collate`)."""
SPOT_CHECKS = 2_000


def check_task_data(task: TaskData) -> None:
    if not isinstance(task.num_outputs, int) or task.num_outputs < 1:
        raise DataError(
            f"task {task.name!r}: num_outputs is {task.num_outputs!r}", fix="give the number of classes (or regression targets), 1 or more"
        )
    for split in SPLITS:
        if _length(task, split) == 0:
            raise DataError(f"task {task.name!r}: the {split} split is empty")
        _check_finite(task, split)
    shapes = {split: _shape(task, split, _sample(task, split, 0)[0], 0) for split in SPLITS}
    for split in SPLITS:
        if shapes[split] != shapes["train"]:
            raise DataError(
                f"task {task.name!r}: the {split} split's inputs have shape {shapes[split]}, the train split's {shapes['train']}",
                fix="give every split inputs of one shape",
            )
        _check_samples(task, split, shapes["train"])


def check_unlabeled(task: TaskData, inputs: Any) -> torch.Tensor:
    """The task's unlabeled inputs as a float tensor shaped like its train inputs, or a one-line error."""
    shape = _shape(task, "train", _sample(task, "train", 0)[0], 0)
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point() or tuple(inputs.shape[1:]) != shape or not len(inputs):
        found = f"a {inputs.dtype} tensor of shape {tuple(inputs.shape)}" if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise DataError(
            f"task {task.name!r}: unlabeled inputs are {found}, not a float tensor of shape (N, {', '.join(map(str, shape))})",
            fix="give a float tensor of N inputs shaped like the train split's",
        )
    if not torch.isfinite(inputs).all():
        raise DataError(f"task {task.name!r}: unlabeled inputs hold NaN or infinite values", fix="drop or repair those inputs")
    return inputs.float()


def collate(batch: Sequence[Any]) -> Any:
    """`default_collate`, with samples of different shapes as a one-line error instead of torch's stack error."""
    try:
        return default_collate(batch)
    except RuntimeError as err:
        raise DataError(
            f"samples of different shapes in one batch ({first_line(err)})", fix="give every sample one shape (pad or crop)"
        ) from None


def _length(task: TaskData, split: str) -> int:
    try:
        return len(getattr(task, split))
    except TypeError:
        raise DataError(
            f"task {task.name!r}: the {split} split has no length (an iterable dataset?)",
            fix="give a map-style torch.utils.data.Dataset (with __len__ and __getitem__), e.g. a TensorDataset",
        ) from None


def _sample(task: TaskData, split: str, index: int) -> tuple[Any, Any]:
    """The dataset's sample `index` as (input, target); its failure is the dataset's, named as such."""
    try:
        x, y = getattr(task, split)[index]
    except Exception as err:
        raise DataError(
            f"task {task.name!r}: reading sample {index} of the {split} split failed: {type(err).__name__}: {first_line(err)}",
            fix="each sample must be an (input, target) pair; fix the dataset's __getitem__",
        ) from err
    return x, y


def _shape(task: TaskData, split: str, x: Any, index: int) -> tuple[int, ...]:
    where = f"task {task.name!r}: the {split} split's sample {index}"
    if not isinstance(x, torch.Tensor | np.ndarray):
        raise DataError(
            f"{where} has an input of type {type(x).__name__}, not a tensor", fix="return (tensor input, target) pairs from the dataset"
        )
    if not (x.dtype.is_floating_point if isinstance(x, torch.Tensor) else np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{where} has {x.dtype} inputs; models take floating-point inputs", fix="convert them, e.g. x.float()")
    if x.ndim == 0:
        raise DataError(f"{where} has a scalar input (shape ())", fix="give each input at least one dimension, e.g. x.unsqueeze(-1)")
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
            _check_label_type(task, split, labels, 0, one=False)
            bad = ((labels < 0) | (labels >= task.num_outputs)).reshape(len(labels), -1).any(dim=1)
            _refuse(task, split, bad, _labels_message(task, split), _LABEL_FIX)
        return
    n = len(dataset)  # type: ignore[arg-type]
    indices = range(n) if n <= FULL_SCAN else sorted({round(i * (n - 1) / (SPOT_CHECKS - 1)) for i in range(SPOT_CHECKS)})
    for i in indices:
        x, y = _sample(task, split, i)
        if _shape(task, split, x, i) != shape:
            raise DataError(
                f"task {task.name!r}: the {split} split's sample {i} has shape {tuple(x.shape)}, sample 0 of train {shape}",
                fix="give every sample one shape (pad or crop)",
            )
        if not torch.isfinite(torch.as_tensor(x, dtype=torch.float32)).all():
            raise DataError(f"task {task.name!r}: the {split} split's sample {i} holds NaN or inf", fix="drop or impute it before training")
        if task.kind == "classification":
            _check_label_type(task, split, torch.as_tensor(y), i, one=True)
        if task.kind == "classification" and not 0 <= int(torch.as_tensor(y)) < task.num_outputs:
            raise DataError(f"{_labels_message(task, split)} (sample {i} has label {int(torch.as_tensor(y))})", fix=_LABEL_FIX)


def _check_label_type(task: TaskData, split: str, labels: torch.Tensor, index: int, *, one: bool) -> None:
    """Class labels are whole numbers, one per sample (cross-entropy reads them as class indices); `one`:
    `labels` is one sample's, else a whole split's."""
    per_sample = labels.numel() if one else (labels[0].numel() if labels.ndim > 1 else 1)
    if labels.is_floating_point() or labels.dtype == torch.bool or per_sample != 1:
        raise DataError(
            f"task {task.name!r}: the {split} split's labels are {labels.dtype} of shape {tuple(labels.shape)} (from sample {index}); "
            "a classification task needs one class index per sample",
            fix="give one integer class index per sample (y.long(), or y.argmax(-1) for one-hot rows), or kind='regression' for real values",
        )


_LABEL_FIX = "labels must be class indices 0 .. num_outputs - 1: relabel, or raise num_outputs"


def _labels_message(task: TaskData, split: str) -> str:
    return f"task {task.name!r}: the {split} split has labels outside 0..{task.num_outputs - 1}"


def _refuse(task: TaskData, split: str, bad: torch.Tensor, what: str, fix: str) -> None:
    if bad.any():
        first = int(bad.nonzero()[0])
        message = what if what.startswith("task ") else f"task {task.name!r}: {what}"
        raise DataError(f"{message} ({int(bad.sum())} samples, the first at index {first})", fix=fix)
