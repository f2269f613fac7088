"""Built-in tasks, all offline: scikit-learn's bundled sets and mnist1d's generator."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset

from compress.data.task import TaskData
from compress.registry import Registry

__all__ = ["TASKS"]

TASKS: Registry = Registry("task")
SPLIT_SEED = 0  # fixed: every run of a task sees the same train/val/test split


def _split(x: np.ndarray, y: np.ndarray, test: float, val: float, stratify: bool) -> tuple:
    """Stratified (for classes) train/val/test split; `val` is a fraction of the whole set."""
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test, random_state=SPLIT_SEED, stratify=y if stratify else None)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val / (1 - test), random_state=SPLIT_SEED, stratify=y_rest if stratify else None
    )
    return (x_train, y_train), (x_val, y_val), (x_test, y_test)


def _datasets(splits: tuple, target_dtype: torch.dtype) -> list[TensorDataset]:
    return [TensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=target_dtype)) for x, y in splits]


def random_shift(x: torch.Tensor, max_shift: int = 1) -> torch.Tensor:
    """Shift each image of a (N, C, H, W) batch by up to `max_shift` pixels in each direction, zero fill."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy, dx = (torch.randint(0, 2 * max_shift + 1, (n, 1)) for _ in range(2))
    rows, cols = torch.arange(h)[None] + dy, torch.arange(w)[None] + dx  # (n, h), (n, w)
    out = padded[torch.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous()


@TASKS.register("digits")
def digits() -> TaskData:
    """scikit-learn's 8x8 handwritten digits (1797 images), 70/10/20 stratified split, pixels scaled to [0, 1];
    training augmentation: random shifts of up to one pixel."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    train, val, test = _datasets(_split(x, data.target, 0.2, 0.1, stratify=True), torch.long)
    return TaskData(train, val, test, kind="classification", num_outputs=10, name="digits", augment=random_shift)


@TASKS.register("mnist1d")
def mnist1d() -> TaskData:
    """The mnist1d package's default generated dataset: 4000 train (400 held out for validation) / 1000 test,
    plus a pool of 20,000 unlabeled inputs from the same generator (another seed) for `distill: {unlabeled: true}`."""
    from mnist1d.data import get_dataset_args, make_dataset

    state = np.random.get_state()  # make_dataset reseeds numpy's global generator
    data = make_dataset(get_dataset_args())
    np.random.set_state(state)
    x, y = data["x"].astype(np.float32)[:, None], data["y"]
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.1, random_state=SPLIT_SEED, stratify=y)
    x_test = data["x_test"].astype(np.float32)[:, None]
    splits = ((x_train, y_train), (x_val, y_val), (x_test, data["y_test"]))
    train, val, test = _datasets(splits, torch.long)
    return TaskData(train, val, test, kind="classification", num_outputs=10, name="mnist1d", unlabeled=_mnist1d_unlabeled)


MNIST1D_UNLABELED = 20_000
"""Inputs the unlabeled pool holds: the same generator, another seed (7, not the data's 42), labels dropped."""


def _mnist1d_unlabeled() -> torch.Tensor:
    """mnist1d's unlabeled pool, made when a stage first asks for it (about 5 s)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = MNIST1D_UNLABELED, 7
    state = np.random.get_state()
    data = make_dataset(args)
    np.random.set_state(state)
    return torch.as_tensor(np.concatenate([data["x"], data["x_test"]]), dtype=torch.float32)[:, None]


@TASKS.register("diabetes")
def diabetes() -> TaskData:
    """scikit-learn's diabetes regression (442 patients, 10 features); features and target standardized
    with training-split statistics, so MSE is in units of the target's standard deviation squared."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = _split(x, y.reshape(-1, 1), 0.2, 0.1, stratify=False)
    mean, std, y_mean, y_std = x_tr.mean(0), x_tr.std(0), y_tr.mean(), y_tr.std()
    splits = [((a - mean) / std, (b - y_mean) / y_std) for a, b in ((x_tr, y_tr), (x_va, y_va), (x_te, y_te))]
    train, val, test = _datasets(tuple(splits), torch.float32)
    return TaskData(train, val, test, kind="regression", num_outputs=1, name="diabetes")
