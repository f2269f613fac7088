"""Intermediate features for distillation: forward hooks on layers named by module path, and the
learnable projector that maps a student feature onto the teacher's channel count."""

from __future__ import annotations

from types import TracebackType

import torch
import torch.nn.functional as F
from torch import nn

from compress.errors import RecipeError
from compress.registry import did_you_mean

__all__ = ["FeatureTaps", "Projector", "match_spatial", "check_layer_names"]


def check_layer_names(model: nn.Module, names: list[str], role: str) -> None:
    """One-line error for a layer path the model does not have, with close matches and the top-level names."""
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            hint = did_you_mean(name, modules)
            top = ", ".join(n for n, _ in model.named_children())
            raise RecipeError(f"{role} model has no layer {name!r}; {hint}top-level layers: {top} (nested: e.g. 'layer1.0')")


class FeatureTaps:
    """Context manager recording the outputs of named submodules at each forward pass."""

    def __init__(self, model: nn.Module, names: list[str], role: str) -> None:
        check_layer_names(model, names, role)
        self.model, self.names = model, list(dict.fromkeys(names))
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> FeatureTaps:
        modules = dict(self.model.named_modules())
        for name in self.names:
            self._handles.append(modules[name].register_forward_hook(self._recorder(name)))
        return self

    def _recorder(self, name: str):
        def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            self.outputs[name] = output

        return record

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def match_spatial(student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pool the larger of two (N, C, *spatial) features down to the other's spatial size."""
    if student.dim() <= 2 or student.shape[2:] == teacher.shape[2:]:
        return student, teacher
    pool = F.adaptive_avg_pool1d if student.dim() == 3 else F.adaptive_avg_pool2d
    size = tuple(min(a, b) for a, b in zip(student.shape[2:], teacher.shape[2:], strict=True))
    return pool(student, size), pool(teacher, size)


class Projector(nn.Module):
    """Student channels -> teacher channels: a 1x1 convolution (or linear layer for flat features),
    optionally followed by squeeze-excitation channel attention. Trained with the student, never exported."""

    def __init__(self, student_shape: torch.Size, teacher_shape: torch.Size, *, channel_attention: bool = False) -> None:
        super().__init__()
        if len(student_shape) != len(teacher_shape):
            raise RecipeError(
                f"cannot match a student feature of shape {tuple(student_shape)} to a teacher feature of shape {tuple(teacher_shape)}"
            )
        cin, cout, dims = student_shape[1], teacher_shape[1], len(student_shape) - 2
        self.proj = nn.Linear(cin, cout) if dims == 0 else (nn.Conv1d, nn.Conv2d)[dims - 1](cin, cout, 1)
        hidden = max(cout // 4, 4)
        self.gate = nn.Sequential(nn.Linear(cout, hidden), nn.ReLU(), nn.Linear(hidden, cout), nn.Sigmoid()) if channel_attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        if self.gate is None:
            return y
        weights = self.gate(y.flatten(2).mean(2) if y.dim() > 2 else y)
        return y * weights.reshape(*weights.shape, *([1] * (y.dim() - 2)))
