"""DAgger-style relabelling for policy distillation: the student acts, the teacher says what it would
have done. Between epochs the student runs a few episodes; every state it visited joins the training
states with the teacher's greedy action as label (the soft targets come from the teacher as usual)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.utils.data import Dataset

from compress.data.env import run_episodes
from compress.data.policy import PolicyTask, labelled_states
from compress.distill.trainer import torch_predictor

__all__ = ["DaggerConfig", "Dagger", "StateBuffer"]


class DaggerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    episodes: int = Field(4, ge=1, description="student episodes per epoch whose states the teacher relabels")


class StateBuffer(Dataset):
    """(observation, action label) pairs that can grow."""

    def __init__(self, states: torch.Tensor, labels: torch.Tensor) -> None:
        self.states, self.labels = states, labels

    def __len__(self) -> int:
        return len(self.states)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.states[index], self.labels[index]

    def extend(self, states: torch.Tensor, labels: torch.Tensor) -> None:
        self.states, self.labels = torch.cat([self.states, states]), torch.cat([self.labels, labels])


class Dagger:
    """`fit`'s growing training data for a policy task (see `compress.distill.trainer.EpochData`)."""

    def __init__(self, task: PolicyTask, teacher: nn.Module, cfg: DaggerConfig) -> None:
        states, labels = zip(*(task.train[i] for i in range(len(task.train))), strict=True)
        self.dataset = StateBuffer(torch.stack(states), torch.stack(labels))
        self.task, self.teacher, self.cfg = task, teacher, cfg

    def before_epoch(self, model: nn.Module, epoch: int) -> dict[str, float]:
        """Run the student on fresh seeds (a different set each epoch), relabel what it saw, add it."""
        model.eval()
        seeds = self.task.seeds("dagger", self.cfg.episodes, offset=epoch * self.cfg.episodes)
        episodes = run_episodes(torch_predictor(model), self.task.env_id, seeds, record=True)
        self.dataset.extend(*labelled_states(episodes.states, torch_predictor(self.teacher.eval())).tensors)
        return {"dagger_states": float(len(self.dataset)), "dagger_student_return": float(np.mean(episodes.returns))}

    def state_dict(self) -> dict[str, Any]:
        return {"states": self.dataset.states, "labels": self.dataset.labels}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dataset.states, self.dataset.labels = state["states"], state["labels"]
