"""`RunContext`: what flows between stages. Its `models` records (`compress.records`) are plain data,
so a resumed run rebuilds the same context from the manifest without re-running a stage."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from compress.config import Acceptance
from compress.data.spec import TaskSpec
from compress.data.task import TaskData
from compress.errors import RecipeError
from compress.models.spec import build_model, load_checkpoint
from compress.records import ModelRecord

if TYPE_CHECKING:  # the target is built by the pipeline; the context only carries it
    from compress.bench.runners import TargetSpec

__all__ = ["RunContext", "ModelRecord", "TaskSpec", "WORK"]

log = logging.getLogger("compress")
WORK = ".work"  # a stage folder's scratch (see RunContext.work)


@dataclass
class RunContext:
    """The run's shared state. Stages read models by name and add or update `ModelRecord`s."""

    run_dir: Path
    task: TaskData
    target: TargetSpec
    seed: int = 0
    quiet: bool = False
    acceptance: Acceptance | None = None
    models: dict[str, ModelRecord] = field(default_factory=dict)
    stage_dir: Path | None = None
    stage_id: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    """The running stage's own facts (not a model's: those go in its record through `update_model`)."""
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

    def work(self, filename: str) -> Path:
        """Scratch inside the current stage's folder (an epoch checkpoint, finished trials): it survives an
        interruption, so `--resume` continues there, is never a recorded output, and is removed once the
        stage is recorded in the manifest."""
        path = self.out(WORK) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def module(self, name: str) -> nn.Module:
        """The model called `name`, rebuilt from its record and checkpoint on first use."""
        if name not in self._modules:
            record = self.record(name)
            if record.kind == "int8":
                raise RecipeError(
                    f"model {name!r} is INT8: it exists as its ONNX file only, not as a PyTorch module",
                    fix=f"use the FP32 model it was made from ({record.parent})",
                )
            if record.spec.onnx is not None:
                raise RecipeError(
                    f"model {name!r} was brought as an ONNX file: it has no PyTorch module",
                    fix="load the PyTorch model (arch or factory plus checkpoint) for stages that train or export",
                )
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
        """Set typed fields of a model's record (`onnx`, `parity`, `bench`, ...), validated, keeping the
        loaded module: the one way stages record results."""
        record = self.record(name)
        self.models[name] = ModelRecord.model_validate({**dict(record), **fields})
        return self.models[name]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: rec.model_dump(mode="json") for name, rec in self.models.items()}

    def changed_since(self, before: dict[str, dict[str, Any]]) -> dict[str, ModelRecord]:
        now = self.snapshot()
        return {name: self.models[name] for name, rec in now.items() if before.get(name) != rec}

    def apply(self, records: dict[str, ModelRecord]) -> None:
        """Replay a finished stage's recorded model changes (used on resume)."""
        for record in records.values():
            self.put_model(record)

    def log(self, message: str) -> None:
        log.info(message)

    def training_inputs(self, unlabeled: bool, who: str) -> torch.utils.data.Dataset | None:
        """What a stage fits `who` on: None (the task's train split), or with `unlabeled` that split followed
        by the task's unlabeled inputs (a one-line error when it has none), counted in the log."""
        if not unlabeled:
            return None
        train = self.task.with_unlabeled()
        self.log(f"  {who}: {len(train) - len(self.task.train):,} unlabeled inputs join the {len(self.task.train):,} training samples")
        return train
