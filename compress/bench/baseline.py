"""Stored latency baselines: what `edge-compress bench --save-baseline` writes and `regress --baseline`
reads. A baseline keeps how it was measured (settings), where (environment fingerprint), the per-round
medians the statistics need, and the metric when a task was given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compress.bench.model_bench import BenchSettings
from compress.errors import ArtifactError
from compress.fsio import write_json
from compress.manifest import now

__all__ = ["Baseline", "save_baseline", "load_baseline", "KIND"]

KIND = "edge-compress-baseline"
SCHEMA = 1


class LatencyStats(BaseModel):
    model_config = ConfigDict(extra="allow")

    p50: float = Field(gt=0)
    p90: float
    p99: float
    round_p50: list[float] = Field(min_length=2)
    noisy: bool = False


class MeasuredModel(BaseModel):
    """The file a baseline measured: its sha256 tells a changed model, its input shape makes the inputs again."""

    model_config = ConfigDict(extra="allow")

    path: str
    sha256: str
    input_shape: list[int] = Field(min_length=1)


class Baseline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["edge-compress-baseline"]
    schema_version: Literal[1]
    created: str
    command: str | None = None
    model: MeasuredModel
    settings: BenchSettings
    runner: dict[str, Any]
    fingerprint: dict[str, Any]
    latency: dict[str, LatencyStats] = Field(min_length=1)
    memory: dict[str, Any] = Field(default_factory=dict)
    metric: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list, description="what the measurement warned of (a machine unlike the deployment CPU)")


def save_baseline(result: dict[str, Any], path: str | Path, *, command: str | None = None) -> Baseline:
    baseline = Baseline.model_validate({"kind": KIND, "schema_version": SCHEMA, "created": now(), "command": command, **result})
    write_json(path, baseline.model_dump(mode="json"))
    return baseline


def _first_problem(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "file"
    return f"{where}: {first['msg']}"


def load_baseline(path: str | Path) -> Baseline:
    """The baseline at `path`; an `ArtifactError` (one line, with the fix) if it is missing or corrupt."""
    path = Path(path)
    fix = "save a new one with 'edge-compress bench MODEL --save-baseline FILE'"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"baseline {path} does not exist", fix=fix) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ArtifactError(f"baseline {path} cannot be read ({err})", fix=fix) from None
    except json.JSONDecodeError as err:
        raise ArtifactError(f"baseline {path} is not valid JSON (line {err.lineno}: {err.msg})", fix=fix) from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise ArtifactError(f'{path} is not an edge-compress baseline (no "kind": "{KIND}")', fix=fix)
    if data.get("schema_version") != SCHEMA:
        raise ArtifactError(
            f"baseline {path} has schema version {data.get('schema_version')!r}; this edge-compress reads {SCHEMA}", fix=fix
        )
    try:
        return Baseline.model_validate(data)
    except ValidationError as err:
        raise ArtifactError(f"baseline {path} is corrupt ({_first_problem(err)})", fix=fix) from None
