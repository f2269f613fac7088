"""ONNX Runtime targets: CPU, CUDA and TensorRT execution providers. Everything onnxruntime-specific
for loading, timing and profiling lives here."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from compress.bench.runners import RUNNERS, Loaded, ModelSource, TargetSpec, need_onnx
from compress.errors import ArtifactError, TargetError, first_line

__all__ = ["OrtCpuRunner", "OrtCudaRunner", "OrtTensorrtRunner"]

_LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC", "disabled": "ORT_DISABLE_ALL"}


class _OrtLoaded(Loaded):
    def __init__(self, session, device: str) -> None:
        self.session = session
        self.device = device
        self.input_name = session.get_inputs()[0].name
        super().__init__(lambda x: session.run(None, {self.input_name: x})[0])

    def prepare(self, x: np.ndarray) -> Callable[[], Any]:
        if self.device == "cpu":
            return super().prepare(x)
        import onnxruntime as ort

        binding = self.session.io_binding()
        value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(x, dtype=np.float32), "cuda", 0)
        binding.bind_ortvalue_input(self.input_name, value)
        for output in self.session.get_outputs():
            binding.bind_output(output.name, "cuda")

        def call() -> None:
            self.session.run_with_iobinding(binding)
            binding.synchronize_outputs()

        return call


class OrtCpuRunner:
    """ONNX Runtime on the CPU execution provider, a fixed intra-op thread count."""

    target = "ort-cpu"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    device = "cpu"
    install = "pip install onnxruntime"

    def __init__(self, spec: TargetSpec | int) -> None:
        self.spec = spec if isinstance(spec, TargetSpec) else TargetSpec(name=self.target, threads=spec)
        self.threads = self.spec.num_threads

    @classmethod
    def check(cls) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise TargetError(f"target {cls.target!r} needs onnxruntime", fix=cls.install) from None
        missing = [p for p in cls.providers if p not in ort.get_available_providers()]
        if missing:
            raise TargetError(f"target {cls.target!r} needs ONNX Runtime's {missing[0]}, which this onnxruntime lacks", fix=cls.install)

    def options(self, **extra: Any):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[self.spec.optimization])
        options.log_severity_level = 4  # fatal only: its errors come back as exceptions, reported in one line
        for key, value in extra.items():
            setattr(options, key, value)
        return options

    def session(self, onnx_path: str | Path, **options: Any):
        import onnxruntime as ort

        try:
            return ort.InferenceSession(str(onnx_path), self.options(**options), providers=list(self.providers))
        except Exception as err:  # ORT raises its own exception types per failure
            raise ArtifactError(f"onnxruntime cannot load {onnx_path}: {first_line(err)}") from None

    def load(self, model: str | Path | ModelSource) -> Loaded:
        source = ModelSource.of(model)
        return _OrtLoaded(self.session(need_onnx(self.target, source)), self.device)

    def profile(self, onnx_path: str | Path, x: np.ndarray, iters: int = 20) -> list[dict[str, Any]]:
        """Per-node run time (ms, summed over `iters` calls) from ONNX Runtime's profiler, on the
        graph as optimised for this target (fused nodes appear under their fused names)."""
        with tempfile.TemporaryDirectory() as tmp:
            session = self.session(onnx_path, enable_profiling=True, profile_file_prefix=str(Path(tmp) / "profile"))
            feed = {session.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)}
            for _ in range(iters):
                session.run(None, feed)
            events = json.loads(Path(session.end_profiling()).read_text())
        totals: dict[str, dict[str, Any]] = {}
        for e in events:
            if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
                name = e["name"].removesuffix("_kernel_time")
                entry = totals.setdefault(name, {"node": name, "op": e.get("args", {}).get("op_name", "?"), "ms": 0.0})
                entry["ms"] += e["dur"] / 1000.0
        return list(totals.values())

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {
            "target": self.target,
            "runtime": f"onnxruntime {ort.__version__}",
            "provider": self.providers[0],
            "threads": self.threads,
            "optimization": self.spec.optimization,
            "io_binding": self.device != "cpu" and self.spec.io_binding,
        }


@RUNNERS.register("ort-cuda")
class OrtCudaRunner(OrtCpuRunner):
    """ONNX Runtime on an NVIDIA GPU (CUDA execution provider), inputs and outputs bound on the device."""

    target = "ort-cuda"
    providers = ("CUDAExecutionProvider", "CPUExecutionProvider")
    device = "cuda"
    install = "pip install 'edge-compress[gpu]' (onnxruntime-gpu, with a CUDA driver)"

    def load(self, model: str | Path | ModelSource) -> Loaded:
        loaded = super().load(model)
        loaded.device = self.device if self.spec.io_binding else "cpu"
        return loaded


@RUNNERS.register("ort-tensorrt")
class OrtTensorrtRunner(OrtCudaRunner):
    """ONNX Runtime with TensorRT (falls back to CUDA for unsupported nodes)."""

    target = "ort-tensorrt"
    providers = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    install = "pip install 'edge-compress[gpu]' and TensorRT libraries on the library path"


RUNNERS.register("ort-cpu")(OrtCpuRunner)
