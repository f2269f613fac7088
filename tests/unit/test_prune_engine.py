"""ChannelPruner reports what it removed (measured, per layer too) and refuses a model with nothing to
prune instead of "pruning" it by nothing."""

import pytest
import torch
from torch import nn

from compress.errors import RecipeError
from compress.prune.engine import ChannelPruner


class Branches(nn.Module):
    """Parallel branches of different widths, concatenated: the shape the zoo does not have."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 48, 3, padding=1)
        self.b1, self.b2, self.b3 = nn.Conv2d(48, 48, 1), nn.Conv2d(48, 96, 3, padding=1), nn.Conv2d(48, 16, 1)
        self.mix = nn.Conv2d(160, 64, 1)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.mix(torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1)))
        return self.head(x.mean((2, 3)))


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru, self.head = nn.GRU(8, 32, batch_first=True), nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.gru(x)[0][:, -1])


def _branches() -> nn.Module:
    torch.manual_seed(0)
    model = Branches()
    with torch.no_grad():  # branches of different scale, as in a trained network: global ranking then favours one
        model.b1.weight *= 0.05
        model.b2.weight *= 4
    return model


@pytest.mark.parametrize("global_pruning", [False, True])
def test_the_reported_ratio_is_the_measured_fraction_of_channels_removed(global_pruning):
    model = _branches()
    before = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    pruner = ChannelPruner(
        model, torch.randn(2, 1, 8, 8), importance="l2", ratio=0.5, steps=2, global_pruning=global_pruning, max_ratio=0.6
    )
    assert pruner.removed() == 0.0
    for _ in range(2):
        pruner.step()
    after = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    assert pruner.removed() == pytest.approx(1 - sum(after.values()) / sum(before.values()), abs=1e-9)
    assert pruner.layer_removed() == pytest.approx({n: 1 - after[n] / before[n] for n in before})
    assert 0.3 < pruner.removed() < 0.7 and model.head.out_features == 10


def test_a_model_with_nothing_to_prune_is_refused_in_one_line():
    with pytest.raises(RecipeError) as err:
        ChannelPruner(Recurrent(), torch.randn(2, 5, 8), importance="l2", ratio=0.5, steps=1)
    assert "nothing in this model can be pruned" in str(err.value) and "GRU" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("global_pruning", "round_to"), [(False, None), (True, None), (False, 8), (True, 8)])
def test_max_ratio_holds_for_every_layer(global_pruning, round_to):
    """Kept channel counts are rounded up, never down, and global ranking stops each group at max_ratio:
    torch-pruning's own step took a layer to 62.5% with max_ratio 0.6 here."""
    model = _branches()
    pruner = ChannelPruner(
        model, torch.randn(2, 1, 8, 8), importance="l2", ratio=0.8, steps=3, global_pruning=global_pruning, max_ratio=0.6, round_to=round_to
    )
    for _ in range(3):
        pruner.step()
    layers = pruner.layer_removed()
    assert max(layers.values()) <= 0.6 + 1e-9, layers
    assert pruner.removed() > 0.3
    if round_to:
        assert all(m.out_channels % round_to == 0 for n, m in model.named_modules() if n in layers), layers


def test_concatenated_branches_keep_the_same_share_of_themselves():
    """Local pruning takes every group of coupled channels to the same fraction of its own size, so no
    branch of a concatenation is emptied while another is untouched (the trained-scale imbalance of
    `_branches` is what sent one branch to a single channel before)."""
    model = _branches()
    pruner = ChannelPruner(model, torch.randn(2, 1, 8, 8), importance="l1", ratio=0.5, steps=2)
    for _ in range(2):
        pruner.step()
    assert {n: round(f, 3) for n, f in pruner.layer_removed().items()} == {n: 0.5 for n in ("stem", "b1", "b2", "b3", "mix")}
    assert model.mix.in_channels == 24 + 48 + 8 and model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_recurrent_layers_are_named_in_the_refusal():
    class Lstm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.head = nn.LSTM(8, 32, batch_first=True), nn.Linear(32, 10)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    with pytest.raises(RecipeError, match="recurrent layers are not pruned .*LSTM"):
        ChannelPruner(Lstm(), torch.randn(2, 5, 8), importance="l2", ratio=0.5, steps=1)


class ConcatIntoDepthwise(nn.Module):
    """Two branches concatenated into a depthwise convolution and a GroupNorm: torch-pruning makes the
    whole concatenation one group, and ranking inside it once took one branch to 94% and the other to 6%."""

    def __init__(self, groups: int = 1) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.a, self.b = nn.Conv2d(16, 16, 1), nn.Conv2d(16, 16, 3, padding=1)
        self.dw, self.norm = nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.GroupNorm(groups, 32)
        self.pw, self.head = nn.Conv2d(32, 32, 1), nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.norm(self.dw(torch.cat([self.a(x), self.b(x)], 1))))
        return self.head(self.pw(x).mean((2, 3)))


@pytest.mark.parametrize("global_pruning", [False, True])
def test_branches_concatenated_into_one_group_are_pruned_in_balance(global_pruning):
    torch.manual_seed(0)
    model = ConcatIntoDepthwise()
    with torch.no_grad():
        model.a.weight *= 10  # one branch far stronger: ranking the whole group at once would empty the other
    pruner = ChannelPruner(
        model, torch.randn(2, 1, 8, 8), importance="l1", ratio=0.5, steps=2, global_pruning=global_pruning, max_ratio=0.6
    )
    for _ in range(2):
        pruner.step()
    layers = pruner.layer_removed()
    assert max(layers.values()) <= 0.6 + 1e-9, layers
    if not global_pruning:
        assert layers["a"] == layers["b"] == 0.5, layers
    assert model.dw.out_channels == model.a.out_channels + model.b.out_channels
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_groupnorm_group_counts_are_kept_whole():
    torch.manual_seed(0)
    model = ConcatIntoDepthwise(groups=8)
    pruner = ChannelPruner(model, torch.randn(2, 1, 8, 8), importance="l2", ratio=0.4, steps=3)
    for _ in range(3):
        pruner.step()
        assert model.dw.out_channels % 8 == 0
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10) and pruner.removed() > 0.2


def test_a_model_torch_pruning_cannot_follow_is_refused_in_one_line():
    class ConvThenGru(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem, self.gru, self.head = nn.Conv1d(1, 16, 5, padding=2), nn.GRU(16, 24, batch_first=True), nn.Linear(24, 10)

        def forward(self, x):
            return self.head(self.gru(self.stem(x).transpose(1, 2))[0][:, -1])

    with pytest.raises(RecipeError) as err:
        ChannelPruner(ConvThenGru(), torch.randn(2, 1, 40), importance="l2", ratio=0.5, steps=1)
    message = str(err.value)
    assert "\n" not in message and "cannot follow this model's channel dependencies (its recurrent layers: gru)" in message
    assert "prune.keep" in message
