"""Architecture families that users bring, written here (not taken from the zoo), each as a
`module:function` factory `(in_shape, num_outputs) -> nn.Module` for the digits task (1x8x8 inputs).
Sequence and 1-D families read the image's 8 rows as 8 steps of 8 features, as a user's own code would."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FAMILIES"]


def _conv_bn(cin: int, cout: int, kernel: int = 3, groups: int = 1, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), act())


def _pool_head(channels: int, num_outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_outputs))


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(channels, channels), nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


def residual_cnn(in_shape: Sequence[int], num_outputs: int) -> nn.Module:
    return nn.Sequential(_conv_bn(in_shape[0], 24), _Residual(24), _Residual(24), _pool_head(24, num_outputs))


class _Inverted(nn.Module):
    """MobileNetV2's block: 1x1 expand, 3x3 depthwise, 1x1 linear projection, residual."""

    def __init__(self, channels: int, expand: int = 4) -> None:
        super().__init__()
        hidden = channels * expand
        self.body = nn.Sequential(
            _conv_bn(channels, hidden, 1, act=nn.ReLU6),
            _conv_bn(hidden, hidden, 3, groups=hidden, act=nn.ReLU6),
            nn.Conv2d(hidden, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def inverted_residual(in_shape: Sequence[int], num_outputs: int) -> nn.Module:
    return nn.Sequential(
        _conv_bn(in_shape[0], 16, act=nn.ReLU6), _Inverted(16), _Inverted(16), _conv_bn(16, 32, 1), _pool_head(32, num_outputs)
    )


class _Branches(nn.Module):
    """Inception-style block: parallel branches of different widths, concatenated on channels."""

    def __init__(self, cin: int, widths: Sequence[int]) -> None:
        super().__init__()
        a, b, c, d = widths
        self.branches = nn.ModuleList(
            [
                _conv_bn(cin, a, 1),
                nn.Sequential(_conv_bn(cin, b // 2, 1), _conv_bn(b // 2, b, 3)),
                nn.Sequential(_conv_bn(cin, c // 2, 1), _conv_bn(c // 2, c, 3), _conv_bn(c, c, 3)),
                nn.Sequential(nn.MaxPool2d(3, 1, 1), _conv_bn(cin, d, 1)),
            ]
        )
        self.out_channels = sum(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def concat_branches(in_shape: Sequence[int], num_outputs: int) -> nn.Module:
    first = _Branches(32, (16, 48, 24, 8))
    second = _Branches(first.out_channels, (32, 64, 16, 16))
    return nn.Sequential(_conv_bn(in_shape[0], 32), first, second, _pool_head(second.out_channels, num_outputs))


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int, gate: type[nn.Module]) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels // 4, 1), nn.ReLU(), nn.Conv2d(channels // 4, channels, 1), gate()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x)


def se_gating(in_shape: Sequence[int], num_outputs: int) -> nn.Module:
    """MobileNetV3-style: hardswish activations, depthwise convolution, squeeze-excitation gates
    (sigmoid in one block, hardsigmoid in the other)."""
    return nn.Sequential(
        _conv_bn(in_shape[0], 16, act=nn.Hardswish),
        _conv_bn(16, 32, 1, act=nn.Hardswish),
        _conv_bn(32, 32, 3, groups=32, act=nn.Hardswish),
        _SqueezeExcite(32, nn.Sigmoid),
        _conv_bn(32, 32, 1, act=nn.Hardswish),
        _SqueezeExcite(32, nn.Hardsigmoid),
        _pool_head(32, num_outputs),
    )


def grouped_conv(in_shape: Sequence[int], num_outputs: int) -> nn.Module:
    """ResNeXt-style: 3x3 convolutions in 4 groups between 1x1 convolutions."""
    return nn.Sequential(
        _conv_bn(in_shape[0], 32),
        _conv_bn(32, 32, 3, groups=4),
        _conv_bn(32, 64, 1),
        _conv_bn(64, 64, 3, groups=4),
        _pool_head(64, num_outputs),
    )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(0, 1) if x.shape[1] == 1 and x.dim() == 4 else x.flatten(1, -2)


def cnn1d(in_shape: Sequence[int], num_outputs: int) -> nn.Module:
    """Conv1d over the rows (the 8 columns as channels)."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            width = in_shape[-1]
            self.body = nn.Sequential(
                nn.Conv1d(width, 32, 3, padding=1), nn.BatchNorm1d(32), nn.ReLU(),
                nn.Conv1d(32, 32, 3, padding=1), nn.BatchNorm1d(32), nn.ReLU(),
                nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(32, num_outputs),
            )  # fmt: skip

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x.reshape(x.shape[0], -1, in_shape[-1]).transpose(1, 2))

    return Net()


class _Recurrent(nn.Module):
    def __init__(self, cell: type[nn.Module], features: int, num_outputs: int, hidden: int = 32) -> None:
        super().__init__()
        self.rnn = cell(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_outputs)
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.reshape(x.shape[0], -1, self.features))
        return self.head(out[:, -1])


def gru(in_shape: Sequence[int], num_outputs: int) -> nn.Module:
    return _Recurrent(nn.GRU, in_shape[-1], num_outputs)


def lstm(in_shape: Sequence[int], num_outputs: int) -> nn.Module:
    return _Recurrent(nn.LSTM, in_shape[-1], num_outputs)


class _Encoder(nn.Module):
    def __init__(self, features: int, num_outputs: int, dim: int = 32) -> None:
        super().__init__()
        self.features = features
        self.embed = nn.Linear(features, dim)
        self.position = nn.Parameter(torch.zeros(1, features, dim))
        layer = nn.TransformerEncoderLayer(dim, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(dim, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x.reshape(x.shape[0], -1, self.features)) + self.position
        return self.head(self.encoder(tokens).mean(1))


def transformer_encoder(in_shape: Sequence[int], num_outputs: int) -> nn.Module:
    return _Encoder(in_shape[-1], num_outputs)


def mlp_layernorm(in_shape: Sequence[int], num_outputs: int) -> nn.Module:
    size = int(torch.tensor(in_shape).prod())
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(size, 64),
        nn.LayerNorm(64),
        nn.GELU(),
        nn.Linear(64, 64),
        nn.LayerNorm(64),
        nn.GELU(),
        nn.Linear(64, num_outputs),
    )


FAMILIES = {
    f.__name__: f"tests.conformance.families:{f.__name__}"
    for f in (
        residual_cnn,
        inverted_residual,
        concat_branches,
        se_gating,
        grouped_conv,
        cnn1d,
        gru,
        lstm,
        transformer_encoder,
        mlp_layernorm,
    )
}
"""Family name -> the `module:function` string a recipe names it by."""
