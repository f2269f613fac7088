"""Gymnasium environments as the policy tasks see them: a checked `make_env`, and episodes run in
lock-step, so one batched call of the policy (PyTorch, ONNX Runtime, OpenVINO: any numpy function
of a batch of observations returning action logits) acts for every running episode at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from compress.errors import DataError, first_line
from compress.registry import did_you_mean

__all__ = ["Episodes", "check_env_id", "env_spaces", "make_env", "run_episodes"]

Policy = Callable[[np.ndarray], np.ndarray]
INSTALL = "pip install 'edge-compress[rl]'"


def _gym():
    try:
        import gymnasium
    except ImportError:
        raise DataError("policy tasks need gymnasium, which is not installed", fix=INSTALL) from None
    return gymnasium


def check_env_id(env_id: str) -> str:
    """`env_id` if gymnasium knows it, else a `DataError` with close matches (used by recipe validation)."""
    gym = _gym()
    if env_id not in gym.registry:
        known = sorted(gym.registry)
        raise DataError(f"unknown environment {env_id!r}; {did_you_mean(env_id, known)}e.g. CartPole-v1, Acrobot-v1, MountainCar-v0")
    return env_id


def make_env(env_id: str):
    """A gymnasium environment with its time limit; it must observe a flat Box and act on a Discrete space."""
    gym = _gym()
    check_env_id(env_id)
    try:
        env = gym.make(env_id)
    except gym.error.DependencyNotInstalled as err:
        raise DataError(f"environment {env_id!r} needs a package that is not installed: {first_line(err)}") from None
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise DataError(
            f"environment {env_id!r} has a {type(env.action_space).__name__} action space; policy tasks need Discrete actions",
            fix="pick a discrete-action environment such as CartPole-v1 or Acrobot-v1",
        )
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        env.close()
        raise DataError(f"environment {env_id!r} observes {env.observation_space}; policy tasks need a flat Box observation")
    return env


def env_spaces(env_id: str) -> tuple[int, int]:
    """(observation size, number of actions)."""
    env = make_env(env_id)
    sizes = int(env.observation_space.shape[0]), int(env.action_space.n)
    env.close()
    return sizes


@dataclass
class Episodes:
    returns: np.ndarray  # (episodes,) undiscounted return of each episode
    lengths: np.ndarray  # (episodes,) steps taken
    states: np.ndarray | None = None  # (steps in all episodes, obs) every observation acted on, when recorded

    def summary(self) -> dict[str, float]:
        r = self.returns
        return {"return": float(r.mean()), "return_std": float(r.std()), "return_min": float(r.min()), "episodes": len(r)}


def run_episodes(policy: Policy, env_id: str, seeds: Sequence[int], *, record: bool = False) -> Episodes:
    """One episode per seed (`env.reset(seed=...)`), all stepped together; each step the policy gets the
    observations of the episodes still running as one float32 batch and acts greedily (argmax of its outputs)."""
    envs = [make_env(env_id) for _ in seeds]
    obs = np.stack([env.reset(seed=int(s))[0] for env, s in zip(envs, seeds, strict=True)]).astype(np.float32)
    returns, lengths = np.zeros(len(envs)), np.zeros(len(envs), dtype=np.int64)
    running = np.ones(len(envs), dtype=bool)
    visited: list[np.ndarray] = []
    while running.any():
        idx = np.flatnonzero(running)
        batch = obs[idx]
        if record:
            visited.append(batch.copy())
        actions = np.asarray(policy(batch)).reshape(len(idx), -1).argmax(axis=1)
        for i, action in zip(idx, actions, strict=True):
            obs[i], reward, terminated, truncated, _ = envs[i].step(int(action))
            returns[i] += reward
            lengths[i] += 1
            running[i] = not (terminated or truncated)
    for env in envs:
        env.close()
    states = np.concatenate(visited) if record else None
    return Episodes(returns, lengths, states)
