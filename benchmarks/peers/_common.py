"""What every peer driver shares: the same three arguments (FP32 ONNX in, calibration .npy, INT8 ONNX out)
and one JSON line on stdout at the end, which benchmarks/peers.py reads. Standard library and numpy only:
each driver runs in its tool's own virtual environment."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np


def parse(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("fp32", type=Path, help="the FP32 ONNX file")
    parser.add_argument("calibration", type=Path, help="calibration inputs, .npy of shape (N, *input shape), float32")
    parser.add_argument("out", type=Path, help="where the INT8 ONNX file goes")
    if extra:
        extra(parser)
    return parser.parse_args()


def load_calibration(path: Path) -> np.ndarray:
    return np.ascontiguousarray(np.load(path), dtype=np.float32)


def input_name(model_path: Path) -> str:
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    return next(i.name for i in graph.input if i.name not in weights)


def run(tool: str, packages: list[str], work: Callable[[], dict[str, Any]]) -> None:
    """Time `work` (which writes the INT8 file and returns its settings) and print the JSON line."""
    start = time.perf_counter()
    settings = work()
    seconds = time.perf_counter() - start
    versions = {p: version(p) for p in packages}
    print(json.dumps({"tool": tool, "versions": versions, "settings": settings, "seconds": round(seconds, 2)}))
