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
