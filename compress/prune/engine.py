"""Everything torch-pruning-specific: importance criteria by name, and `ChannelPruner`, which removes
channels (and whole attention heads) a step at a time, following torch-pruning's dependency graph so
that coupled layers (residual joins, depthwise convolutions, BatchNorm) stay consistent."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from compress.errors import RecipeError
from compress.prune.plan import GroupPlan, Part, global_cuts
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
        recurrent = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
        ignored = [modules[name] for name in keep] + [classifier(model), *heads, *recurrent]
        self.model, self.example, self.steps, self.done = model, example, steps, 0
        self.importance_name, self.ratio, self.max_ratio = importance, min(ratio, max_ratio), max_ratio
        self.global_pruning, self.round_to = global_pruning, round_to or 1
        self.layers = {n: m for n, m in modules.items() if isinstance(m, PRUNABLE) and m not in ignored}
        self.initial = {n: _channels(m) for n, m in self.layers.items()}
        self.part_initial = self._traced(lambda: self._build(tp, model, example, ignored), model, recurrent)
        if not heads and not self.part_initial:
            others = sorted({type(m).__name__ for m in model.modules() if not list(m.children())} - {"Linear", "Identity"})
            raise RecipeError(
                f"prune: nothing in this model can be pruned: no convolution or Linear channels outside the classifier "
                f"and 'keep', and recurrent layers are not pruned (its other layers: {', '.join(others) or 'none'})",
                fix="remove the prune stage, or prune a model with convolution or Linear layers",
            )
        self.head_targets = {m: max(1, round(n * (1 - head_ratio))) for m, n in heads.items()}
        self.initial_heads = dict(heads)

    def _build(self, tp, model: nn.Module, example: torch.Tensor, ignored: list[nn.Module]) -> None:
        with warnings.catch_warnings():  # 'unwrapped parameters' (a GRU's, a position embedding): left as they are
            warnings.filterwarnings("ignore", message="Unwrapped parameters")
            # torch-pruning gives the dependency graph and the importance scores; `step` decides the channels
            importance = IMPORTANCES.get(self.importance_name)()
            self.pruner = tp.pruner.BasePruner(model, example, importance=importance, ignored_layers=ignored, root_module_types=ROOTS)

    def _traced(self, build: Callable[[], None], model: nn.Module, recurrent: list[nn.Module]) -> dict[nn.Module, dict[str | None, int]]:
        """`build()` torch-pruning's graph, then each group's parts and their initial sizes; its own failure
        to follow the model (channels fed into a recurrent layer through a transpose) as a one-line refusal."""
        try:
            build()
            return {_root(g): self._initial_parts(g) for g in self._groups()}
        except (IndexError, KeyError, RuntimeError, ValueError) as err:
            names = {m: n for n, m in model.named_modules()}
            where = f" (its recurrent layers: {', '.join(names[m] for m in recurrent)})" if recurrent else ""
            raise RecipeError(
                f"prune: torch-pruning cannot follow this model's channel dependencies{where}: {type(err).__name__}: {err}",
                fix="list the layers that feed the recurrent or unusual layers in prune.keep, or remove the prune stage",
            ) from None

    def _initial_parts(self, group) -> dict[str | None, int]:
        slices = self.pruner._get_channel_groups(group)
        width = self.pruner.DG.get_out_channels(_root(group)) // slices
        return {name: len(pos) for name, pos in self._owners(group, width).items()} if slices == 1 else {None: width}

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
        plans = [p for p in (self._plan(group) for group in self._groups()) if p is not None]
        cuts = global_cuts(plans, fraction) if self.global_pruning else [p.rounded(p.cuts(fraction)) for p in plans]
        for plan, cut in zip(plans, cuts, strict=True):
            idxs = plan.indices(cut)
            if idxs:
                group = self.pruner.DG.get_pruning_group(_root(plan.group), plan.group[0].dep.handler, idxs)
                if self.pruner.DG.check_pruning_group(group):
                    group.prune()
        self.model.zero_grad(set_to_none=True)

    def _groups(self) -> list:
        return list(self.pruner.DG.get_all_groups(ignored_layers=self.pruner.ignored_layers, root_module_types=ROOTS))

    def _plan(self, group) -> GroupPlan | None:
        root = _root(group)
        imp = self.pruner.estimate_importance(group)
        if root not in self.part_initial or imp is None:
            return None
        slices = self.pruner._get_channel_groups(group)  # grouped convolutions: the same channels go from every slice
        imp = (imp.view(slices, -1).mean(0) if slices > 1 else imp).cpu()
        parts = self._parts(group, len(imp), slices)
        return GroupPlan(group, imp, parts, slices=slices, unit=self._unit(group), max_ratio=self.max_ratio)

    def _members(self, group) -> list[tuple[str, list[int]]]:
        """The measured layers whose output channels `group` holds, each with the group's (root) indices of them."""
        names = {m: n for n, m in self.layers.items()}
        found = []
        for i in range(len(group)):
            item = group[i]
            if self.pruner.DG.is_out_channel_pruning_fn(item.dep.handler) and item.dep.target.module in names:
                found.append((names[item.dep.target.module], [int(r) for r in item.root_idxs]))
        return found

    def _owners(self, group, width: int) -> dict[str | None, list[int]]:
        """The group's channels by the smallest measured layer holding them: one entry per concatenated
        branch when the group spans several, else one for the whole group."""
        members = self._members(group)
        size = {name: len(roots) for name, roots in members}
        owner: dict[int, str] = {}
        for name, roots in members:
            for r in roots:
                if r not in owner or size[name] < size[owner[r]]:
                    owner[r] = name
        parts: dict[str | None, list[int]] = {}
        for position in range(width):
            parts.setdefault(owner.get(position) if len(set(owner.values())) > 1 else None, []).append(position)
        return parts

    def _parts(self, group, width: int, slices: int) -> list[Part]:
        initial = self.part_initial[_root(group)]
        counts = Counter(r for _, roots in self._members(group) for r in roots)
        if slices > 1:
            return [Part(torch.arange(width), initial[None], 1.0)]
        return [
            Part(torch.tensor(pos), initial.get(name, len(pos)), sum(max(1, counts[p]) for p in pos) / len(pos))
            for name, pos in self._owners(group, width).items()
        ]

    def _unit(self, group) -> int:
        """Kept counts are multiples of this: `round_to`, and the group count of every GroupNorm in the group."""
        unit = self.round_to
        for i in range(len(group)):
            module = group[i].dep.target.module
            if isinstance(module, nn.GroupNorm):
                unit = math.lcm(unit, module.num_groups)
        return unit

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


def check_keep(model: nn.Module, keep: Iterable[str]) -> None:
    names = layer_names(model)
    for name in keep:
        if name not in names:
            hint = did_you_mean(name, names)
            raise RecipeError(f"prune: keep names layer {name!r}, which the model does not have; {hint}valid: {', '.join(names[:20])}")
