"""Everything torch-pruning-specific: importance criteria by name, and `ChannelPruner`, which removes
channels (and whole attention heads) a step at a time, following torch-pruning's dependency graph so
that coupled layers (residual joins, depthwise convolutions, BatchNorm) stay consistent."""

from __future__ import annotations

import math
import warnings
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
    """Prune `model` in place towards `ratio` of its channels in `steps` equal steps. `keep`: modules left
    untouched (the classifier always is). `round_to`: channel counts stay multiples of it.

    The rule (ours; torch-pruning supplies the dependency graph and the importance scores): torch-pruning
    groups coupled channels (a residual join, a depthwise convolution and its producer, BatchNorm). Local
    pruning takes every group to the same scheduled fraction of its own initial channels, so each branch
    of a concatenation keeps the same share of itself. Global pruning ranks channels across groups but
    stops each group at `max_ratio`. Kept channel counts are rounded up, never down, so no layer loses
    more than `max_ratio` of its channels, with `round_to` or grouped convolutions as well.

    Attention: nn.MultiheadAttention loses whole heads (`head_ratio` of them over the steps; torch-pruning's
    own head removal needs separate q/k/v Linear layers). Its one `embed_dim` indexes both the heads'
    channels and the residual stream, so removing a head narrows the residual stream by `head_dim` too."""

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
        self.importance_name, self.ratio, self.max_ratio = importance, min(ratio, max_ratio), max_ratio
        self.global_pruning, self.round_to = global_pruning, round_to or 1
        with warnings.catch_warnings():  # 'unwrapped parameters' (a GRU's, a position embedding): left as they are
            warnings.filterwarnings("ignore", message="Unwrapped parameters")
            # torch-pruning gives the dependency graph and the importance scores; `step` decides the channels
            self.pruner = tp.pruner.BasePruner(
                model, example, importance=IMPORTANCES.get(importance)(), ignored_layers=ignored, root_module_types=ROOTS
            )
        self.layers = {n: m for n, m in modules.items() if isinstance(m, PRUNABLE) and m not in ignored}
        self.initial = {n: _channels(m) for n, m in self.layers.items()}
        self.group_initial = {_root(g): self.pruner.DG.get_out_channels(_root(g)) for g in self._groups()}
        if not heads and not self.group_initial:
            others = sorted({type(m).__name__ for m in model.modules() if not list(m.children())} - {"Linear", "Identity"})
            raise RecipeError(
                f"prune: nothing in this model can be pruned: no convolution or Linear channels outside the classifier "
                f"and 'keep', and recurrent layers are not pruned (its other layers: {', '.join(others) or 'none'})",
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
        fraction = self.ratio * self.done / self.steps
        plans = [self._plan(group) for group in self._groups()]
        plans = [p for p in plans if p is not None]
        cuts = _global_cuts(plans, fraction, self.max_ratio) if self.global_pruning else [p.cut(fraction) for p in plans]
        for plan, cut in zip(plans, cuts, strict=True):
            if cut:
                plan.prune(self.pruner.DG, cut)
        self.model.zero_grad(set_to_none=True)

    def _groups(self) -> list:
        return list(self.pruner.DG.get_all_groups(ignored_layers=self.pruner.ignored_layers, root_module_types=ROOTS))

    def _plan(self, group) -> _GroupPlan | None:
        root = _root(group)
        initial = self.group_initial.get(root)
        imp = self.pruner.estimate_importance(group)
        if initial is None or imp is None:
            return None
        slices = self.pruner._get_channel_groups(group)  # grouped convolutions: the same channels go from every slice
        plan = _GroupPlan(
            group, imp.view(slices, -1).mean(0).cpu() if slices > 1 else imp.cpu(), slices, initial, self.round_to, self.max_ratio
        )
        tracked = set(self.layers.values())
        outs = {dep.target.module for dep, _ in group if self.pruner.DG.is_out_channel_pruning_fn(dep.handler)}
        plan.layers = max(1, len(outs & tracked))  # how many measured layers each of its channels counts in
        return plan

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


PRUNABLE = (nn.Linear, nn.modules.conv._ConvNd)
ROOTS = list(PRUNABLE)  # recurrent layers are not pruned: torch-pruning's LSTM handler fails on single-layer LSTMs here


def _root(group) -> nn.Module:
    return group[0].dep.target.module


def _channels(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


class _GroupPlan:
    """One group of coupled channels: its importance per channel (of one slice, for grouped convolutions),
    and how many channels per slice a step may remove without going below `max_ratio` of its initial size."""

    def __init__(self, group, imp: torch.Tensor, slices: int, initial: int, round_to: int, max_ratio: float) -> None:
        self.group, self.imp, self.slices = group, imp, slices
        self.width, self.initial = len(imp), initial // slices
        self.round_to, self.layers = round_to, 1
        self.floor = self._kept(max_ratio)

    def _kept(self, fraction: float) -> int:
        """Channels per slice to keep at `fraction` removed: rounded up, then up to a multiple of `round_to`."""
        kept = max(1, math.ceil(self.initial * (1 - fraction) - 1e-9))
        while (kept * self.slices) % self.round_to and kept < self.width:
            kept += 1
        return min(kept, self.width)

    def cut(self, fraction: float) -> int:
        return max(0, self.width - max(self._kept(fraction), self.floor))

    def prune(self, graph, cut: int) -> None:
        order = torch.argsort(self.imp)[:cut]
        idxs = torch.cat([order + s * self.width for s in range(self.slices)]).tolist()
        group = graph.get_pruning_group(_root(self.group), self.group[0].dep.handler, idxs)
        if graph.check_pruning_group(group):
            group.prune()


def _global_cuts(plans: list[_GroupPlan], fraction: float, max_ratio: float) -> list[int]:
    """Global ranking: the least important channels across all groups go first (scores normalized per
    group, as LAMP does), until `fraction` of all initial channels is gone, counted over the measured
    layers as `ChannelPruner.removed` counts them; no group below its floor."""
    total = sum(p.initial * p.slices * p.layers for p in plans)
    excess = sum(p.width * p.slices * p.layers for p in plans) - math.ceil(total * (1 - fraction) - 1e-9)
    ranked = sorted(
        ((float(score) / (float(p.imp.abs().sum()) or 1.0), i) for i, p in enumerate(plans) for score in p.imp), key=lambda t: t[0]
    )
    cuts = [0] * len(plans)
    for _, i in ranked:
        if excess <= 0:
            break
        plan = plans[i]
        if plan.width - cuts[i] > plan.floor:
            cuts[i] += 1
            excess -= plan.slices * plan.layers
    return [_rounded_cut(p, c) for p, c in zip(plans, cuts, strict=True)]


def _rounded_cut(plan: _GroupPlan, cut: int) -> int:
    """`cut` lowered until the kept count suits `round_to`."""
    while cut > 0 and ((plan.width - cut) * plan.slices) % plan.round_to:
        cut -= 1
    return cut


def check_keep(model: nn.Module, keep: Iterable[str]) -> None:
    names = layer_names(model)
    for name in keep:
        if name not in names:
            hint = did_you_mean(name, names)
            raise RecipeError(f"prune: keep names layer {name!r}, which the model does not have; {hint}valid: {', '.join(names[:20])}")
