"""`RunContext`: what flows between stages. Its `models` records are plain data, so a resumed run
rebuilds the same context from the manifest without re-running a stage."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from compress.bench.runners import TargetSpec
from compress.data.task import TaskData
from compress.errors import RecipeError
from compress.imports import check_callable_spec, resolve_callable
from compress.models.spec import ModelSpec, build_model, load_checkpoint

__all__ = ["RunContext", "ModelRecord", "TaskSpec", "TargetSpec"]

log = logging.getLogger("compress")


class TaskSpec(BaseModel):
    """A built-in task by `name`, a gymnasium environment by `env` (a policy task), or the user's
    `factory` (`module:function` returning `TaskData`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, description="built-in task: digits, mnist1d or diabetes")
    env: str | None = Field(
        None, description="gymnasium environment id, e.g. CartPole-v1 or Acrobot-v1: a policy task (needs the 'rl' extra)"
    )
    factory: str | None = Field(None, description="'module:function' returning compress.data.TaskData")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments for the factory; for env: val_episodes, test_episodes, expert_episodes, expert",
    )

    @model_validator(mode="after")
    def _one_source(self) -> TaskSpec:
        from compress.data.builtin import TASKS

        if sum(v is not None for v in (self.name, self.env, self.factory)) != 1:
            raise ValueError(
                "give exactly one of 'name' (a built-in task), 'env' (a gymnasium environment) or 'factory' ('module:function')"
            )
        if self.name is not None:
            TASKS.check(self.name)
        if self.factory is not None:
            check_callable_spec(self.factory)
        if self.env is not None:
            _check_policy_options(self.env, self.options)
        if self.name is not None and self.options:
            raise ValueError("'options' apply to 'env' and 'factory' tasks; built-in tasks take none")
        return self

    def load(self) -> TaskData:
        from compress.data.builtin import TASKS

        if self.name is not None:
            return TASKS.get(self.name)()
        if self.env is not None:
            from compress.rl.task import policy_task

            return policy_task(self.env, **self.options)
        task = resolve_callable(self.factory or "")(**self.options)
        if not isinstance(task, TaskData):
            raise RecipeError(f"task factory {self.factory!r} returned {type(task).__name__}, not compress.data.TaskData")
        return task


def _check_policy_options(env: str, options: dict[str, Any]) -> None:
    from compress.errors import DataError
    from compress.rl.env import check_env_id

    try:
        check_env_id(env)
    except DataError as err:  # reported like every other recipe error: where, what, how to fix
        raise ValueError(str(err)) from None
    allowed = {"val_episodes", "test_episodes", "expert_episodes", "expert"}
    for key, value in options.items():
        if key not in allowed:
            raise ValueError(f"unknown option {key!r} for an env task; valid: {', '.join(sorted(allowed))}")
        if key != "expert" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"task option {key!r} must be a whole number >= 1, got {value!r}")
        if key == "expert" and not isinstance(value, str):
            raise ValueError(f"task option 'expert' must be a model name, got {value!r}")


class ModelRecord(BaseModel):
    """A model the run produced: how to rebuild it, where its files are (relative to the run folder), what was measured."""

    model_config = ConfigDict(extra="forbid")

    name: str
    stage: str
    spec: ModelSpec
    checkpoint: str | None = None
    onnx: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)

    def files(self) -> list[str]:
        return [p for p in (self.checkpoint, self.onnx) if p]


@dataclass
class RunContext:
    """The run's shared state. Stages read models by name and add or update `ModelRecord`s."""

    run_dir: Path
    task: TaskData
    target: TargetSpec = field(default_factory=TargetSpec)
    seed: int = 0
    quiet: bool = False
    models: dict[str, ModelRecord] = field(default_factory=dict)
    stage_dir: Path | None = None
    stage_id: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    _modules: dict[str, nn.Module] = field(default_factory=dict, repr=False)

    def path(self, relative: str) -> Path:
        return self.run_dir / relative

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.run_dir.resolve()).as_posix()

    def out(self, filename: str) -> Path:
        """A path inside the current stage's folder, the only place a stage writes."""
        if self.stage_dir is None:
            raise RuntimeError("RunContext.out() called outside a running stage")
        return self.stage_dir / filename

    def module(self, name: str) -> nn.Module:
        """The model called `name`, rebuilt from its record and checkpoint on first use."""
        if name not in self._modules:
            record = self.record(name)
            with torch.random.fork_rng(devices=[]):  # rebuilding must not shift the stage's random stream
                model = build_model(record.spec.model_copy(update={"checkpoint": None}), self.task)
            if record.checkpoint:
                load_checkpoint(model, self.path(record.checkpoint))
            self._modules[name] = model
        return self._modules[name]

    def record(self, name: str) -> ModelRecord:
        if name not in self.models:
            known = ", ".join(self.models) or "none yet"
            raise RecipeError(f"no model named {name!r} in this run (known: {known})", fix="train or load it in an earlier stage")
        return self.models[name]

    def put_model(self, record: ModelRecord, module: nn.Module | None = None) -> None:
        self.models[record.name] = record
        self._modules.pop(record.name, None)
        if module is not None:
            self._modules[record.name] = module
        self.task.on_model(record.name, lambda: self.module(record.name))

    def update_model(self, name: str, **fields: Any) -> ModelRecord:
        """Change a record's `onnx` or `metrics` (merged), keeping the loaded module."""
        record = self.record(name)
        if "metrics" in fields:
            fields["metrics"] = {**record.metrics, **fields["metrics"]}
        self.models[name] = record.model_copy(update=fields)
        return self.models[name]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: rec.model_dump(mode="json") for name, rec in self.models.items()}

    def changed_since(self, before: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        now = self.snapshot()
        return {name: rec for name, rec in now.items() if before.get(name) != rec}

    def apply(self, records: dict[str, dict[str, Any]]) -> None:
        """Replay a finished stage's recorded model changes (used on resume)."""
        for data in records.values():
            self.put_model(ModelRecord.model_validate(data))

    def log(self, message: str) -> None:
        log.info(message)
