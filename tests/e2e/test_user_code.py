"""Users' own data and models through `module:function` factories, and a trained teacher via `load`."""

import textwrap

import pytest
import torch

from compress.errors import RecipeError
from compress.pipeline import Pipeline

pytestmark = pytest.mark.slow

USER_MODULE = textwrap.dedent(
    """
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset
    from compress.data import TaskData

    def make_task(n=300, features=6):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, features, generator=g)
        y = (x[:, 0] + x[:, 1] > 0).long()
        split = lambda a, b: TensorDataset(x[a:b], y[a:b])
        return TaskData(split(0, 200), split(200, 250), split(250, n), kind="classification", num_outputs=2, name="toy")

    def make_model(in_shape, num_outputs, hidden=16):
        return nn.Sequential(nn.Linear(in_shape[0], hidden), nn.ReLU(), nn.Linear(hidden, num_outputs))

    def not_a_task():
        return 42
    """
)


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    (tmp_path / "usercode.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_user_task_model_and_pretrained_teacher(user_dir, write_recipe):
    teacher_recipe = {
        "name": "toy",
        "task": {"factory": "usercode:make_task", "options": {"n": 300}},
        "stages": [{"train": {"name": "teacher", "model": {"factory": "usercode:make_model", "hidden": 32}, "epochs": 30}}],
    }
    trained = Pipeline.from_recipe(write_recipe(teacher_recipe, "teacher.yaml")).run(user_dir / "t", quiet=True)
    assert trained.records()["teacher"].score("accuracy", runtime="torch").value > 0.8  # a linearly separable toy task
    checkpoint = str(user_dir / "t" / "train" / "teacher.pt")
    recipe = {
        "name": "toy",
        "task": {"factory": "usercode:make_task"},
        "stages": [
            {"load": {"name": "teacher", "model": {"factory": "usercode:make_model", "hidden": 32, "checkpoint": checkpoint}}},
            {"distill": {"model": {"factory": "usercode:make_model", "hidden": 4}, "epochs": 5}},
            {"export": {}},
        ],
    }
    manifest = Pipeline.from_recipe(write_recipe(recipe)).run(user_dir / "s", quiet=True)
    loaded = manifest.find("load").models["teacher"].score("accuracy", runtime="torch")
    assert loaded == trained.records()["teacher"].score("accuracy", runtime="torch")
    assert (user_dir / "s" / "export" / "student.onnx").is_file()


def test_factory_errors_are_one_line(user_dir, write_recipe):
    base = {"name": "toy", "stages": [{"report": {}}]}
    with pytest.raises(RecipeError, match="cannot import 'nosuchmodule'"):
        Pipeline.from_recipe(write_recipe({**base, "task": {"factory": "nosuchmodule:make"}})).run(user_dir / "a")
    with pytest.raises(RecipeError, match="has no attribute 'missing'"):
        Pipeline.from_recipe(write_recipe({**base, "task": {"factory": "usercode:missing"}})).run(user_dir / "b")
    with pytest.raises(RecipeError, match="returned int, not compress.data.TaskData"):
        Pipeline.from_recipe(write_recipe({**base, "task": {"factory": "usercode:not_a_task"}})).run(user_dir / "c")
    with pytest.raises(RecipeError, match="not of the form 'package.module:function'"):
        Pipeline.from_recipe(write_recipe({**base, "task": {"factory": "usercode.make_task"}}))


def test_regression_distillation_on_diabetes(tmp_path):
    from compress.stages import Benchmark, Distill, Export, Train

    stages = [
        Train(name="teacher", model={"arch": "mlp", "hidden": [32]}, epochs=20),
        Distill(model={"arch": "mlp", "hidden": [4]}, loss="mse", epochs=20),
        Export(),
        Benchmark(batch_sizes=[1], timing={"warmup": 1, "min_iters": 5, "min_time_s": 0}),
    ]
    manifest = Pipeline(stages, task="diabetes").run(tmp_path, quiet=True)
    result = manifest.find("benchmark").models["student"]
    assert manifest.metric.name == "mse" and not manifest.metric.higher_is_better
    assert 0 < result.score("mse").value < 1.0  # better than predicting the mean
    assert result.score("r2") is not None and manifest.records()["student"].parity.top1_agreement is None
    with pytest.raises(RecipeError, match="'kd' needs a classification task"):
        Pipeline([stages[0], Distill(model={"arch": "mlp"}, epochs=1)], task="diabetes").run(tmp_path / "kd", quiet=True)
    torch.set_num_threads(1)
