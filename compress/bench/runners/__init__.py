"""Runners: one protocol for every runtime and device a model can be measured on.

A runner is made from a `TargetSpec` and loads a `ModelSource` (an ONNX file, a PyTorch module, or
both) into a `Loaded` model: callable on a numpy batch (for metrics), `prepare(x)` gives the call that
is timed (input already on the device), `clock` says how that call is timed. Each runtime lives in
its own file; a runtime that is not installed is a `TargetError` naming what to install.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from compress.config import no_booleans_as_numbers
from compress.cpu import CpuName, DeployCpu, resolve_cpu
from compress.errors import TargetError
from compress.registry import Registry

__all__ = [
    "RUNNERS",
    "Clock",
    "Sessions",
    "Loaded",
    "ModelSource",
    "Runner",
    "TargetSpec",
    "available_targets",
    "make_runner",
    "target_available",
    "wall_clock",
]

Clock = Callable[[Callable[[], Any]], int]
"""Runs a call once and returns how long it took, in nanoseconds."""


def wall_clock(call: Callable[[], Any]) -> int:
    start = time.perf_counter_ns()
    call()
    return time.perf_counter_ns() - start


RUNNERS: Registry[type] = Registry("benchmark target")


class TargetSpec(BaseModel):
    """Where a model runs: a registered target (`edge-compress bench --help` lists them) and its settings."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, data: Any) -> Any:
        return no_booleans_as_numbers(cls, data)

    name: str = Field("ort-cpu", description="runtime and device, e.g. ort-cpu, ort-cuda, openvino-cpu, torch-cpu, torch-cuda")
    threads: int | None = Field(
        None, ge=1, le=4096, description="intra-op CPU threads; default: the CPUs this process may use (affinity mask and cgroup quota)"
    )
    optimization: Literal["all", "extended", "basic", "disabled"] = Field(
        "all", description="ONNX Runtime graph optimization level (ort-* targets)"
    )
    precision: Literal["f32", "bf16", "f16"] = Field(
        "f32", description="OpenVINO inference precision hint; f32 keeps FP32 models in FP32 (its CPU default may be bf16)"
    )
    io_binding: bool = Field(True, description="GPU targets: inputs and outputs stay on the device while timed")
    cpu: CpuName = Field(
        "auto",
        description="the CPU the model will run on, which sets the INT8 format: auto (this machine), x86-avx2, x86-avx512 "
        "(no VNNI: 7-bit weights, u8s8 kernels saturate), x86-vnni, arm64",
    )

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        return RUNNERS.check(name)

    @property
    def num_threads(self) -> int:
        from compress.cores import available_cores

        return self.threads or available_cores().count

    def deploy_cpu(self) -> DeployCpu:
        """The deployment CPU (`cpu`, auto resolved to this machine) and this host's kind."""
        return resolve_cpu(self.cpu)


@dataclass(frozen=True)
class ModelSource:
    """A model as the runners see it. ONNX targets need `onnx`; PyTorch targets need `module`
    (a function building the eval-mode module, so that only targets that use it pay for it)."""

    label: str
    onnx: Path | None = None
    module: Callable[[], Any] | None = None

    @classmethod
    def of(cls, model: str | Path | ModelSource) -> ModelSource:
        return model if isinstance(model, ModelSource) else cls(label=Path(model).name, onnx=Path(model))


class Loaded:
    """A model loaded on a target. Subclasses set `predict_fn` and override `prepare` where the timed
    call differs from a full numpy round trip (GPU targets keep data on the device)."""

    clock: Clock = staticmethod(wall_clock)

    def __init__(self, predict_fn: Callable[[np.ndarray], np.ndarray]) -> None:
        self.predict_fn = predict_fn

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.predict_fn(np.ascontiguousarray(x, dtype=np.float32))

    def prepare(self, x: np.ndarray) -> Callable[[], Any]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        return lambda: self.predict_fn(x)

    def reset_device_peak(self) -> None:
        """Start a new peak-memory window on the device (GPU targets)."""

    def device_peak_bytes(self) -> int | None:
        """Peak device memory allocated since `reset_device_peak`, where the runtime reports it."""
        return None


class Runner(Protocol):
    target: str

    def __init__(self, spec: TargetSpec) -> None: ...

    @classmethod
    def check(cls) -> None:
        """Raise `TargetError` (what to install) when the target cannot run on this machine."""

    def load(self, model: str | Path | ModelSource) -> Loaded: ...

    def describe(self) -> dict[str, Any]: ...


class Sessions:
    """Loads of one model on one runner. With `fresh`, every `next()` loads it anew: on small models two
    loads of the same file can differ by 10-40% in speed (memory placement, thread-pool state), so
    timing rounds spread over several loads measure the model, not one lucky or unlucky load. Runners
    whose load is costly (`torch.compile` recompiles) set `reload_ok = False` and keep one."""

    def __init__(self, runner: Runner, model: str | Path | ModelSource, *, fresh: bool = True) -> None:
        self.runner, self.source = runner, ModelSource.of(model)
        self.fresh = fresh and getattr(runner, "reload_ok", True)
        self.current: Loaded | None = None
        self.loads = 0

    def next(self) -> Loaded:
        if self.current is None or self.fresh:
            self.current = None  # let the previous load go before making the next one
            self.current = self.runner.load(self.source)
            self.loads += 1
        return self.current

    def loaded(self) -> Loaded:
        """The current load (the last one timed), loading only if there is none yet."""
        return self.current if self.current is not None else self.next()


def make_runner(target: TargetSpec | str, threads: int | None = None) -> Runner:
    """A runner for `target` (a spec, or a name plus thread count); `TargetError` if it cannot run here."""
    spec = target if isinstance(target, TargetSpec) else TargetSpec(name=target, threads=threads)
    cls = RUNNERS.get(spec.name)
    cls.check()
    return cls(spec)


def target_available(name: str) -> bool:
    try:
        RUNNERS.get(name).check()
    except TargetError:
        return False
    return True


def available_targets() -> list[str]:
    return [name for name in RUNNERS if target_available(name)]


def need_onnx(target: str, source: ModelSource) -> Path:
    if source.onnx is None:
        raise TargetError(f"target {target!r} runs ONNX files and {source.label!r} has none", fix="export the model to ONNX first")
    return source.onnx


def need_module(target: str, source: ModelSource) -> Callable[[], Any]:
    if source.module is None:
        raise TargetError(
            f"target {target!r} times a PyTorch module and {source.label!r} is ONNX only",
            fix="give a .pt2 file (torch.export.save) or pick an ONNX target such as ort-cpu",
        )
    return source.module


# importing the runtime files registers their targets
from compress.bench.runners import openvino, ort, pytorch  # noqa: E402, F401
