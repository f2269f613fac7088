"""Measure one model file on one target: latency per batch size (with memory), and the task metric
through the same runtime when a task is given. Used by `edge-compress bench` and `regress`."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from compress.bench.fingerprint import cpu_mismatch, fingerprint
from compress.bench.memory import peak_rss
from compress.bench.runners import Loaded, ModelSource, Runner, Sessions, TargetSpec, make_runner
from compress.bench.runners.pytorch import load_pt2
from compress.bench.timing import TimingConfig, measure_rounds
from compress.config import BatchSizes
from compress.data.spec import TaskSpec
from compress.errors import ArtifactError, DataError, ModelError, first_line
from compress.fsio import sha256_file
from compress.models.onnx_file import graph_inputs

__all__ = ["BenchSettings", "bench_model", "model_source", "sample_shape", "inputs_for", "measure_sessions", "time_batches", "evaluate"]

REGRESS_TIMING = TimingConfig(warmup=20, rounds=15, min_iters=20, min_time_s=0.1)


class BenchSettings(BaseModel):
    """How a model is measured; a baseline stores these so `regress` measures the same way."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    target: TargetSpec = Field(default_factory=TargetSpec)
    batch_sizes: BatchSizes = Field([1], description="batch sizes to time")
    timing: TimingConfig = Field(REGRESS_TIMING)
    task: TaskSpec | None = Field(None, description="task whose inputs are timed and whose metric is computed")
    split: Literal["test", "val"] = "test"
    input_shape: tuple[int, ...] | None = Field(None, description="per-sample input shape when there is no task")


def model_source(path: str | Path) -> ModelSource:
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a model file" if path.is_dir() else "does not exist"
        raise ArtifactError(f"model file {path} {what}", fix="give the path of an .onnx (or .pt2) file")
    if path.suffix == ".pt2":
        return ModelSource(label=path.name, module=load_pt2(path))
    if path.suffix != ".onnx":
        raise ArtifactError(
            f"{path}: expected an .onnx file (or a torch.export .pt2 for torch-* targets), got {path.suffix or 'no suffix'!r}"
        )
    return ModelSource(label=path.name, onnx=path)


def _onnx_sample_shape(path: Path) -> tuple[int, ...] | None:
    """The per-sample input shape declared by an ONNX file, or None when a non-batch dim is symbolic."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as err:  # onnx raises DecodeError and friends
        what = "does not exist" if not path.exists() else f"is not a readable ONNX file ({first_line(err)})"
        raise ArtifactError(
            f"model file {path} {what}", fix="give the path of an .onnx file that torch.onnx.export or another exporter wrote"
        ) from None
    inputs = graph_inputs(graph)
    if not inputs or not graph.node:  # protobuf reads an empty file as an empty model
        why = "the file is empty" if path.stat().st_size == 0 else "it has no graph inputs or nodes"
        raise ArtifactError(f"{path} is not a readable ONNX model ({why})", fix="export the model again")
    dims = inputs[0].type.tensor_type.shape.dim[1:]
    return tuple(d.dim_value for d in dims) if all(d.dim_value > 0 for d in dims) else None


def sample_shape(path: Path, settings: BenchSettings, task_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """The per-sample input shape: the task's, else --input-shape, else the ONNX file's own."""
    declared = _onnx_sample_shape(path) if path.suffix == ".onnx" else None
    shape = task_shape or settings.input_shape or declared
    if shape is None:
        raise DataError(f"{path.name}: cannot tell the input shape", fix="give --task or --input-shape (per sample, e.g. 1,8,8)")
    if declared is not None and tuple(shape) != declared:
        given = "the task" if task_shape else "--input-shape"
        raise DataError(
            f"{path.name} takes inputs of shape {declared} per sample, but {given} gives {tuple(shape)}", fix="check --task/--input-shape"
        )
    return tuple(shape)


def inputs_for(shape: tuple[int, ...], batch_size: int, task=None, split: str = "test") -> np.ndarray:
    """Real task inputs when a task is given (timing can depend on values), else seeded random normals."""
    _check_fits_memory(shape, batch_size)
    if task is not None:
        return task.full_batch(batch_size, split).numpy()
    return np.random.default_rng(0).standard_normal((batch_size, *shape)).astype(np.float32)


def _check_fits_memory(shape: tuple[int, ...], batch_size: int) -> None:
    """A batch whose inputs alone would take more than half the free memory is refused, not allocated."""
    need = batch_size * math.prod(shape) * 4
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not reported on this system
        return
    if need > free / 2:
        raise DataError(
            f"batch size {batch_size} needs {need / 2**30:.1f} GiB for its inputs alone ({free / 2**30:.1f} GiB free)",
            fix="time smaller batches (--batch-sizes)",
        )


def measure_sessions(sessions: Sessions, x: np.ndarray, timing: TimingConfig) -> dict[str, Any]:
    """Latency statistics of `x` through `sessions` (a fresh load per round when configured), with the
    device's peak memory where the runtime reports it."""
    peaks: list[int] = []
    loads_before = sessions.loads

    def prepare():
        if sessions.loads > loads_before:  # the previous round's load, before a fresh one replaces it
            _note_peak(sessions.current, peaks)
        loaded = sessions.next()
        if sessions.loads == loads_before + 1:  # the first round of this measurement
            _try(loaded, x, sessions.source.label)
        loaded.reset_device_peak()
        return loaded.prepare(x), loaded.clock

    stats = measure_rounds(prepare, timing, batch_size=len(x))
    _note_peak(sessions.current, peaks)
    stats["device_peak_mb"] = max(peaks) / 1024**2 if peaks else None
    stats["loads"] = sessions.loads - loads_before
    return stats


def time_batches(sessions: Sessions, batches: dict[str, np.ndarray], timing: TimingConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(latency statistics per batch key, memory over all of it) through `sessions`."""
    with peak_rss() as rss:
        latency = {batch: measure_sessions(sessions, x, timing) for batch, x in batches.items()}
    return latency, {"peak_rss_mb": rss.peak_mb, "rss_growth_mb": rss.growth_mb, "scope": rss.scope}


def _try(loaded: Loaded, x: np.ndarray, label: str) -> None:
    """One untimed call, so that a model that cannot take these inputs is a one-line error."""
    try:
        loaded(x)
    except Exception as err:  # runtimes raise their own types
        first = (str(err).strip().splitlines() or [type(err).__name__])[-1]
        raise ModelError(
            f"{label} fails on inputs of shape {tuple(x.shape)}: {first}", fix="check the input shape and batch dimension"
        ) from None


def _note_peak(loaded: Loaded | None, peaks: list[int]) -> None:
    peak = loaded.device_peak_bytes() if loaded is not None else None
    if peak is not None:
        peaks.append(peak)


def evaluate(loaded: Loaded, task, split: str, spec: TaskSpec | None, path: Path | None = None) -> dict[str, Any]:
    """The task metric of `loaded` on `split`; outputs that cannot be scored (not one float row per input,
    NaN) are a one-line error, not a number."""
    fixed = _declared_batch(path) if path is not None and path.suffix == ".onnx" else None
    label = path.name if path is not None else "the model"
    scores = task.evaluate(_checked(loaded, label, split, fixed), split, batch_size=fixed or 256)
    name = task.metric.name
    return {
        "name": name,
        "value": scores[name],
        "split": split,
        "higher_is_better": task.metric.higher_is_better,
        "scores": scores,
        "task": spec.model_dump(exclude_defaults=True) if spec else None,
    }


def _declared_batch(path: Path) -> int | None:
    """The batch size an ONNX file is fixed to, or None when its batch axis is dynamic."""
    import onnx

    dims = graph_inputs(onnx.load(str(path), load_external_data=False).graph)[0].type.tensor_type.shape.dim
    return dims[0].dim_value if dims and dims[0].dim_value > 0 else None


def _checked(predict, label: str, split: str, fixed: int | None):
    """`predict` for scoring: batches padded to a fixed batch size, runtime failures and outputs that
    cannot be scored turned into one-line errors."""

    def run(x: np.ndarray) -> np.ndarray:
        n = len(x)
        if fixed is not None and n < fixed:
            x = np.concatenate([x, np.repeat(x[-1:], fixed - n, axis=0)])
        try:
            out = np.asarray(predict(x))
        except Exception as err:  # the runtime's own error types (onnxruntime, OpenVINO, torch)
            raise DataError(
                f"running {label} on the {split} split failed: {first_line(err)}", fix="check the model with --input-shape and no --task"
            ) from None
        if out.ndim == 0 or len(out) != len(x):
            rows = "a scalar" if out.ndim == 0 else f"{len(out)} rows"
            raise DataError(f"{label} returns {rows} for a batch of {len(x)}", fix="its output must keep the batch axis: one row per input")
        if not np.issubdtype(out.dtype, np.floating):
            raise DataError(f"{label} outputs {out.dtype} values, not scores", fix="score the model before its argmax (export the logits)")
        if not np.isfinite(out).all():
            raise DataError(
                f"{label} outputs NaN or inf on the {split} split: its metric would mean nothing",
                fix="check the model (or its quantization)",
            )
        return out[:n]

    return run


def _int8_metric_warning(path: Path, settings: BenchSettings) -> str | None:
    """The metric comes from this machine's kernels; say so when the target's would saturate and these do not."""
    if path.suffix != ".onnx":
        return None
    import onnx

    from compress.quant.arithmetic import weight_range

    cpu = settings.target.deploy_cpu()
    weights = weight_range(onnx.load(str(path), load_external_data=False))
    if not cpu.kind.saturates or cpu.host.saturates or weights.saturation_safe:
        return None
    return (
        f"the metric is this {cpu.host.name} machine's arithmetic: the file's int8 weights (up to |{weights.max_abs}|) can saturate "
        f"on {cpu.kind.name}; quantize it with target.cpu: {cpu.kind.name} (7-bit weights)"
    )


def bench_model(model: str | Path, settings: BenchSettings, *, runner: Runner | None = None) -> dict[str, Any]:
    """Latency per batch size, peak memory and (with a task) the metric of `model` on `settings.target`."""
    path = Path(model)
    source = model_source(path)
    task = settings.task.load() if settings.task else None
    shape = sample_shape(path, settings, task.input_shape if task else None)
    fixed = _declared_batch(path) if path.suffix == ".onnx" else None
    if fixed is not None and any(b != fixed for b in settings.batch_sizes):
        raise DataError(f"{path.name} is fixed at batch {fixed}", fix=f"time --batch-sizes {fixed}, or export it with a dynamic batch axis")
    runner = runner or make_runner(settings.target)
    sessions = Sessions(runner, source, fresh=settings.timing.fresh_sessions)
    batches = {str(b): inputs_for(shape, b, task, settings.split) for b in settings.batch_sizes}
    latency, memory = time_batches(sessions, batches, settings.timing)
    info = runner.describe()
    return {
        "model": {"path": str(path), "sha256": sha256_file(path), "input_shape": list(shape)},
        "settings": settings.model_dump(mode="json"),
        "runner": info,
        "fingerprint": fingerprint(info),
        "warnings": [w for w in [cpu_mismatch(settings.target.cpu), _int8_metric_warning(path, settings) if task else None] if w],
        "latency": latency,
        "memory": memory,
        "metric": evaluate(sessions.loaded(), task, settings.split, settings.task, path) if task else None,
    }
