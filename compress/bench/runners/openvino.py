"""OpenVINO on the CPU. Everything openvino-specific lives here. The inference precision hint is set
explicitly (f32 by default: OpenVINO would otherwise run FP32 models in bf16 on CPUs that have it)
and read back from the compiled model, so what was measured is what is recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from compress.bench.runners import RUNNERS, Loaded, ModelSource, TargetSpec, need_onnx
from compress.errors import ArtifactError, TargetError, first_line

__all__ = ["OpenvinoCpuRunner"]


@RUNNERS.register("openvino-cpu")
class OpenvinoCpuRunner:
    """OpenVINO runtime, CPU device, latency mode, a fixed thread count and precision hint."""

    target = "openvino-cpu"

    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec
        self.threads = spec.num_threads
        self._compiled_precision: str | None = None

    @classmethod
    def check(cls) -> None:
        try:
            import openvino  # noqa: F401
        except ImportError:
            raise TargetError(f"target {cls.target!r} needs OpenVINO", fix="pip install 'edge-compress[openvino]'") from None

    def load(self, model: str | Path | ModelSource) -> Loaded:
        import openvino as ov

        path = need_onnx(self.target, ModelSource.of(model))
        config = {
            "INFERENCE_PRECISION_HINT": self.spec.precision,
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        try:
            compiled = ov.Core().compile_model(str(path), "CPU", config)
        except Exception as err:  # OpenVINO raises RuntimeError subclasses with multi-line text
            raise ArtifactError(f"OpenVINO cannot compile {path}: {first_line(err)}") from None
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        self._compiled_precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        request = compiled.create_infer_request()
        output = compiled.output(0)

        def predict(x: np.ndarray) -> np.ndarray:
            return np.array(request.infer({0: x})[output])

        return Loaded(predict)

    def describe(self) -> dict[str, Any]:
        import openvino as ov

        return {
            "target": self.target,
            "runtime": f"openvino {ov.__version__.split('-')[0]}",
            "provider": "CPU",
            "threads": self.threads,
            "precision_hint": self._compiled_precision or self.spec.precision,
        }
