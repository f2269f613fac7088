"""How many, and which, channels one pruning step removes from each group of coupled channels.

A group (torch-pruning's) is every channel that must go together: a layer's output channels and what
they feed (BatchNorm, a depthwise convolution, a residual join). When branches are concatenated and
the concatenation feeds a depthwise convolution or a norm, one group spans all the branches; each
branch's channels are then a *part* of the group, and every part loses the same fraction of its own
initial size (ranked by importance within the part), so no branch is emptied to spare another and no
layer goes below `max_ratio`. Kept counts are rounded up: to whole channels, to `round_to`, and to
the group counts of any GroupNorm that normalizes them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Part", "GroupPlan", "global_cuts"]


@dataclass(frozen=True)
class Part:
    positions: torch.Tensor
    """Its channels: positions in the group's (per-slice) importance vector."""
    initial: int
    """Channels it had before pruning (per slice)."""
    weight: float
    """How many measured layers each of its channels counts in (for global ranking's budget)."""


class GroupPlan:
    """One group: importance per channel (of one slice, for grouped convolutions: the same channels go
    from every slice), its parts, and the floor `max_ratio` sets for each part."""

    def __init__(self, group, imp: torch.Tensor, parts: list[Part], *, slices: int, unit: int, max_ratio: float) -> None:
        self.group, self.imp, self.parts, self.slices, self.unit = group, imp, parts, slices, unit
        self.floors = [self._kept(p, max_ratio) for p in parts]

    def _kept(self, part: Part, fraction: float) -> int:
        """Channels of `part` (per slice) to keep at `fraction` removed: rounded up, then up to `unit`."""
        kept, width = max(1, math.ceil(part.initial * (1 - fraction) - 1e-9)), len(part.positions)
        while (kept * self.slices) % self.unit and kept < width:
            kept += 1
        return min(kept, width)

    def cuts(self, fraction: float) -> list[int]:
        """Channels each part loses to reach `fraction` of its initial size removed (never past its floor)."""
        return [max(0, len(p.positions) - max(self._kept(p, fraction), f)) for p, f in zip(self.parts, self.floors, strict=True)]

    def rounded(self, cuts: list[int]) -> list[int]:
        """`cuts` lowered until every part's kept count suits `unit`."""
        out = []
        for part, cut in zip(self.parts, cuts, strict=True):
            while cut > 0 and ((len(part.positions) - cut) * self.slices) % self.unit:
                cut -= 1
            out.append(cut)
        return out

    def indices(self, cuts: list[int]) -> list[int]:
        """The group's channel indices to remove: the least important `cut` of each part, in every slice."""
        chosen = [p.positions[torch.argsort(self.imp[p.positions])[:cut]] for p, cut in zip(self.parts, cuts, strict=True) if cut]
        if not chosen:
            return []
        order, width = torch.cat(chosen), len(self.imp)
        return torch.cat([order + s * width for s in range(self.slices)]).tolist()


def global_cuts(plans: list[GroupPlan], fraction: float) -> list[list[int]]:
    """Global ranking: the least important channels across all groups go first (scores normalized per
    group, as LAMP does), until `fraction` of all initial channels is gone, counted over the measured
    layers; no part below its floor."""
    entries = [(i, j) for i, plan in enumerate(plans) for j in range(len(plan.parts))]
    total = sum(p.initial * plans[i].slices * p.weight for i, j in entries for p in [plans[i].parts[j]])
    current = sum(len(p.positions) * plans[i].slices * p.weight for i, j in entries for p in [plans[i].parts[j]])
    excess = current - math.ceil(total * (1 - fraction) - 1e-9)
    ranked = sorted(
        (float(score) / (float(plan.imp.abs().sum()) or 1.0), i, j)
        for i, plan in enumerate(plans)
        for j, part in enumerate(plan.parts)
        for score in plan.imp[part.positions]
    )
    cuts = [[0] * len(plan.parts) for plan in plans]
    for _, i, j in ranked:
        if excess <= 0:
            break
        plan, part = plans[i], plans[i].parts[j]
        if len(part.positions) - cuts[i][j] > plan.floors[j]:
            cuts[i][j] += 1
            excess -= plan.slices * part.weight
    return [plan.rounded(c) for plan, c in zip(plans, cuts, strict=True)]
