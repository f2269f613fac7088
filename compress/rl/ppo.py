"""Thin adapter over stable-baselines3's PPO: train an actor-critic whose actor has the layout of our
zoo `mlp`, keep the actor with the best validation return, and copy it into the zoo model (checked:
the copy computes the same action distribution)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from compress.errors import ModelError, RecipeError
from compress.models.zoo import ACTIVATIONS
from compress.progress import progress

__all__ = ["PPOConfig", "train_ppo", "copy_actor"]

INSTALL = "pip install 'edge-compress[rl]'"


class PPOConfig(BaseModel):
    """PPO settings (stable-baselines3 names); the defaults train CartPole-v1 and Acrobot-v1 in ~10^5 steps."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    timesteps: int = Field(100_000, ge=1, description="environment steps to train for, over all parallel environments")
    n_envs: int = Field(8, ge=1, description="parallel environments")
    n_steps: int = Field(256, ge=2, description="steps per environment per update")
    batch_size: int = Field(256, ge=2, description="minibatch size")
    n_epochs: int = Field(10, ge=1, description="optimisation passes per update")
    learning_rate: float = Field(1e-3, gt=0)
    gamma: float = Field(0.99, gt=0, le=1, description="discount")
    gae_lambda: float = Field(0.95, gt=0, le=1)
    clip_range: float = Field(0.2, gt=0)
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus")
    eval_every: int = Field(10_000, ge=1, description="steps between validation runs; the best validated actor is kept")


def _sb3():
    try:
        import stable_baselines3
    except ImportError:
        raise RecipeError("train_policy needs stable-baselines3, which is not installed", fix=INSTALL) from None
    return stable_baselines3


def _actor_layout(model: nn.Module) -> tuple[list[nn.Linear], type[nn.Module]]:
    """The hidden Linear layers and the activation of a zoo `mlp` (layer1..layerN, head)."""
    layers = [m for name, m in model.named_children() if name.startswith("layer")]
    linears = [layer[0] for layer in layers if isinstance(layer, nn.Sequential) and isinstance(layer[0], nn.Linear)]
    acts = {type(layer[1]) for layer in layers if len(layer) > 1}
    if not layers or len(linears) != len(layers) or len(acts) != 1 or not isinstance(getattr(model, "head", None), nn.Linear):
        raise RecipeError("train_policy trains zoo 'mlp' policies", fix="use model: {arch: mlp, hidden: [128, 128], activation: tanh}")
    act = acts.pop()
    if act not in ACTIVATIONS.values() or any(isinstance(m, nn.Dropout) for m in model.modules()):
        raise RecipeError("train_policy needs an mlp with relu or tanh and no dropout")
    return linears, act


def copy_actor(policy, model: nn.Module) -> None:
    """Copy an SB3 ActorCriticPolicy's actor (policy_net + action_net) into the zoo mlp `model`."""
    linears, _ = _actor_layout(model)
    source = [m for m in policy.mlp_extractor.policy_net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for ours, theirs in zip(linears, source, strict=True):
            ours.load_state_dict(theirs.state_dict())
        model.head.load_state_dict(policy.action_net.state_dict())


def check_copy(policy, model: nn.Module, states: np.ndarray) -> float:
    """Largest difference between the two action log-probabilities on `states`; ModelError above 1e-4."""
    obs = torch.as_tensor(states, dtype=torch.float32)
    with torch.no_grad():
        theirs = policy.get_distribution(obs).distribution.logits
        ours = torch.log_softmax(model(obs), dim=1)
    gap = float((theirs - ours).abs().max())
    if gap > 1e-4:
        raise ModelError(f"the trained PPO actor and its copy disagree by {gap:.3g} in log-probability")
    return gap


def train_ppo(
    model: nn.Module, env_id: str, cfg: PPOConfig, *, seed: int, validate: Callable[[nn.Module], float], quiet: bool
) -> dict[str, float]:
    """Train with PPO; `model` (a zoo mlp) ends holding the actor with the best `validate(model)` score."""
    sb3 = _sb3()
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import Logger

    linears, act = _actor_layout(model)
    hidden = [layer.out_features for layer in linears]
    env = make_vec_env(env_id, n_envs=cfg.n_envs, seed=seed)
    settings = cfg.model_dump(exclude={"timesteps", "n_envs", "eval_every"})
    agent = sb3.PPO(
        "MlpPolicy",
        env,
        seed=seed,
        device="cpu",
        verbose=0,
        policy_kwargs={"net_arch": {"pi": hidden, "vf": hidden}, "activation_fn": act},
        **settings,
    )
    agent.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default makes an empty /tmp/SB3-<date> folder per run
    best = {"score": -np.inf, "state": copy.deepcopy(model.state_dict()), "step": 0}

    class Validate(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.bar = progress(total=cfg.timesteps, desc=f"ppo {env_id}", unit="step", disable=quiet, mininterval=1.0)
            self.next_eval = cfg.eval_every

        def _on_step(self) -> bool:
            self.bar.update(cfg.n_envs)
            if self.num_timesteps >= self.next_eval:
                self.next_eval += cfg.eval_every
                self._validate()
            return True

        def _on_training_end(self) -> None:
            self._validate()
            self.bar.close()

        def _validate(self) -> None:
            copy_actor(agent.policy, model)
            score = validate(model)
            self.bar.set_postfix(val_return=f"{score:.1f}")
            if score > best["score"]:
                best.update(score=score, state=copy.deepcopy(model.state_dict()), step=self.num_timesteps)

    agent.learn(cfg.timesteps, callback=Validate())
    copy_actor(agent.policy, model)
    states = np.stack([env.observation_space.sample() for _ in range(64)])
    gap = check_copy(agent.policy, model, states)
    model.load_state_dict(best["state"])
    env.close()
    return {"best_val_return": float(best["score"]), "best_step": int(best["step"]), "copy_max_logprob_gap": gap}
