"""Measure one model file on one target: latency per batch size (with memory), and the task metric
through the same runtime when a task is given. Used by `edge-compress bench` and `regress`."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from compress.bench.fingerprint import cpu_mismatch, fingerprint
from compress.bench.memory import peak_rss
from compress.bench.runners import Loaded, ModelSource, Runner, Sessions, TargetSpec, make_runner
from compress.bench.runners.pytorch import load_pt2
from compress.bench.timing import TimingConfig, measure_rounds
from compress.config import BatchSizes
from compress.data.spec import TaskSpec
from compress.errors import ArtifactError, DataError, ModelError, RecipeError, TargetError, first_line
from compress.fsio import sha256_file
from compress.models.onnx_file import GraphInput, batch_axes, graph_inputs, input_specs

__all__ = [
    "BenchSettings",
    "Feeds",
    "bench_model",
    "model_source",
    "sample_shape",
    "inputs_for",
    "feeds_for",
    "measure_sessions",
    "time_batches",
    "evaluate",
]

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
    input_shapes: dict[str, tuple[PositiveInt, ...]] = Field(
        default_factory=dict, description="shapes at batch 1 of named inputs whose size the ONNX file leaves open (no task)"
    )
    input_values: dict[str, float] = Field(
        default_factory=dict, description="named inputs filled with one value (e.g. a sample rate) instead of random normals or zeros"
    )


@dataclass(frozen=True)
class Feeds:
    """One batch for a model with several inputs: an array per graph input name."""

    arrays: dict[str, np.ndarray]
    batch: int

    def __len__(self) -> int:
        return self.batch

    def describe(self) -> str:
        return ", ".join(f"{name} {list(a.shape)} {a.dtype}" for name, a in self.arrays.items())


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


def _read_inputs(path: Path) -> list[GraphInput]:
    """The inputs an ONNX file declares (name, dimensions, element type); a file that is not one is a one-line error."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as err:  # onnx raises DecodeError and friends
        what = "does not exist" if not path.exists() else f"is not a readable ONNX file ({first_line(err)})"
        raise ArtifactError(
            f"model file {path} {what}", fix="give the path of an .onnx file that torch.onnx.export or another exporter wrote"
        ) from None
    inputs = input_specs(graph)
    if not inputs or not graph.node:  # protobuf reads an empty file as an empty model
        why = "the file is empty" if path.stat().st_size == 0 else "it has no graph inputs or nodes"
        raise ArtifactError(f"{path} is not a readable ONNX model ({why})", fix="export the model again")
    return inputs


def _onnx_sample_shape(path: Path) -> tuple[int, ...] | None:
    """The per-sample input shape declared by a single-input ONNX file, or None when a non-batch dim is open."""
    inputs = _read_inputs(path)
    if len(inputs) > 1:
        raise DataError(
            f"{path.name} takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); this command feeds one",
            fix="measure it with 'edge-compress bench' (it makes each input), or regress it against a saved --baseline",
        )
    dims = (inputs[0].dims or ("?",))[1:]
    return tuple(d for d in dims if isinstance(d, int)) if all(isinstance(d, int) for d in dims) else None


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
    _check_bytes(batch_size * math.prod(shape) * 4, batch_size)
    if task is not None:
        return task.full_batch(batch_size, split).numpy()
    return np.random.default_rng(0).standard_normal((batch_size, *shape)).astype(np.float32)


def feeds_for(inputs: list[GraphInput], settings: BenchSettings, batch: int, label: str = "the model") -> Feeds | np.ndarray:
    """Inputs for each of an ONNX file's graph `inputs`, made from its declared shape and type: batch axes
    take `batch`, open dimensions come from `settings.input_shapes` (or `input_shape`, per sample, for the
    first input); floats are seeded random normals, integers zeros, and `input_values` fill their inputs.
    A single float input gets a plain array, which every target takes."""
    axes, given = batch_axes(inputs), _given_shapes(inputs, settings, label)
    shapes = {i.name: _feed_shape(i, axes[i.name], given.get(i.name), batch, label) for i in inputs}
    _check_bytes(sum(math.prod(shapes[i.name]) * np.dtype(i.dtype).itemsize for i in inputs), batch)
    rng = np.random.default_rng(0)
    arrays = {i.name: _synthesize(i.dtype, shapes[i.name], settings.input_values.get(i.name), rng) for i in inputs}
    return next(iter(arrays.values())) if _plain(inputs) else Feeds(arrays, batch)


def _plain(inputs: list[GraphInput]) -> bool:
    """One float input (or none known: a .pt2 file): timed through any runner as one float32 array."""
    return len(inputs) == 0 or (len(inputs) == 1 and np.issubdtype(np.dtype(inputs[0].dtype), np.floating))


def _given_shapes(inputs: list[GraphInput], settings: BenchSettings, label: str) -> dict[str, tuple[int, ...]]:
    """The shapes at batch 1 that the settings give, by input name; names the file lacks are an error."""
    names = [i.name for i in inputs]
    unknown = [n for n in [*settings.input_shapes, *settings.input_values] if n not in names]
    if unknown:
        raise DataError(
            f"{label} has no input {unknown[0]!r}; it takes {', '.join(i.describe() for i in inputs)}",
            fix="name one of those in --input-shape / --input-value",
        )
    given, first = dict(settings.input_shapes), inputs[0]
    if settings.input_shape is not None and first.name not in given and first.dims:
        lead = first.dims[0] if isinstance(first.dims[0], int) else 1
        given[first.name] = (lead, *settings.input_shape)
    return given


def _feed_shape(spec: GraphInput, axes: tuple[int, ...], given: tuple[int, ...] | None, batch: int, label: str) -> tuple[int, ...]:
    """The shape `spec` is fed at `batch`: its declared dimensions, with `given` (at batch 1) for open ones."""
    dims = spec.dims
    if given is None:
        if dims is None or any(isinstance(d, str) for a, d in enumerate(dims) if a not in axes):
            pattern = "x".join("1" if a in axes else str(d) if isinstance(d, int) else f"<{d}>" for a, d in enumerate(dims or ("?",)))
            raise DataError(
                f"{label}: input {spec.describe()} has dimensions the file leaves open",
                fix=f"give its shape at batch 1: --input-shape {spec.name}={pattern}",
            )
        return tuple(batch if a in axes else int(d) for a, d in enumerate(dims))
    if dims is not None and (len(dims) != len(given) or any(isinstance(d, int) and d != g for d, g in zip(dims, given, strict=True))):
        raise DataError(f"{label}: input {spec.describe()} cannot take the shape {'x'.join(map(str, given))}", fix="check --input-shape")
    if any(given[a] != 1 for a in axes):
        raise DataError(f"{label}: axis {axes[0]} of input {spec.name!r} is the batch axis", fix="write 1 there; --batch-sizes sets it")
    return tuple(batch if a in axes else g for a, g in enumerate(given))


def _synthesize(dtype: str, shape: tuple[int, ...], value: float | None, rng: np.random.Generator) -> np.ndarray:
    if value is not None:
        return np.full(shape, value, dtype=dtype)
    if np.issubdtype(np.dtype(dtype), np.floating):
        return rng.standard_normal(shape).astype(dtype)
    return np.zeros(shape, dtype=dtype)  # integer ids and masks: 0 is valid for most


def _check_bytes(need: int, batch_size: int) -> None:
    """A batch whose inputs alone would take more than half the free memory is refused, not allocated."""
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not reported on this system
        return
    if need > free / 2:
        raise DataError(
            f"batch size {batch_size} needs {need / 2**30:.1f} GiB for its inputs alone ({free / 2**30:.1f} GiB free)",
            fix="time smaller batches (--batch-sizes)",
        )


def measure_sessions(sessions: Sessions, x: np.ndarray | Feeds, timing: TimingConfig) -> dict[str, Any]:
    """Latency statistics of `x` through `sessions` (a fresh load per round when configured), with the
    device's peak memory where the runtime reports it."""
    peaks: list[int] = []
    loads_before = sessions.loads

    def prepare():
        if sessions.loads > loads_before:  # the previous round's load, before a fresh one replaces it
            note_peak(sessions.current, peaks)
        loaded = sessions.next()
        if sessions.loads == loads_before + 1:  # the first round of this measurement
            try_inputs(loaded, x, sessions.source.label)
        loaded.reset_device_peak()
        return timed_call(loaded, x), loaded.clock

    stats = measure_rounds(prepare, timing, batch_size=len(x))
    note_peak(sessions.current, peaks)
    stats["device_peak_mb"] = max(peaks) / 1024**2 if peaks else None
    stats["loads"] = sessions.loads - loads_before
    return stats


def time_batches(sessions: Sessions, batches: dict[str, np.ndarray | Feeds], timing: TimingConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(latency statistics per batch key, memory over all of it) through `sessions`."""
    with peak_rss() as rss:
        latency = {batch: measure_sessions(sessions, x, timing) for batch, x in batches.items()}
    return latency, {"peak_rss_mb": rss.peak_mb, "rss_growth_mb": rss.growth_mb, "scope": rss.scope}


def timed_call(loaded: Loaded, x: np.ndarray | Feeds):
    """The call that is timed: the runner's own for one input; for several, ONNX Runtime's session on the CPU."""
    if not isinstance(x, Feeds):
        return loaded.prepare(x)
    session = getattr(loaded, "session", None)
    if session is None or getattr(loaded, "device", None) != "cpu":
        raise TargetError(f"models with several inputs ({', '.join(x.arrays)}) are timed on ort-cpu only", fix="use --target ort-cpu")
    return lambda: session.run(None, x.arrays)


def try_inputs(loaded: Loaded, x: np.ndarray | Feeds, label: str) -> None:
    """One untimed call, so that a model that cannot take these inputs is a one-line error."""
    try:
        timed_call(loaded, x)()
    except TargetError:
        raise
    except Exception as err:  # runtimes raise their own types
        first = (str(err).strip().splitlines() or [type(err).__name__])[-1]
        what = x.describe() if isinstance(x, Feeds) else f"inputs of shape {tuple(x.shape)}"
        fix = "give the inputs' shapes (--input-shape NAME=1x...) and values (--input-value NAME=V)" if isinstance(x, Feeds) else None
        raise ModelError(f"{label} fails on {what}: {first}", fix=fix or "check the input shape and batch dimension") from None


def note_peak(loaded: Loaded | None, peaks: list[int]) -> None:
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


def _batches(path: Path, inputs: list[GraphInput], settings: BenchSettings, task) -> tuple[dict[str, np.ndarray | Feeds], dict[str, Any]]:
    """The inputs timed per batch size, and what they are: the task's, or random normals of the sample
    shape, or (several `inputs`, or named shapes or values) made from the file's declared inputs by `feeds_for`."""
    named = bool(settings.input_shapes or settings.input_values)
    if not named and _plain(inputs):
        shape = sample_shape(path, settings, task.input_shape if task else None)
        return {str(b): inputs_for(shape, b, task, settings.split) for b in settings.batch_sizes}, {"input_shape": list(shape)}
    if task is not None:
        what = f"takes {len(inputs)} inputs and a task gives one" if len(inputs) > 1 else "takes the task's inputs"
        fix = "drop --task, or drop --input-shape NAME=... and --input-value" if named else "drop --task: its inputs are made from the file"
        raise RecipeError(f"{path.name} {what}", fix=fix)
    batches = {str(b): feeds_for(inputs, settings, b, path.name) for b in settings.batch_sizes}
    one = feeds_for(inputs, settings, 1, path.name)
    arrays = one.arrays if isinstance(one, Feeds) else {inputs[0].name: one}
    return batches, {"input_shape": list(arrays[inputs[0].name].shape[1:]), "inputs": _described(arrays, settings.input_values)}


def _described(arrays: dict[str, np.ndarray], values: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Each synthesized input at batch 1: shape, dtype and how its values were made."""

    def how(name: str, a: np.ndarray) -> str:
        if name in values:
            return f"all {values[name]:g}"
        return "normal(0, 1), seed 0" if np.issubdtype(a.dtype, np.floating) else "zeros"

    return {n: {"shape": list(a.shape), "dtype": str(a.dtype), "values": how(n, a)} for n, a in arrays.items()}


def bench_model(model: str | Path, settings: BenchSettings, *, runner: Runner | None = None) -> dict[str, Any]:
    """Latency per batch size, peak memory and (with a task) the metric of `model` on `settings.target`."""
    path = Path(model)
    source = model_source(path)
    task = settings.task.load() if settings.task else None
    inputs = _read_inputs(path) if path.suffix == ".onnx" else []
    first = inputs[0].dims if inputs else None
    fixed = first[0] if first and isinstance(first[0], int) else None
    if fixed is not None and any(b != fixed for b in settings.batch_sizes):
        raise DataError(f"{path.name} is fixed at batch {fixed}", fix=f"time --batch-sizes {fixed}, or export it with a dynamic batch axis")
    batches, made = _batches(path, inputs, settings, task)
    runner = runner or make_runner(settings.target)
    sessions = Sessions(runner, source, fresh=settings.timing.fresh_sessions)
    latency, memory = time_batches(sessions, batches, settings.timing)
    info = runner.describe()
    return {
        "model": {"path": str(path), "sha256": sha256_file(path), **made},
        "settings": settings.model_dump(mode="json"),
        "runner": info,
        "fingerprint": fingerprint(info),
        "warnings": [w for w in [cpu_mismatch(settings.target.cpu), _int8_metric_warning(path, settings) if task else None] if w],
        "latency": latency,
        "memory": memory,
        "metric": evaluate(sessions.loaded(), task, settings.split, settings.task, path) if task else None,
    }
