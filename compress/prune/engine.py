"""Everything torch-pruning-specific: importance criteria by name, and `ChannelPruner`, which removes
channels (and whole attention heads) a step at a time, following torch-pruning's dependency graph so
that coupled layers (residual joins, depthwise convolutions, BatchNorm) stay consistent."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from compress.errors import RecipeError
from compress.registry import Registry, did_you_mean

__all__ = ["IMPORTANCES", "ChannelPruner", "layer_names", "classifier", "check_keep", "NEEDS_GRADIENTS"]

IMPORTANCES: Registry[Callable[[], Any]] = Registry("pruning importance")
NEEDS_GRADIENTS = {"taylor"}  # criteria that read .grad: a few backward passes run before each step


def _tp():
    import torch_pruning as tp

    return tp


IMPORTANCES.register("l1")(lambda: _tp().importance.MagnitudeImportance(p=1))
IMPORTANCES.register("l2")(lambda: _tp().importance.MagnitudeImportance(p=2))
IMPORTANCES.register("bn_scale")(lambda: _tp().importance.BNScaleImportance())
IMPORTANCES.register("taylor")(lambda: _tp().importance.TaylorImportance())
IMPORTANCES.register("lamp")(lambda: _tp().importance.LAMPImportance(p=2))
IMPORTANCES.register("fpgm")(lambda: _tp().importance.FPGMImportance())
IMPORTANCES.register("random")(lambda: _tp().importance.RandomImportance())


def layer_names(model: nn.Module) -> list[str]:
    """Module paths a recipe may name in `keep`."""
    return [name for name, _ in model.named_modules() if name]


def classifier(model: nn.Module) -> nn.Module:
    """The last Linear or convolution: it produces the task's outputs, so its out-channels are fixed."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear | nn.modules.conv._ConvNd)]
    return layers[-1]


class ChannelPruner:
    """Prune `model` in place towards `ratio` of its channels in `steps` equal steps (torch-pruning's
    linear iterative schedule). `keep`: modules left untouched (the classifier always is).
    `round_to`: channel counts stay multiples of it. Attention: nn.MultiheadAttention loses whole heads
    (`head_ratio` of them over the steps; torch-pruning's own head removal needs separate q/k/v Linear
    layers). Its one `embed_dim` indexes both the heads' channels and the residual stream, so removing
    a head narrows the residual stream by `head_dim` too."""

    def __init__(
        self,
        model: nn.Module,
        example: torch.Tensor,
        *,
        importance: str,
        ratio: float,
        steps: int,
        keep: Iterable[str] = (),
        round_to: int | None = None,
        global_pruning: bool = False,
        head_ratio: float = 0.0,
        max_ratio: float = 1.0,
    ) -> None:
        tp = _tp()
        modules = dict(model.named_modules())
        heads = {m: m.num_heads for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
        # attention layers are left to `_remove_heads`; ignoring them also keeps torch-pruning off the
        # residual stream they share their channels with
        ignored = [modules[name] for name in keep] + [classifier(model), *heads]
        self.model, self.example, self.steps, self.done = model, example, steps, 0
        self.importance_name = importance
        self.pruner = tp.pruner.BasePruner(
            model,
            example,
            importance=IMPORTANCES.get(importance)(),
            pruning_ratio=ratio,
            iterative_steps=steps,
            ignored_layers=ignored,
            round_to=round_to,
            global_pruning=global_pruning,
            max_pruning_ratio=max_ratio,
        )
        self.layers = {n: m for n, m in modules.items() if isinstance(m, nn.Linear | nn.modules.conv._ConvNd) and m not in ignored}
        self.initial = {n: _channels(m) for n, m in self.layers.items()}
        roots = [nn.modules.conv._ConvNd, nn.Linear, nn.LSTM]
        if not heads and not any(True for _ in self.pruner.DG.get_all_groups(ignored_layers=ignored, root_module_types=roots)):
            others = sorted({type(m).__name__ for m in model.modules() if not list(m.children())} - {"Linear", "Identity"})
            raise RecipeError(
                f"prune: nothing in this model can be pruned: no convolution or Linear channels outside the classifier "
                f"and 'keep' (its other layers: {', '.join(others) or 'none'})",
                fix="remove the prune stage, or prune a model with convolution or Linear layers",
            )
        self.head_targets = {m: max(1, round(n * (1 - head_ratio))) for m, n in heads.items()}
        self.initial_heads = dict(heads)

    def removed(self) -> float:
        """The fraction of the prunable layers' output channels removed so far (measured, not scheduled)."""
        return 1 - sum(_channels(m) for m in self.layers.values()) / max(sum(self.initial.values()), 1)

    def layer_removed(self) -> dict[str, float]:
        """Per prunable layer, the fraction of its output channels removed so far."""
        return {n: 1 - _channels(m) / self.initial[n] for n, m in self.layers.items()}

    @property
    def needs_gradients(self) -> bool:
        return self.importance_name in NEEDS_GRADIENTS

    def step(self, gradients: Callable[[], None] | None = None) -> None:
        """One pruning step. `gradients()` must leave .grad on the parameters when `needs_gradients`."""
        if self.done >= self.steps:
            raise RuntimeError("all pruning steps are done")
        if self.needs_gradients:
            if gradients is None:
                raise ValueError(f"importance {self.importance_name!r} needs gradients")
            self.model.zero_grad(set_to_none=True)
            gradients()
        self.done += 1
        self._remove_heads()
        self.pruner.step()
        self.model.zero_grad(set_to_none=True)

    def _remove_heads(self) -> None:
        """Remove the lowest-norm heads on the linear schedule. The attention layers of one residual
        stream share their channel indices, so head `h` is removed from all of them at once (scores summed)."""
        if not self.initial_heads:
            return
        tp = _tp()
        layers = list(self.initial_heads)
        first = layers[0]
        start, target = self.initial_heads[first], self.head_targets[first]
        drop = first.num_heads - (start - math.floor((start - target) * self.done / self.steps))
        if drop <= 0:
            return
        hd = first.head_dim
        if any(m.num_heads != first.num_heads or m.head_dim != hd for m in layers):
            raise RecipeError("prune: attention layers with different head counts or sizes are not supported yet")
        scores = sum(self._head_scores(m) for m in layers)
        idxs = [h * hd + i for h in scores.argsort()[:drop].tolist() for i in range(hd)]
        for m in layers:
            m.num_heads -= drop  # so that torch-pruning keeps head_dim and removes whole heads
        self.pruner.DG.get_pruning_group(first, tp.prune_multihead_attention_out_channels, idxs).prune()

    @staticmethod
    def _head_scores(mha: nn.MultiheadAttention) -> torch.Tensor:
        """L2 norm of each head's q, k, v rows and output columns."""
        e, hd = mha.embed_dim, mha.head_dim
        w = mha.in_proj_weight.detach().reshape(3, mha.num_heads, hd, e)
        out = mha.out_proj.weight.detach().reshape(e, mha.num_heads, hd)
        return w.pow(2).sum((0, 2, 3)) + out.pow(2).sum((0, 2))


def _channels(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def check_keep(model: nn.Module, keep: Iterable[str]) -> None:
    names = layer_names(model)
    for name in keep:
        if name not in names:
            hint = did_you_mean(name, names)
            raise RecipeError(f"prune: keep names layer {name!r}, which the model does not have; {hint}valid: {', '.join(names[:20])}")
