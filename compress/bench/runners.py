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
