"""Policy distillation end to end on CartPole (PPO teacher, DAgger student, ONNX, INT8, ORT scoring),
resume with expert-bound states, and the distill stage's learned controller and search on digits."""

from __future__ import annotations

import numpy as np
import pytest

from compress.data.spec import TaskSpec
from compress.pipeline import Pipeline
from compress.stages import Benchmark, Distill, Export, Quantize, Report, Train, TrainPolicy
from tests.e2e.test_cli import cli

pytestmark = pytest.mark.slow

PPO = {"timesteps": 4096, "n_steps": 128, "batch_size": 128, "eval_every": 2048, "n_envs": 8}
TEACHER = TrainPolicy(model={"arch": "mlp", "hidden": [32, 32], "activation": "tanh"}, ppo=PPO)
STUDENT = Distill(model={"arch": "mlp", "hidden": [8]}, temperature=1.0, alpha=1.0, epochs=3, dagger={"episodes": 2})
TASK = TaskSpec(env="CartPole-v1", options={"val_episodes": 3, "test_episodes": 10, "expert_episodes": 2})


@pytest.fixture(autouse=True)
def _needs_rl():
    pytest.importorskip("gymnasium")
    pytest.importorskip("stable_baselines3")


def test_cartpole_teacher_student_int8_scored_by_acting_through_onnx_runtime(tmp_path):
    import onnxruntime as ort

    from compress.data.env import run_episodes

    stages = [TEACHER, STUDENT, Export(), Quantize(models=["student"]), Benchmark(batch_sizes=[1], timing={"rounds": 1}), Report()]
    manifest = Pipeline(stages, task=TASK).run(tmp_path, quiet=True)
    teacher = manifest.find("train_policy").models["teacher"]
    assert teacher.params == 4 * 32 + 32 + 32 * 32 + 32 + 32 * 2 + 2 and teacher.training.policy["copy_max_logprob_gap"] < 1e-4
    student = manifest.find("distill").models["student"].training.model_dump()
    grown = [h["dagger_states"] for h in student["history"][1:]]
    assert grown == sorted(grown) and student["dagger"]["states"] == grown[-1]
    assert student["params_vs_teacher"] < 1 / 15
    bench = manifest.records()
    session = ort.InferenceSession(str(tmp_path / "export" / "student.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    episodes = run_episodes(lambda x: session.run(None, {name: x})[0], "CartPole-v1", list(range(10_000, 10_010)))
    assert bench["student"].score("return").value == pytest.approx(episodes.returns.mean())
    assert bench["student"].score("return").split == "test" and bench["student_int8"].score("return").value > 9
    assert "return (ONNX Runtime, test)" in (tmp_path / "report" / "report.md").read_text()


def test_a_resumed_run_distills_from_the_same_expert_states(tmp_path):
    """After a restart the teacher's stage is reused, not re-run; the task's states must still be the
    teacher's (rebuilt from its checkpoint), so the student comes out the same."""
    whole = Pipeline([TEACHER, STUDENT], task=TASK).run(tmp_path / "whole", quiet=True)
    Pipeline([TEACHER], task=TASK).run(tmp_path / "split", quiet=True)
    resumed = Pipeline([TEACHER, STUDENT], task=TASK).run(tmp_path / "split", quiet=True, resume=True)
    assert resumed.find("train_policy").status == "reused"
    a, b = (m.find("distill").models["student"].training.history for m in (whole, resumed))
    assert [h["val_return"] for h in a] == [h["val_return"] for h in b]
    assert [h["dagger_states"] for h in a[1:]] == [h["dagger_states"] for h in b[1:]]


def test_train_policy_needs_a_policy_task_and_bad_env_names_exit_2(tmp_path, write_recipe, tiny_recipe):
    from compress.errors import RecipeError

    with pytest.raises(RecipeError, match="train_policy needs a policy task"):
        Pipeline([TEACHER], task="digits").run(tmp_path, quiet=True)
    tiny_recipe["task"] = {"env": "Acrobat-v1"}
    result = cli("validate", write_recipe(tiny_recipe))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    assert "unknown environment 'Acrobat-v1'; did you mean 'Acrobot-v1'" in result.stderr


DIGITS_TEACHER = Train(name="teacher", model={"arch": "resnet_cnn", "width": 8, "blocks": [1, 1]}, epochs=2)
DIGITS_STUDENT = {"arch": "resnet_cnn", "width": 4, "blocks": [1, 1]}
PAIRS = [{"student": "layer1", "teacher": "layer1", "loss": "hint"}, {"student": "layer2", "teacher": "layer2", "loss": "hint"}]


def test_learned_controller_decisions_reach_manifest_and_report(tmp_path):
    ctl = {"kind": "learned", "temperature": [1.0, 6.0], "alpha": [0.2, 0.8]}
    stages = [DIGITS_TEACHER, Distill(model=DIGITS_STUDENT, epochs=4, features=PAIRS, controller=ctl), Report()]
    manifest = Pipeline(stages, task="digits").run(tmp_path, quiet=True)
    student = manifest.find("distill").models["student"].training.model_dump()
    decisions = student["controller"]["decisions"]
    assert len(decisions) == student["epochs_run"] == 4
    assert all(1.0 <= d["temperature"] <= 6.0 and 0.2 <= d["alpha"] <= 0.8 and d["feature_pair"] in (0, 1) for d in decisions)
    assert [d["temperature"] for d in decisions] == [h["temperature"] for h in student["history"]]
    assert [d["val"] for d in decisions] == [h["val_accuracy"] for h in student["history"]]
    assert len({round(d["temperature"], 6) for d in decisions}) == 4  # it decides every epoch
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Distillation controller" in report and "plots/controller.png" in report
    assert (tmp_path / "report" / "plots" / "controller.png").read_bytes()[:4] == b"\x89PNG"


def test_search_trains_a_trial_per_setting_within_the_budget_and_keeps_the_best(tmp_path):
    search = Distill(model=DIGITS_STUDENT, epochs=6, features=PAIRS, controller={"kind": "search", "trials": 3})
    manifest = Pipeline([DIGITS_TEACHER, search], task="digits").run(tmp_path, quiet=True)
    student = manifest.find("distill").models["student"].training.model_dump()
    ctl = student["controller"]
    assert ctl["epochs_per_trial"] == 2 and len(ctl["trials"]) == 3 and student["epochs_run"] == 2
    values = [t["value"] for t in ctl["trials"]]
    assert ctl["best_trial"] == int(np.argmax(values)) and student["best_val"] == max(values)
    assert len({t["params"]["temperature"] for t in ctl["trials"]}) == 3
    assert not (tmp_path / "distill" / ".work").exists(), "the search state is removed once the stage is recorded"
