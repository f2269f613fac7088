"""`train_policy`: train a teacher policy by reinforcement learning (PPO) in a policy task's environment."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compress.config import ModelName, StageConfig
from compress.context import RunContext
from compress.distill.record import register_model
from compress.distill.trainer import torch_predictor
from compress.errors import RecipeError
from compress.models.spec import ModelSpec, build_model
from compress.records import Training
from compress.rl.ppo import PPOConfig, train_ppo
from compress.stages.base import Stage, register_stage

__all__ = ["TrainPolicy", "TrainPolicyConfig"]


class TrainPolicyConfig(StageConfig):
    name: ModelName = Field("teacher", description="name of the trained policy in this run")
    model: ModelSpec = Field(
        ModelSpec(arch="mlp", hidden=[128, 128], activation="tanh"),
        description="the actor: a zoo mlp, e.g. {arch: mlp, hidden: [128, 128], activation: tanh}",
    )
    algorithm: Literal["ppo"] = Field("ppo", description="reinforcement-learning algorithm (stable-baselines3)")
    ppo: PPOConfig = Field(default_factory=PPOConfig, description="PPO settings: timesteps, n_envs, learning_rate, ...")


@register_stage
class TrainPolicy(Stage):
    """Train a policy with PPO (stable-baselines3) in the task's environment; keep the best validated actor."""

    name = "train_policy"
    Config = TrainPolicyConfig

    def provides(self) -> list[str]:
        return [self.cfg.name]

    def run(self, ctx: RunContext, cfg: TrainPolicyConfig) -> RunContext:
        env_id = getattr(ctx.task, "env_id", None)
        if not env_id:
            raise RecipeError(
                f"train_policy needs a policy task; task {ctx.task.name!r} has no environment", fix="set task: {env: CartPole-v1}"
            )
        model = build_model(cfg.model, ctx.task)
        metric = ctx.task.metric.name
        info = train_ppo(
            model,
            env_id,
            cfg.ppo,
            seed=ctx.seed,
            validate=lambda m: ctx.task.evaluate(torch_predictor(m.eval()), "val")[metric],
            quiet=ctx.quiet,
        )
        best = info.pop("best_val_return")
        policy = {"algorithm": cfg.algorithm, "timesteps": cfg.ppo.timesteps, **info}
        register_model(ctx, cfg.name, cfg.model, model, Training(best_val=best, policy=policy))
        return ctx
