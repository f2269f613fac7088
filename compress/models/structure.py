"""A pruned model's shape without pickled code: the layer sizes of every module that has them, as plain
data saved next to the state dict, and applied to a freshly built (unpruned) model before loading."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from compress.errors import ModelError

__all__ = ["describe", "reshape"]

_SHAPES: tuple[tuple[type[nn.Module], tuple[str, ...]], ...] = (
    (nn.MultiheadAttention, ("embed_dim", "kdim", "vdim", "num_heads", "head_dim")),
    (nn.modules.conv._ConvNd, ("in_channels", "out_channels", "groups")),
    (nn.Linear, ("in_features", "out_features")),
    (nn.modules.batchnorm._NormBase, ("num_features",)),
    (nn.LayerNorm, ("normalized_shape",)),
    (nn.GroupNorm, ("num_groups", "num_channels")),
)


def _shape_attrs(module: nn.Module) -> tuple[str, ...]:
    return next((attrs for kind, attrs in _SHAPES if isinstance(module, kind)), ())


def describe(model: nn.Module) -> dict[str, dict[str, Any]]:
    """{module path: {size attribute: value}} for every module whose size pruning can change."""
    out = {}
    for name, module in model.named_modules():
        attrs = _shape_attrs(module)
        if attrs:
            out[name] = {a: list(v) if isinstance(v, tuple) else v for a, v in ((a, getattr(module, a)) for a in attrs)}
    return out


def reshape(model: nn.Module, structure: dict[str, dict[str, Any]], state: dict[str, torch.Tensor]) -> None:
    """Give `model` (built with its original sizes) the sizes in `structure` and the tensor shapes in
    `state`, so that `model.load_state_dict(state)` fits."""
    modules = dict(model.named_modules())
    unknown = sorted(set(structure) - set(modules))
    if unknown:
        raise ModelError(
            f"pruned checkpoint names modules the model does not have: {', '.join(unknown[:5])}",
            fix="build the same architecture it was pruned from",
        )
    for name, attrs in structure.items():
        module = modules[name]
        if set(attrs) != set(_shape_attrs(module)):
            raise ModelError(
                f"pruned checkpoint describes module {name!r} with {sorted(attrs)}, but the model's {name!r} is a {type(module).__name__}",
                fix="build the same architecture it was pruned from",
            )
        for attr, value in attrs.items():
            setattr(module, attr, tuple(value) if isinstance(value, list) else value)
        if isinstance(module, nn.MultiheadAttention):
            module._qkv_same_embed_dim = module.kdim == module.embed_dim and module.vdim == module.embed_dim
    for key, tensor in state.items():
        owner, _, leaf = key.rpartition(".")
        module = modules.get(owner)
        if module is None:
            continue  # load_state_dict reports it
        if module._parameters.get(leaf) is not None and module._parameters[leaf].shape != tensor.shape:
            module._parameters[leaf] = nn.Parameter(torch.empty_like(tensor), requires_grad=module._parameters[leaf].requires_grad)
        elif module._buffers.get(leaf) is not None and module._buffers[leaf].shape != tensor.shape:
            module._buffers[leaf] = torch.empty_like(tensor)
