"""What a report says about the run itself, read from its manifest: name, date, the recipe as validated,
and every stage with its start and duration. The `report` stage writes before its own record exists, so
it passes itself as the stage still running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compress.records.results import Record

__all__ = ["StageTime", "RunInfo", "run_info", "load_run_info"]


class StageTime(Record):
    id: str
    type: str
    status: str
    started: str | None = None
    duration_s: float | None = None


class RunInfo(Record):
    name: str
    run_dir: str
    created: str
    recipe: dict[str, Any]
    stages: list[StageTime]

    @property
    def total_s(self) -> float:
        """Seconds the recorded stages took (a reused stage counts its first run)."""
        return sum(s.duration_s or 0.0 for s in self.stages)


def run_info(manifest, run_dir: Path, *, running: StageTime | None = None) -> RunInfo:
    """From a loaded `compress.manifest.Manifest`; `running`: the stage writing the report, not yet recorded."""
    stages = [StageTime(id=s.id, type=s.type, status=s.status, started=s.started, duration_s=s.duration_s) for s in manifest.stages]
    if running is not None:
        stages = [s for s in stages if s.id != running.id] + [running]
    return RunInfo(name=manifest.name, run_dir=str(run_dir), created=manifest.created, recipe=manifest.recipe, stages=stages)


def load_run_info(run_dir: Path, *, running: StageTime | None = None) -> RunInfo | None:
    """The run's information from `run_dir/manifest.json`; None when there is none to read (a report built
    outside a run, or a manifest this version cannot read: the report is still written, without it)."""
    from compress.errors import ArtifactError
    from compress.manifest import MANIFEST, Manifest

    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        return run_info(Manifest.load(path), Path(run_dir), running=running)
    except ArtifactError:
        return None
