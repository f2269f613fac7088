"""Divergence and non-finite data are errors, never models: one line, and no NaN model in the run folder."""

from __future__ import annotations

import math

import pytest
import torch

from compress.data.task import TaskData
from compress.errors import DataError, ModelError
from compress.pipeline import Pipeline
from compress.stages import Distill, Export, Train
from tests.e2e.test_cli import cli

pytestmark = pytest.mark.slow


def _no_nan_weights(folder):
    for path in folder.rglob("*.pt"):
        state = torch.load(path, weights_only=True)
        tensors = state.values() if isinstance(state, dict) else []
        assert all(torch.isfinite(t).all() for t in tensors if isinstance(t, torch.Tensor) and t.is_floating_point()), path


def test_a_diverging_learning_rate_fails_the_stage_with_one_line(tmp_path):
    stages = [Train(name="teacher", model={"arch": "mlp", "hidden": [32]}, epochs=3, lr=1e12), Export()]
    with pytest.raises(ModelError) as err:
        Pipeline(stages, task="digits").run(tmp_path / "run", quiet=True)
    message = str(err.value)
    assert "train teacher: training diverged in epoch 1" in message and "lower lr (now 1e+12)" in message and "\n" not in message
    assert not (tmp_path / "run" / "train" / "teacher.pt").exists() and not (tmp_path / "run" / "export").exists()
    _no_nan_weights(tmp_path / "run")


def test_divergence_in_distillation_names_that_stage(tmp_path):
    teacher = Train(name="teacher", model={"arch": "mlp", "hidden": [32]}, epochs=1)
    student = Distill(model={"arch": "mlp", "hidden": [8]}, epochs=2, lr=1e12, temperature=2.0)
    with pytest.raises(ModelError, match="distill student: training diverged"):
        Pipeline([teacher, student], task="digits").run(tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "distill" / "student.pt").exists()
    _no_nan_weights(tmp_path / "run")


@pytest.mark.parametrize(
    ("split", "role", "poison"), [("train", "inputs", math.nan), ("val", "inputs", math.inf), ("test", "targets", math.nan)]
)
def test_non_finite_data_is_refused_before_training_naming_the_split_and_sample(split, role, poison):
    splits = {s: torch.utils.data.TensorDataset(torch.randn(20, 4), torch.randn(20, 1)) for s in ("train", "val", "test")}
    splits[split].tensors[0 if role == "inputs" else 1][7, 0] = poison
    with pytest.raises(DataError) as err:
        TaskData(**splits, kind="regression", num_outputs=1, name="mine")
    assert f"task 'mine': the {split} split's {role} hold NaN or inf (1 samples, the first at index 7)" in str(err.value)


def test_non_finite_options_are_refused_at_validation(write_recipe, tiny_recipe):
    tiny_recipe["stages"][0]["train"]["lr"] = float("inf")
    result = cli("validate", write_recipe(tiny_recipe))
    assert result.returncode == 2 and "stages[0].train.lr" in result.stderr and "finite number" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_export_parity_fails_on_non_finite_outputs():
    from compress.errors import ArtifactError
    from compress.records import Agreement
    from compress.stages.export import ExportConfig, _enforce

    with pytest.raises(ArtifactError, match="outputs are not finite"):
        _enforce("student", Agreement(samples=4, max_abs_diff=math.nan, top1_agreement=1.0), ExportConfig())
    _enforce("student", Agreement(samples=4, max_abs_diff=0.0, top1_agreement=1.0), ExportConfig())  # a finite, exact match passes
