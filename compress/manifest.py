"""The run manifest: one record per stage (config hash, inputs, outputs with sha256, duration,
metrics, models), the environment, written atomically after every stage."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from compress.cores import available_cores
from compress.errors import ArtifactError, first_line
from compress.fsio import sha256_file, write_json
from compress.migrate import upgrade_manifest
from compress.records import LatencyStats, MetricInfo, ModelRecord, Summary
from compress.registry import did_you_mean

__all__ = ["Manifest", "StageRecord", "environment", "config_hash", "MANIFEST"]

SCHEMA = 2
MANIFEST = "manifest.json"
"""The manifest's file name in a run folder."""


def config_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class StageRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    type: str
    status: Literal["done", "reused"]
    parent: str | None
    key: str = Field(description="hash of stage type, config, run settings and input sha256s")
    config: dict[str, Any]
    config_sha256: str
    inputs: dict[str, str] = Field(description="artifact path (relative to the run) -> sha256")
    outputs: dict[str, str]
    models: dict[str, ModelRecord] = Field(description="model records this stage added or changed, as they were after it")
    metrics: dict[str, Any] = Field(description="the stage's own facts; a model's results live in its record")
    started: str
    duration_s: float

    def outputs_intact(self, run_dir: Path) -> bool:
        return all((run_dir / p).is_file() and sha256_file(run_dir / p) == h for p, h in self.outputs.items())


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA
    name: str
    recipe: dict[str, Any]
    created: str
    updated: str
    environment: dict[str, Any]
    metric: MetricInfo | None = Field(None, description="the task's metric: a model's figure in reports and summaries")
    stages: list[StageRecord] = Field(default_factory=list)
    _run_dir: Path | None = PrivateAttr(None)

    @property
    def run_dir(self) -> Path | None:
        """The run folder this manifest was read from or written to (None for one built in memory)."""
        return self._run_dir

    def model(self, name: str) -> ModelRecord:
        """The run's model `name` as the last stage that touched it left it."""
        records = self.records()
        if name not in records:
            raise ArtifactError(
                f"run {self.name!r} has no model {name!r}; {did_you_mean(name, records)}it has: {', '.join(records) or 'none'}",
                fix="use one of those names",
            )
        return records[name]

    def value(self, name: str, *, runtime: str | None = None) -> float | None:
        """Model `name`'s figure of the task's metric (accuracy, mse, ...): through `runtime` (default: the first
        benchmarked target, else the deployed runtime's), test split first; None where it was not measured."""
        if self.metric is None:
            return None
        record = self.model(name)
        found = record.headline(self.metric.name) if runtime is None else record.score(self.metric.name, runtime=runtime)
        return found.value if found else None

    def latency(self, name: str, batch_size: int = 1, *, target: str | None = None) -> LatencyStats | None:
        """Model `name`'s measured latency at `batch_size` on `target` (default: the first it was benchmarked on):
        `.p50`, `.p90`, `.p99`, `.throughput`, `.noisy`, in milliseconds; None where it was not measured."""
        return self.model(name).latency(batch_size, target=target)

    def path(self, name: str, kind: Literal["onnx", "checkpoint"] = "onnx") -> Path | None:
        """Model `name`'s ONNX file (or FP32 checkpoint) as a path you can open; None if it has none."""
        relative = getattr(self.model(name), kind)
        if relative is None:
            return None
        return (self._run_dir / relative) if self._run_dir is not None else Path(relative)

    def summary(self) -> Summary:
        """The run's summary.json: every model and the verdict (`.verdict.recommended`, `.verdict.gates`)."""
        if self._run_dir is None:
            raise ArtifactError("this manifest was not read from or written to a run folder", fix="use Manifest.load(path)")
        return Summary.model_validate_json((self._run_dir / "summary.json").read_text(encoding="utf-8"))

    def find(self, stage_id: str) -> StageRecord | None:
        return next((s for s in self.stages if s.id == stage_id), None)

    def records(self) -> dict[str, ModelRecord]:
        """Every model of the run as the last stage that touched it left it."""
        found: dict[str, ModelRecord] = {}
        for stage in self.stages:
            found.update(stage.models)
        return found

    def save(self, path: Path) -> None:
        self.updated = now()
        write_json(path, self.model_dump(mode="json"))

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """A run's manifest, from its `manifest.json` or the run folder holding it (schema 1 files are
        upgraded as they are read)."""
        path = Path(path)
        path = path / MANIFEST if path.is_dir() else path
        if not path.exists():
            raise ArtifactError(f"{path}: no such file", fix="give a run folder or its manifest.json (the run's --out)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            version = data.get("schema_version", 1)
            if not isinstance(version, int) or isinstance(version, bool):
                raise ValueError(f"schema_version {version!r} is not a number")
            if version > SCHEMA:
                raise ValueError(
                    f"schema {data['schema_version']} is newer than this edge-compress reads ({SCHEMA}); upgrade edge-compress"
                )
            manifest = cls.model_validate(upgrade_manifest(data))
            manifest._run_dir = path.parent
            return manifest
        except (OSError, ValidationError, ValueError) as err:
            first = first_line(err)
            raise ArtifactError(
                f"{path}: not a readable edge-compress manifest ({first})",
                fix="run the recipe with --resume (it rebuilds the manifest from the stage folders), or start again with --overwrite",
            ) from None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(deploy_cpu: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions, CPU and thread settings: what a reader needs to judge the figures; `deploy_cpu`: the
    target CPU the run quantizes for and this host's kind and flags (`DeployCpu.as_dict`)."""
    import torch

    packages = ("edge-compress", "torch", "onnx", "onnxruntime", "numpy", "torch-pruning", "scikit-learn", "neural-compressor", "torchao")
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        **available_cores().as_dict(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "packages": {name: _version(name) for name in packages},
        **({"deploy_cpu": deploy_cpu} if deploy_cpu else {}),
    }
