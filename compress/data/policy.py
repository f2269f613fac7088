"""`PolicyTask`: a gymnasium environment as a task. The metric is the average episode return over
fixed seeds, measured by letting the model act (greedy on its outputs, which are action logits);
its data splits are observations, which once an expert exists come from the expert's own episodes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from compress.data.env import Episodes, env_spaces, run_episodes
from compress.data.metrics import Metric
from compress.data.task import TaskData
from compress.models.predict import torch_predictor

__all__ = ["PolicyTask", "RETURN", "policy_task", "SEEDS"]

# Disjoint seed ranges: scoring never sees an episode that produced training states.
SEEDS = {"test": 10_000, "val": 20_000, "states_train": 30_000, "states_val": 31_000, "states_test": 32_000, "dagger": 40_000}


def _measured_in_env(outputs: np.ndarray, targets: np.ndarray) -> float:
    raise TypeError("episode return is measured by acting in the environment: use PolicyTask.evaluate")


RETURN = Metric("return", _measured_in_env, higher_is_better=True)


@dataclass
class PolicyTask(TaskData):
    """A classic-control environment: inputs are observations, outputs one logit per action.

    `evaluate(predict, split)` runs `test_episodes` (test) or `val_episodes` (any other split) episodes
    with fixed seeds and returns the mean, std and minimum return. The splits hold observations with
    the expert's greedy action as label: from uniformly random actions until the run has a model
    named `expert`, then from the expert's episodes (`expert_episodes` for train, a fifth as many
    for val and test), so calibration and parity inputs are states the policy really meets.
    """

    env_id: str = ""
    expert: str = "teacher"
    val_episodes: int = 10
    test_episodes: int = 100
    expert_episodes: int = 20
    expert_bound: bool = False

    def seeds(self, split: str, count: int | None = None, offset: int = 0) -> list[int]:
        n = count if count is not None else (self.test_episodes if split == "test" else self.val_episodes)
        base = SEEDS[split] if split in SEEDS else SEEDS["val"]
        return list(range(base + offset, base + offset + n))

    def evaluate(self, predict: Callable[[np.ndarray], np.ndarray], split: str, batch_size: int = 256) -> dict[str, float]:
        return self.episodes(predict, split).summary()

    def episodes(self, predict: Callable[[np.ndarray], np.ndarray], split: str) -> Episodes:
        return run_episodes(predict, self.env_id, self.seeds("test" if split == "test" else "val"))

    def on_model(self, name: str, module: Callable[[], nn.Module]) -> None:
        if name == self.expert:
            self.use_expert(module())

    def use_expert(self, expert: nn.Module) -> None:
        """Refill the splits with states from `expert`'s episodes, labelled with its greedy actions."""
        predict = torch_predictor(expert.eval())
        counts = {"train": self.expert_episodes, "val": max(1, self.expert_episodes // 5), "test": max(1, self.expert_episodes // 5)}
        for split, count in counts.items():
            states = run_episodes(predict, self.env_id, self.seeds(f"states_{split}", count), record=True).states
            setattr(self, split, labelled_states(states, predict))
        self.expert_bound = True


def labelled_states(states: np.ndarray, predict: Callable[[np.ndarray], np.ndarray]) -> TensorDataset:
    """(observation, greedy action of `predict`) pairs."""
    actions = np.asarray(predict(states.astype(np.float32))).argmax(axis=1)
    return TensorDataset(torch.as_tensor(states, dtype=torch.float32), torch.as_tensor(actions, dtype=torch.long))


def _random_policy(actions: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    return lambda x: rng.standard_normal((len(x), actions))


def policy_task(
    env_id: str, *, val_episodes: int = 10, test_episodes: int = 100, expert_episodes: int = 20, expert: str = "teacher"
) -> PolicyTask:
    """The task for gymnasium environment `env_id` (checked: registered, Box observations, Discrete actions)."""
    _, actions = env_spaces(env_id)
    splits = {}
    for split, episodes in (("train", expert_episodes), ("val", 4), ("test", 4)):
        base = SEEDS[f"states_{split}"]
        policy = _random_policy(actions, base)
        states = run_episodes(policy, env_id, list(range(base, base + episodes)), record=True).states
        splits[split] = labelled_states(states, policy)
    return PolicyTask(
        **splits,
        kind="classification",
        num_outputs=actions,
        name=env_id,
        metric=RETURN,
        env_id=env_id,
        expert=expert,
        val_episodes=val_episodes,
        test_episodes=test_episodes,
        expert_episodes=expert_episodes,
    )
