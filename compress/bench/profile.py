"""Static model figures: parameters and multiply-accumulates (via torch-pruning's counter)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["params_and_macs"]


def params_and_macs(model: nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """(parameters, MACs for one sample) of `model` in eval mode."""
    import torch_pruning as tp

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            macs, params = tp.utils.count_ops_and_params(model, example[:1])
    finally:
        model.train(was_training)
    return int(params), int(macs)
