"""What every stage that writes an INT8 ONNX model does with it: onnx.checker, a run in ONNX Runtime,
agreement with the model it stands for on the test split (`label` names it in errors), and the operators ORT still runs in float."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from compress.bench.runners.ort import OrtCpuRunner
from compress.context import RunContext
from compress.errors import ArtifactError, RecipeError
from compress.stages.export import agreement

__all__ = ["check_int8", "describe_float_ops"]


def check_int8(
    ctx: RunContext, path: Path, reference: Callable[[np.ndarray], np.ndarray], *, label: str, why_float: str, fix: str
) -> dict[str, Any]:
    """Check the INT8 file at `path` (deleted again if it is unusable) and return `{vs_reference, test,
    integer_ops, float_ops, float_nodes}`. A model left entirely in float is an error (`why_float`, `fix`)."""
    import onnx

    from compress.quant import float_ops

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as err:
        path.unlink(missing_ok=True)
        raise ArtifactError(f"quantized {path.name} fails onnx.checker: {str(err).splitlines()[0]}") from None
    ops = float_ops(path, ctx.target.num_threads)
    if not set(ops["integer_ops"]) - {"QuantizeLinear", "DequantizeLinear"}:
        path.unlink()
        raise RecipeError(f"{label} would run entirely in float ({why_float})", fix=fix)
    predict = OrtCpuRunner(ctx.target.num_threads).load(path)
    x = ctx.task.example_input(len(ctx.task.test), split="test").numpy()
    close = agreement(reference(x), predict(x), classification=ctx.task.kind == "classification")
    return {"vs_reference": close, "test": ctx.task.evaluate(predict, "test"), **ops}


def describe_float_ops(ops: dict[str, Any]) -> str:
    return ", ".join(f"{op} x{c}" for op, c in ops["float_ops"].items()) or "none"
