"""edge-compress: turn a trained PyTorch model into an edge-ready ONNX student, with measurements.

    from compress import Pipeline
    from compress.stages import Train, Distill, Export, Benchmark, Report

Names are imported on first use, so `edge-compress --help` starts without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Pipeline": "compress.pipeline",
    "RunContext": "compress.context",
    "TaskSpec": "compress.data.spec",
    "TargetSpec": "compress.bench.runners",
    "ModelRecord": "compress.records",
    "Summary": "compress.records",
    "ModelSpec": "compress.models.spec",
    "TaskData": "compress.data.task",
    "Manifest": "compress.manifest",
    "CompressError": "compress.errors",
    "load_recipe": "compress.recipe",
    "STAGES": "compress.stages",
    "Stage": "compress.stages",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'compress' has no attribute {name!r}")
