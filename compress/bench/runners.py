"""Runners: load an ONNX file on a target and return a `predict(numpy batch) -> numpy` callable.
Everything onnxruntime-specific lives here. More targets (CUDA, OpenVINO, torch) register beside it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from compress.errors import ArtifactError
from compress.registry import Registry

__all__ = ["Runner", "RUNNERS", "OrtCpuRunner", "make_runner"]

Predict = Callable[[np.ndarray], np.ndarray]


class Runner(Protocol):
    target: str

    def load(self, onnx_path: str | Path) -> Predict: ...

    def describe(self) -> dict[str, Any]: ...


RUNNERS: Registry[type] = Registry("benchmark target")


@RUNNERS.register("ort-cpu")
class OrtCpuRunner:
    """ONNX Runtime, CPU execution provider, all graph optimisations, a fixed intra-op thread count."""

    target = "ort-cpu"

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def session(self, onnx_path: str | Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # ORT raises its own exception types per failure
            raise ArtifactError(f"onnxruntime cannot load {onnx_path}: {str(err).splitlines()[0]}") from None

    def load(self, onnx_path: str | Path) -> Predict:
        session = self.session(onnx_path)
        input_name = session.get_inputs()[0].name

        def predict(x: np.ndarray) -> np.ndarray:
            return session.run(None, {input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

        return predict

    def profile(self, onnx_path: str | Path, x: np.ndarray, iters: int = 20) -> list[dict[str, Any]]:
        """Per-node run time (ms, summed over `iters` calls) from ONNX Runtime's profiler, on the
        graph as optimised for this target (fused nodes appear under their fused names)."""
        import json
        import tempfile

        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        with tempfile.TemporaryDirectory() as tmp:
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tmp) / "profile")
            session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
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
            "provider": "CPUExecutionProvider",
            "threads": self.threads,
        }


def make_runner(target: str, threads: int) -> Runner:
    return RUNNERS.get(target)(threads)
