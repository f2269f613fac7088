"""A learned distillation controller: distillation as a sequence of decisions. Before each epoch an
actor-critic agent picks the temperature, the distillation weight and (when the recipe offers several)
the feature pair to match; after the epoch it is rewarded, by default with the gain in the validation
metric, and learns online. Actions pass through a sigmoid into the configured bounds, so no decision
can leave them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

__all__ = ["ControllerConfig", "LearnedController", "Decision", "STATE"]

STATE = ("val", "agreement", "log_loss", "loss_change", "progress", "temperature", "alpha")
"""What the agent sees: the validation metric (relative to the teacher's when known), teacher-student
agreement on validation inputs, log of the last epoch's training loss and its relative change,
training progress, and its previous temperature and weight (both scaled into [0, 1])."""


class ControllerConfig(BaseModel):
    """`kind: learned` (the agent) or `kind: search` (Optuna TPE: one training per constant setting,
    `trials` of them sharing the stage's epochs, the best validated student kept)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["learned", "search"] = Field("learned", description="learned: per-epoch agent; search: Optuna TPE over constant settings")
    temperature: tuple[float, float] = Field((0.5, 8.0), description="bounds of the temperature (searched on a log scale)")
    alpha: tuple[float, float] = Field((0.0, 1.0), description="bounds of the distillation weight")
    choose_feature: bool = Field(True, description="with several feature pairs: pick one per epoch (or per trial) instead of all")
    reward: Literal["gain", "level"] = Field("gain", description="gain: change of the validation metric; level: the metric itself")
    agreement_weight: float = Field(0.0, ge=0, description="add this times the change in teacher-student agreement to the reward")
    lr: float = Field(0.05, gt=0, description="learned: the agent's learning rate (Adam)")
    exploration: float = Field(0.5, gt=0, description="learned: std of the actions before squashing into the bounds")
    discount: float = Field(0.0, ge=0, lt=1, description="learned: weight of the next state's value in the advantage")
    trials: int = Field(4, ge=2, description="search: trials; each trains epochs // trials epochs (equal total budget)")

    @model_validator(mode="after")
    def _bounds(self) -> ControllerConfig:
        (t_lo, t_hi), (a_lo, a_hi) = self.temperature, self.alpha
        if not 0 < t_lo < t_hi:
            raise ValueError(f"controller temperature bounds must satisfy 0 < low < high, got {self.temperature}")
        if not 0 <= a_lo < a_hi <= 1:
            raise ValueError(f"controller alpha bounds must satisfy 0 <= low < high <= 1, got {self.alpha}")
        return self


@dataclass(frozen=True)
class Decision:
    temperature: float
    alpha: float
    pair: int | None  # index of the one feature pair to match this epoch; None: all of them


def squash(raw: torch.Tensor, cfg: ControllerConfig) -> tuple[float, float]:
    """Unbounded actions -> (temperature, alpha) inside the bounds; temperature on a log scale."""
    (t_lo, t_hi), (a_lo, a_hi) = cfg.temperature, cfg.alpha
    s = torch.sigmoid(raw.double()).tolist()
    return math.exp(math.log(t_lo) + s[0] * (math.log(t_hi) - math.log(t_lo))), a_lo + s[1] * (a_hi - a_lo)


def unsquash(temperature: float, alpha: float, cfg: ControllerConfig) -> torch.Tensor:
    """The inverse of `squash` (values clipped just inside the bounds): where the agent starts."""
    (t_lo, t_hi), (a_lo, a_hi) = cfg.temperature, cfg.alpha
    fractions = [(math.log(temperature) - math.log(t_lo)) / (math.log(t_hi) - math.log(t_lo)), (alpha - a_lo) / (a_hi - a_lo)]
    return torch.logit(torch.tensor(fractions).clamp(0.02, 0.98))


class LearnedController:
    """A linear Gaussian actor (plus a categorical head over feature pairs) and a linear critic.

    `decide(progress)` samples this epoch's `Decision`; `observe(row, agreement)` takes the epoch's
    history row, computes the reward and makes one actor-critic update. `decisions` records each epoch:
    the choice, the state it was made in, and the reward it earned.
    """

    def __init__(
        self, cfg: ControllerConfig, *, pairs: int, start: tuple[float, float], seed: int, higher_is_better: bool, scale: float | None
    ) -> None:
        self.cfg, self.higher, self.scale = cfg, higher_is_better, abs(scale) if scale else 1.0
        self.choices = pairs if cfg.choose_feature and pairs > 1 else 0
        self.actor = nn.Linear(len(STATE), 2 + self.choices)
        self.critic = nn.Linear(len(STATE), 1)
        with torch.no_grad():
            for layer in (self.actor, self.critic):
                layer.weight.zero_()
                layer.bias.zero_()
            self.actor.bias[:2] = unsquash(*start, cfg)
        self.optimizer = torch.optim.Adam([*self.actor.parameters(), *self.critic.parameters()], lr=cfg.lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.decisions: list[dict[str, Any]] = []
        self._pending: dict[str, Any] | None = None
        self._last = {"val": None, "agreement": None, "loss": None, "temperature": start[0], "alpha": start[1]}

    def prime(self, val: float, agreement: float | None) -> None:
        """The untrained student's validation metric and agreement: the first decision's gain is measured from them."""
        self._last.update(val=val, agreement=agreement)

    def state(self, progress: float) -> torch.Tensor:
        last, (t_lo, t_hi), (a_lo, a_hi) = self._last, self.cfg.temperature, self.cfg.alpha
        loss, previous = last["loss"], last.get("previous_loss")
        features = [
            (last["val"] or 0.0) / self.scale,
            last["agreement"] or 0.0,
            math.log(max(loss, 1e-8)) if loss is not None else 0.0,
            (loss - previous) / max(abs(previous), 1e-8) if loss is not None and previous is not None else 0.0,
            progress,
            (math.log(last["temperature"]) - math.log(t_lo)) / (math.log(t_hi) - math.log(t_lo)),
            (last["alpha"] - a_lo) / (a_hi - a_lo),
        ]
        return torch.tensor(features, dtype=torch.float32)

    def decide(self, progress: float) -> Decision:
        state = self.state(progress)
        with torch.no_grad():
            out = self.actor(state)
            raw = out[:2] + self.cfg.exploration * torch.randn(2, generator=self.generator)
            pair = int(torch.multinomial(torch.softmax(out[2:], 0), 1, generator=self.generator)) if self.choices else None
        temperature, alpha = squash(raw, self.cfg)
        self._pending = {"state": state, "raw": raw, "pair": pair, "progress": progress, "temperature": temperature, "alpha": alpha}
        self._last.update(temperature=temperature, alpha=alpha)
        return Decision(temperature, alpha, pair)

    def observe(self, row: dict[str, Any], agreement: float | None, val_key: str) -> float | None:
        """Reward the pending decision with this epoch's outcome and update the agent; returns the reward."""
        val, last = float(row[val_key]), self._last
        if self._pending is None:
            return None
        sign = 1.0 if self.higher else -1.0
        if self.cfg.reward == "level":
            reward = sign * val / self.scale
        else:
            reward = sign * (val - last["val"]) / self.scale if last["val"] is not None else 0.0
        if self.cfg.agreement_weight and agreement is not None and last["agreement"] is not None:
            reward += self.cfg.agreement_weight * (agreement - last["agreement"])
        last.update(val=val, agreement=agreement, previous_loss=last["loss"], loss=float(row["train_loss"]))
        pending, self._pending = self._pending, None
        self._update(pending, reward)
        self.decisions.append(self._record(pending, reward, val, agreement))
        return reward

    def _update(self, pending: dict[str, Any], reward: float) -> None:
        state, raw, pair = pending["state"], pending["raw"], pending["pair"]
        with torch.no_grad():
            following = self.critic(self.state(min(1.0, pending["progress"]))).squeeze() if self.cfg.discount else 0.0
        advantage = reward + self.cfg.discount * following - self.critic(state).squeeze()
        out = self.actor(state)
        log_prob = torch.distributions.Normal(out[:2], self.cfg.exploration).log_prob(raw).sum()
        if pair is not None:
            log_prob = log_prob + torch.log_softmax(out[2:], 0)[pair]
        loss = -log_prob * advantage.detach() + advantage.pow(2)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def _record(self, pending: dict[str, Any], reward: float, val: float, agreement: float | None) -> dict[str, Any]:
        temperature, alpha = pending["temperature"], pending["alpha"]
        state = dict(zip(STATE, (round(float(v), 6) for v in pending["state"]), strict=True))
        return {
            "epoch": len(self.decisions) + 1,
            "temperature": temperature,
            "alpha": alpha,
            "feature_pair": pending["pair"],
            "reward": reward,
            "val": val,
            "agreement": agreement,
            "state": state,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "decisions": self.decisions,
            "last": dict(self._last),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.decisions, self._last, self._pending = list(state["decisions"]), dict(state["last"]), None
