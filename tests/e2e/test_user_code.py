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

    def broken_task():
        raise FileNotFoundError("data/train.csv")

    def broken_model(in_shape, num_outputs):
        raise RuntimeError("CUDA kernel image not found")
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


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ({"task": {"factory": "usercode:broken_task"}}, "task factory 'usercode:broken_task' failed: FileNotFoundError: data/train.csv"),
        (
            {"task": {"factory": "usercode:make_task", "options": {"rows": 10}}},
            "task factory 'usercode:make_task' failed: TypeError: make_task() got an unexpected keyword argument 'rows'",
        ),
        (
            {
                "task": {"factory": "usercode:make_task"},
                "stages": [{"train": {"model": {"factory": "usercode:broken_model"}, "epochs": 1}}],
            },
            "model factory 'usercode:broken_model' failed: RuntimeError: CUDA kernel image not found",
        ),
    ],
)
def test_user_code_that_fails_is_one_line_and_debug_shows_its_traceback(user_dir, write_recipe, recipe, message):
    from tests.e2e.test_cli import cli

    path = write_recipe({"name": "toy", "stages": [{"report": {}}], **recipe})
    result = cli("run", path, "--out", user_dir / "run", "--quiet", cwd=user_dir)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "--debug" in result.stderr
    debug = cli("--debug", "run", path, "--out", user_dir / "run2", cwd=user_dir)
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    assert "usercode.py" in debug.stderr or "unexpected keyword" in message  # a bad call fails before the factory's own code
    assert debug.stderr.strip().splitlines()[-1].startswith("edge-compress: error: ")


def test_a_recipe_that_is_a_folder_or_binary_is_one_line(tmp_path):
    from tests.e2e.test_cli import cli

    (tmp_path / "recipes").mkdir()
    (tmp_path / "model.bin").write_bytes(bytes(range(256)) * 4)
    for path, message in (
        (tmp_path / "recipes", "is a folder, not a recipe file"),
        (tmp_path / "model.bin", "is not a text file (not UTF-8)"),
    ):
        result = cli("validate", path)
        assert result.returncode == 2 and message in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr


def test_validate_imports_the_factories_a_recipe_names(user_dir, write_recipe):
    from tests.e2e.test_cli import cli

    good = {"name": "toy", "task": {"factory": "usercode:make_task"}, "stages": [{"train": {"model": {"factory": "usercode:make_model"}}}]}
    assert cli("validate", write_recipe(good, "good.yaml"), cwd=user_dir).returncode == 0
    cases = [
        ({**good, "task": {"factory": "usercode:make_tsk"}}, "task: module 'usercode' has no attribute 'make_tsk'"),
        ({**good, "task": {"factory": "nosuch.module:make"}}, "task: cannot import 'nosuch.module'"),
        (
            {**good, "stages": [{"train": {"model": {"factory": "usercode:make_modle"}}}]},
            "model 'usercode:make_modle': module 'usercode' has no attribute 'make_modle' (from 'usercode:make_modle'); did you mean 'make_model'",
        ),
    ]
    for i, (recipe, message) in enumerate(cases):
        path = write_recipe(recipe, f"bad{i}.yaml")
        result = cli("validate", path, cwd=user_dir)
        assert result.returncode == 2 and f"edge-compress: error: {path}: {message}" in result.stderr, result.stderr
        assert result.stderr.strip().count("\n") == 0
    assert not any(user_dir.rglob("*.pt")), "validate built and trained nothing"
