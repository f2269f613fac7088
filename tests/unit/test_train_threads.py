"""`train_threads` (`--train-threads`): PyTorch's thread count while stages train, apart from the target's."""

import pytest
import torch

from compress.errors import RecipeError
from compress.models.zoo import mlp
from compress.pipeline import Pipeline

SEEN: list[int] = []


def recording_mlp(in_shape, num_outputs):
    """A zoo mlp that notes how many threads PyTorch had when the stage built it."""
    SEEN.append(torch.get_num_threads())
    return mlp(in_shape, num_outputs, hidden=(8,))


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    SEEN.clear()
    yield
    torch.set_num_threads(before)


def _pipeline():
    stage = {"train": {"model": {"factory": "tests.unit.test_train_threads:recording_mlp"}, "epochs": 1}}
    return Pipeline([stage], task="digits", target={"name": "ort-cpu", "threads": 2})


def test_training_uses_the_target_threads_unless_train_threads_is_given(tmp_path):
    _pipeline().run(tmp_path / "a", quiet=True)
    _pipeline().run(tmp_path / "b", quiet=True, train_threads=1)
    assert SEEN[0] == 2 and SEEN[-1] == 1


def test_train_threads_below_one_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(RecipeError, match="train_threads must be at least 1, got 0"):
        _pipeline().run(tmp_path / "run", quiet=True, train_threads=0)
    assert not (tmp_path / "run").exists()
