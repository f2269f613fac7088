import numpy as np
import pytest
import torch

from compress.data.builtin import TASKS, random_shift
from compress.data.metrics import accuracy, mse, r2
from compress.data.task import TaskData
from compress.errors import DataError


def test_digits_split_is_fixed_stratified_and_disjoint():
    a, b = TASKS.get("digits")(), TASKS.get("digits")()
    assert (len(a.train), len(a.val), len(a.test)) == (1257, 180, 360)
    assert torch.equal(a.test.tensors[0], b.test.tensors[0])
    counts = np.bincount(a.targets("test"), minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 per class
    train_rows = {row.numpy().tobytes() for row in a.train.tensors[0]}
    overlap = sum(row.numpy().tobytes() in train_rows for row in a.test.tensors[0])
    assert overlap < 5  # digits has a few duplicate images; a leak would share hundreds
    assert a.input_shape == (1, 8, 8) and float(a.train.tensors[0].max()) <= 1.0


def test_mnist1d_is_4000_1000_and_leaves_numpy_rng_alone():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    task = TASKS.get("mnist1d")()
    assert np.random.rand() == expected
    assert len(task.train) + len(task.val) == 4000 and len(task.test) == 1000
    assert task.input_shape == (1, 40) and task.num_outputs == 10


def test_diabetes_is_standardized_regression():
    task = TASKS.get("diabetes")()
    y = task.train.tensors[1]
    assert task.kind == "regression" and task.metric.name == "mse" and not task.metric.higher_is_better
    assert abs(float(y.mean())) < 1e-5 and float(y.std()) == pytest.approx(1.0, abs=0.01)
    assert y.shape[1:] == (1,)


def test_random_shift_moves_content_by_at_most_one_pixel():
    torch.manual_seed(0)
    x = torch.zeros(200, 1, 8, 8)
    x[:, 0, 4, 4] = 1.0
    out = random_shift(x)
    assert out.shape == x.shape
    positions = out[:, 0].flatten(1).argmax(1)
    rows, cols = positions // 8, positions % 8
    assert set(rows.tolist()) == {3, 4, 5} and set(cols.tolist()) == {3, 4, 5}
    assert torch.allclose(out.sum((1, 2, 3)), torch.ones(200))


def test_metrics_by_hand():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy(logits, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert mse(np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]])) == pytest.approx(2.5)
    assert r2(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(1.0)
    assert r2(np.full(3, 2.0), np.array([1.0, 2.0, 3.0])) == pytest.approx(0.0)


def test_task_data_rejects_bad_kind_and_empty_split():
    ds = torch.utils.data.TensorDataset(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
    empty = torch.utils.data.TensorDataset(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(DataError, match="kind must be"):
        TaskData(ds, ds, ds, kind="ranking", num_outputs=2)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="val split is empty"):
        TaskData(ds, empty, ds, kind="classification", num_outputs=2)


def test_full_batch_repeats_a_small_split_to_the_exact_size():
    task = TASKS.get("digits")()
    batch = task.full_batch(500)
    assert batch.shape == (500, 1, 8, 8)
    assert torch.equal(batch[:360], task.example_input(360)) and torch.equal(batch[360:], task.example_input(140))
