"""Task metrics as pure functions of numpy predictions and targets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Metric", "accuracy", "mse", "r2", "ACCURACY", "MSE"]


def accuracy(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean(outputs.argmax(axis=1) == targets))


def mse(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean((outputs.reshape(targets.shape) - targets) ** 2))


def r2(outputs: np.ndarray, targets: np.ndarray) -> float:
    residual = np.sum((outputs.reshape(targets.shape) - targets) ** 2)
    total = np.sum((targets - targets.mean()) ** 2)
    return float(1.0 - residual / total) if total > 0 else float("nan")


@dataclass(frozen=True)
class Metric:
    """A task's headline metric; `extra` are reported beside it."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool
    extra: tuple[tuple[str, Callable[[np.ndarray, np.ndarray], float]], ...] = ()

    def better(self, new: float, old: float | None) -> bool:
        if old is None:
            return True
        return new > old if self.higher_is_better else new < old

    def compute(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        values = {self.name: self.fn(outputs, targets)}
        values.update({name: fn(outputs, targets) for name, fn in self.extra})
        return values


ACCURACY = Metric("accuracy", accuracy, higher_is_better=True)
MSE = Metric("mse", mse, higher_is_better=False, extra=(("r2", r2),))
