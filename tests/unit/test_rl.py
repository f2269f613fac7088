"""Policy tasks: the episode loop (PyTorch and ONNX Runtime acting), seeds, expert states, DAgger
relabelling, fit with growing data, the PPO actor copy, and one-line errors for bad environments."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("gymnasium")

from compress.data.env import check_env_id, make_env, run_episodes
from compress.data.policy import SEEDS, policy_task
from compress.deploy import export_onnx
from compress.distill.dagger import Dagger, DaggerConfig
from compress.distill.trainer import FitConfig, Objective, fit, torch_predictor
from compress.errors import DataError, RecipeError


def balancer() -> nn.Module:
    """The textbook CartPole heuristic as a network: push towards where the pole is falling
    (angle + angular velocity); logits (left, right)."""
    layer = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 0.0, -1.0, -1.0], [0.0, 0.0, 1.0, 1.0]]))
    return nn.Sequential(layer).eval()


def always_left() -> nn.Module:
    layer = nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor([1.0, 0.0]))
    return nn.Sequential(layer).eval()


@pytest.fixture(scope="module")
def task():
    return policy_task("CartPole-v1", val_episodes=3, test_episodes=8, expert_episodes=2)


def test_episodes_through_onnx_runtime_match_pytorch_and_repeat(tmp_path):
    import onnxruntime as ort

    model = balancer()
    export_onnx(model, torch.zeros(2, 4), tmp_path / "p.onnx", opset=17, exporter="legacy")
    session = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    seeds = list(range(10))
    via_ort = run_episodes(lambda x: session.run(None, {name: x})[0], "CartPole-v1", seeds)
    via_torch = run_episodes(torch_predictor(model), "CartPole-v1", seeds)
    again = run_episodes(lambda x: session.run(None, {name: x})[0], "CartPole-v1", seeds)
    np.testing.assert_array_equal(via_ort.returns, via_torch.returns)
    np.testing.assert_array_equal(via_ort.returns, again.returns)
    np.testing.assert_array_equal(via_ort.returns, via_ort.lengths)  # CartPole pays 1 per step
    random_return = run_episodes(lambda x: np.random.default_rng(0).standard_normal((len(x), 2)), "CartPole-v1", seeds).returns
    assert via_ort.returns.mean() > 100 > 3 * random_return.mean()  # the loop really lets the policy act


def test_policy_sees_only_the_running_episodes_in_one_batch():
    sizes = []

    def policy(x):
        sizes.append(len(x))
        assert x.dtype == np.float32 and x.shape[1] == 4
        return always_left()(torch.from_numpy(x)).detach().numpy()

    episodes = run_episodes(policy, "CartPole-v1", [1, 2, 3, 4, 5], record=True)
    assert sizes[0] == 5 and sizes == sorted(sizes, reverse=True)
    assert sum(sizes) == episodes.lengths.sum() == len(episodes.states)
    assert episodes.returns.max() < 20  # always pushing left fails fast


def test_policy_task_scores_on_fixed_disjoint_seeds(task):
    assert task.seeds("test") == list(range(SEEDS["test"], SEEDS["test"] + 8))
    assert not set(task.seeds("val")) & set(task.seeds("test"))
    first, second = task.evaluate(torch_predictor(balancer()), "test"), task.evaluate(torch_predictor(balancer()), "test")
    assert first == second and first["episodes"] == 8 and first["return"] > 100
    assert task.evaluate(torch_predictor(always_left()), "val")["return"] < 20


def test_splits_come_from_the_expert_once_it_exists():
    task = policy_task("CartPole-v1", expert_episodes=2)
    random_states = len(task.train)
    task.on_model("student", always_left)  # not the expert: nothing changes
    assert len(task.train) == random_states and not task.expert_bound
    task.on_model("teacher", balancer)
    expert = run_episodes(torch_predictor(balancer()), "CartPole-v1", task.seeds("states_train", 2), record=True)
    x, y = task.train.tensors
    np.testing.assert_array_equal(x.numpy(), expert.states)
    np.testing.assert_array_equal(y.numpy(), balancer()(x).argmax(1).numpy())
    assert task.expert_bound and len(task.train) > random_states


def test_dagger_adds_the_states_the_student_visits_labelled_by_the_teacher(task):
    teacher, student = balancer(), always_left()
    dagger = Dagger(task, teacher, DaggerConfig(episodes=3))
    before = len(dagger.dataset)
    info = dagger.before_epoch(student, epoch=2)
    visited = run_episodes(torch_predictor(student), "CartPole-v1", task.seeds("dagger", 3, offset=6), record=True)
    added_x, added_y = dagger.dataset.states[before:], dagger.dataset.labels[before:]
    np.testing.assert_array_equal(added_x.numpy(), visited.states)
    np.testing.assert_array_equal(added_y.numpy(), teacher(added_x).argmax(1).numpy())
    assert (added_y == 1).float().mean() > 0.5  # the teacher disagrees with 'always left' where it matters
    assert info["dagger_states"] == len(dagger.dataset) and info["dagger_student_return"] == visited.returns.mean()
    saved = dagger.state_dict()
    dagger.before_epoch(student, epoch=3)  # new seeds each epoch: more states, not the same ones again
    assert len(dagger.dataset) > before + len(visited.states)
    dagger.load_state_dict(saved)
    assert len(dagger.dataset) == before + len(visited.states)


def test_fit_with_growing_data_keeps_steps_per_epoch(task):
    teacher, student = balancer(), nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    steps: list[int] = []

    class Count(Objective):
        def start_epoch(self, progress, gap=None, initial_gap=None):
            steps.append(0)
            return {}

        def forward(self, model, x, y):
            steps[-1] += 1
            return nn.functional.cross_entropy(model(x), teacher(x).argmax(1))

    data = Dagger(task, teacher, DaggerConfig(episodes=2))
    result = fit(student, task, Count(), FitConfig(epochs=3, batch_size=32), seed=0, desc="t", quiet=True, data=data)
    grown = [row["dagger_states"] for row in result.history[1:]]
    assert grown == sorted(grown) and grown[0] > len(task.train)
    assert steps[0] == steps[1] == steps[2] == -(-len(task.train) // 32)


def test_bad_environment_names_are_one_line_errors():
    with pytest.raises(DataError) as err:
        check_env_id("CartPol-v1")
    assert "did you mean 'CartPole-v1'" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DataError, match="Box action space; policy tasks need Discrete actions"):
        make_env("Pendulum-v1")


def test_ppo_actor_copy_is_exact_and_needs_a_zoo_mlp():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO

    from compress.models.zoo import mlp, resnet_cnn
    from compress.rl.ppo import check_copy, copy_actor

    agent = PPO(
        "MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": {"pi": [16, 8], "vf": [16, 8]}, "activation_fn": nn.Tanh}, device="cpu"
    )
    model = mlp((4,), 2, hidden=(16, 8), activation="tanh")
    copy_actor(agent.policy, model)
    assert check_copy(agent.policy, model, np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)) < 1e-5
    with pytest.raises(RecipeError, match="zoo 'mlp' policies"):
        copy_actor(agent.policy, resnet_cnn((1, 8, 8), 2))


def test_ppo_training_leaves_no_logger_folder_in_the_temp_dir(tmp_path, monkeypatch):
    pytest.importorskip("stable_baselines3")
    import tempfile

    from compress.models.zoo import mlp
    from compress.rl.ppo import PPOConfig, train_ppo

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cfg = PPOConfig(timesteps=64, n_envs=1, n_steps=32, batch_size=32, n_epochs=1, eval_every=64)
    train_ppo(mlp((4,), 2, hidden=(8,), activation="tanh"), "CartPole-v1", cfg, seed=0, validate=lambda m: 0.0, quiet=True)
    assert not list(tmp_path.glob("SB3-*"))
