"""A small model zoo for edge students and teachers. Conv nets pick 1-D or 2-D from the input shape.

Every builder takes `in_shape` (one sample's shape, no batch) and `num_outputs`, plus its own
keyword arguments, which a recipe sets next to `arch:`. Top-level children are named
(`stem`, `layer1`..., `head`) so later stages can address layers by module path.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from compress.registry import Registry

__all__ = ["MODELS", "resnet_cnn", "mobilenet_v2", "cnn1d", "mlp", "transformer"]

MODELS: Registry = Registry("model architecture")


def _conv_dims(in_shape: Sequence[int], arch: str) -> int:
    if len(in_shape) not in (2, 3):
        raise ValueError(f"{arch} needs inputs shaped (channels, length) or (channels, height, width), got {tuple(in_shape)}")
    return len(in_shape) - 1


def _conv_bn(dims: int, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    conv = (nn.Conv1d, nn.Conv2d)[dims - 1](cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
    return [conv, (nn.BatchNorm1d, nn.BatchNorm2d)[dims - 1](cout)]


def _head(dims: int, channels: int, num_outputs: int) -> nn.Sequential:
    pool = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)[dims - 1](1)
    return nn.Sequential(pool, nn.Flatten(), nn.Linear(channels, num_outputs))


class BasicBlock(nn.Module):
    def __init__(self, dims: int, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(dims, cin, cout, 3, stride), nn.ReLU(), *_conv_bn(dims, cout, cout))
        self.shortcut = nn.Sequential(*_conv_bn(dims, cin, cout, 1, stride)) if stride != 1 or cin != cout else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, depthwise 3x3, 1x1 linear projection; residual when shapes match."""

    def __init__(self, dims: int, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers = [*_conv_bn(dims, cin, hidden, 1), nn.ReLU6()] if expand != 1 else []
        layers += [*_conv_bn(dims, hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(), *_conv_bn(dims, hidden, cout, 1)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class _Net(nn.Module):
    """stem -> layer1..layerN -> head, with the children named for hooks and pruning."""

    def __init__(self, stem: nn.Module, layers: list[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        for i, layer in enumerate(layers, 1):
            self.add_module(f"layer{i}", layer)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for child in self.children():
            x = child(x)
        return x


@MODELS.register("resnet_cnn")
def resnet_cnn(in_shape: Sequence[int], num_outputs: int, width: int = 32, blocks: Sequence[int] = (2, 2)) -> nn.Module:
    """Residual CNN: stage i has `blocks[i]` basic blocks of `width * 2**i` channels; stages after the first halve the resolution."""
    dims = _conv_dims(in_shape, "resnet_cnn")
    stem = nn.Sequential(*_conv_bn(dims, in_shape[0], width), nn.ReLU())
    stages, cin = [], width
    for i, count in enumerate(blocks):
        cout = width * 2**i
        stages.append(nn.Sequential(*[BasicBlock(dims, cin if j == 0 else cout, cout, 2 if i and not j else 1) for j in range(count)]))
        cin = cout
    return _Net(stem, stages, _head(dims, cin, num_outputs))


@MODELS.register("mobilenet_v2")
def mobilenet_v2(
    in_shape: Sequence[int],
    num_outputs: int,
    width: int = 16,
    expand: int = 4,
    blocks: Sequence[int] = (1, 2, 2),
    head_channels: int = 64,
) -> nn.Module:
    """MobileNetV2-style inverted-residual CNN (depthwise separable): stage i has `blocks[i]` blocks of
    `width * 2**i` channels, the first block of each later stage with stride 2; a 1x1 conv to `head_channels`."""
    dims = _conv_dims(in_shape, "mobilenet_v2")
    stem = nn.Sequential(*_conv_bn(dims, in_shape[0], width), nn.ReLU6())
    stages, cin = [], width
    for i, count in enumerate(blocks):
        cout = width * 2**i
        stages.append(
            nn.Sequential(*[InvertedResidual(dims, cin if j == 0 else cout, cout, 2 if i and not j else 1, expand) for j in range(count)])
        )
        cin = cout
    stages.append(nn.Sequential(*_conv_bn(dims, cin, head_channels, 1), nn.ReLU6()))
    return _Net(stem, stages, _head(dims, head_channels, num_outputs))


@MODELS.register("cnn1d")
def cnn1d(in_shape: Sequence[int], num_outputs: int, width: int = 32, depth: int = 3, kernel: int = 5) -> nn.Module:
    """Plain 1-D CNN for signals such as mnist1d: `depth` conv-BN-ReLU layers (stride 2 after the first)."""
    if len(in_shape) != 2:
        raise ValueError(f"cnn1d needs inputs shaped (channels, length), got {tuple(in_shape)}")
    stem = nn.Sequential(*_conv_bn(1, in_shape[0], width, kernel), nn.ReLU())
    layers = [nn.Sequential(*_conv_bn(1, width, width, kernel, 2), nn.ReLU()) for _ in range(depth - 1)]
    return _Net(stem, layers, _head(1, width, num_outputs))


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


@MODELS.register("mlp")
def mlp(
    in_shape: Sequence[int], num_outputs: int, hidden: Sequence[int] = (128, 64), dropout: float = 0.0, activation: str = "relu"
) -> nn.Module:
    """Multi-layer perceptron on the flattened input: Linear-activation(-Dropout) per entry of `hidden`;
    `activation`: relu or tanh (the usual choice for reinforcement-learning policies)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    features = 1
    for size in in_shape:
        features *= size
    layers, cin = [], features
    for width in hidden:
        block = [nn.Linear(cin, width), ACTIVATIONS[activation](), *([nn.Dropout(dropout)] if dropout else [])]
        layers.append(nn.Sequential(*block))
        cin = width
    return _Net(nn.Flatten(), layers, nn.Linear(cin, num_outputs))


class _Tokens(nn.Module):
    """Patchify (1-D or 2-D convolution with stride = patch), then (batch, tokens, dim), plus a depthwise
    convolution over the tokens as positional information (no position table to keep in step when pruning)."""

    def __init__(self, dims: int, channels: int, dim: int, patch: int) -> None:
        super().__init__()
        self.patch = (nn.Conv1d, nn.Conv2d)[dims - 1](channels, dim, patch, patch)
        self.position = nn.Conv1d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2)  # (batch, dim, tokens)
        return (tokens + self.position(tokens)).transpose(1, 2)


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder block: multi-head self-attention and an MLP, each residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class _MeanTokens(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(1)


@MODELS.register("transformer")
def transformer(
    in_shape: Sequence[int], num_outputs: int, dim: int = 32, heads: int = 4, depth: int = 2, mlp_ratio: int = 2, patch: int = 2
) -> nn.Module:
    """Small transformer encoder for signals and images: patch tokens, `depth` blocks of `heads`-head
    `nn.MultiheadAttention` and an MLP, mean over tokens, linear head."""
    dims = _conv_dims(in_shape, "transformer")
    if dim % heads:
        raise ValueError(f"transformer: dim {dim} must be a multiple of heads {heads}")
    blocks = [EncoderBlock(dim, heads, mlp_ratio) for _ in range(depth)]
    head = nn.Sequential(nn.LayerNorm(dim), _MeanTokens(), nn.Linear(dim, num_outputs))
    return _Net(_Tokens(dims, in_shape[0], dim, patch), blocks, head)
