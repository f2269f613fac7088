"""Everything onnxruntime.quantization-specific: static (calibrated) and dynamic INT8 quantization of an
ONNX file in a given `Int8Format` (see `formats`: chosen per deployment CPU), and the list of operators
ONNX Runtime still runs in float after optimising the result.

QDQ format, uint8 activations: with signed activations (ORT's default), our tests left the convolutions
at residual joins in float and gave no speedup; with uint8 activations ORT fuses them into
QLinearConv/QLinearAdd. Weights are int8 (7-bit with `reduce_range`) or uint8 as the format says."""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from compress.errors import RecipeError
from compress.fsio import atomic_path
from compress.quant.formats import Int8Format
from compress.registry import did_you_mean

__all__ = ["quantize_onnx", "float_ops", "dynamic_op_types", "CALIBRATION_METHODS"]

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# operators that only move or reshape data: in float or not, they are not where the time goes
_LAYOUT = {"Reshape", "Flatten", "Transpose", "Shape", "Gather", "Concat", "Unsqueeze", "Squeeze", "Identity", "Cast", "Slice"}


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a numpy array, in batches."""

    def __init__(self, input_name: str, samples: np.ndarray, batch_size: int = 32) -> None:
        self.batches: Iterator[dict[str, np.ndarray]] = (
            {input_name: np.ascontiguousarray(samples[i : i + batch_size], dtype=np.float32)} for i in range(0, len(samples), batch_size)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)


def _check_names(model_path: Path, nodes: list[str], op_types: list[str]) -> None:
    import onnx

    graph = onnx.load(str(model_path)).graph
    known_nodes, known_ops = [n.name for n in graph.node], sorted({n.op_type for n in graph.node})
    for name, known, what in [(n, known_nodes, "node") for n in nodes] + [(o, known_ops, "op type") for o in op_types]:
        if name not in known:
            shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            raise RecipeError(f"quantize: unknown {what} {name!r} in {model_path.name}; {did_you_mean(name, known)}known: {shown}")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization prints progress (histogram bins, shape inference) to stdout and the root
    logger; our stage prints its own one-line summary."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # also its per-channel warnings about 1-D (LayerNorm) weights
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def _at_least_opset_13(path: Path) -> None:
    """Per-channel QDQ (DequantizeLinear's `axis`) needs opset 13: older files (exported years ago, as many
    downloaded ones are) are converted first, in place; onnx's converter keeps their arithmetic."""
    import onnx
    from onnx import version_converter

    model = onnx.load(str(path))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    if opset < 13:
        onnx.save(version_converter.convert_version(model, 13), str(path))


def quantize_onnx(
    source: Path,
    dest: Path,
    *,
    mode: str,
    calibration: np.ndarray | None,
    fmt: Int8Format,
    method: str = "minmax",
    exclude_nodes: list[str] | None = None,
    exclude_op_types: list[str] | None = None,
) -> None:
    """Write an INT8 version of `source` to `dest` (atomically). `mode`: static (needs `calibration`
    inputs) or dynamic (weights quantized, uint8 activations quantized at run time); `fmt` sets the
    weight type, 7-bit weights and per-channel (and, static, the activation type)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_dynamic, quantize_static

    exclude_nodes, exclude_op_types = list(exclude_nodes or []), list(exclude_op_types or [])
    _check_names(source, exclude_nodes, exclude_op_types)
    with tempfile.TemporaryDirectory() as tmp, atomic_path(dest) as out, _quiet():
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=False)
        except Exception:  # symbolic shape inference gives up on some graphs (attention reshapes): use ONNX's own
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        import onnx

        _at_least_opset_13(prepared)
        graph = onnx.load(str(prepared)).graph
        op_types = sorted({n.op_type for n in graph.node} - set(exclude_op_types))
        types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
        if mode == "dynamic":
            quantize_dynamic(
                str(prepared),
                str(out),
                per_channel=fmt.per_channel,
                reduce_range=fmt.reduce_range,
                weight_type=types[fmt.weights],
                nodes_to_exclude=exclude_nodes,
                op_types_to_quantize=op_types,
            )
            return
        if calibration is None or len(calibration) == 0:
            raise RecipeError("quantize: static quantization needs calibration samples", fix="set calibration.samples >= 1")
        methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}
        quantize_static(
            str(prepared),
            str(out),
            _Reader(graph.input[0].name, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=fmt.per_channel,
            reduce_range=fmt.reduce_range,
            activation_type=types[fmt.activations],
            weight_type=types[fmt.weights],
            nodes_to_exclude=exclude_nodes,
            op_types_to_quantize=op_types,
            calibrate_method=methods[method],
        )


def dynamic_op_types() -> list[str]:
    """The compute operator types the installed ONNX Runtime's dynamic mode quantizes (Transpose, which it
    only passes through in 8 bits, aside)."""
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    return sorted(set(IntegerOpsRegistry) - {"Transpose"})


def float_ops(model_path: Path, threads: int = 1) -> dict[str, Any]:
    """What ONNX Runtime actually runs after optimising `model_path` for the CPU: operator counts, split
    into integer kernels and compute left in float (layout-only operators aside)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(optimized)
        options.log_severity_level = 3
        ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        nodes = onnx.load(str(optimized)).graph.node
    counts = Counter(n.op_type for n in nodes)
    integer = {op: c for op, c in counts.items() if _is_integer(op)}
    floating = {op: c for op, c in counts.items() if not _is_integer(op) and op not in _LAYOUT}
    names = [n.name or n.op_type for n in nodes if not _is_integer(n.op_type) and n.op_type not in _LAYOUT]
    return {"integer_ops": integer, "float_ops": floating, "float_nodes": names}


def _is_integer(op: str) -> bool:
    return op.startswith(("QLinear", "QGemm", "QAttention", "DynamicQuantize")) or op in {
        "QuantizeLinear",
        "DequantizeLinear",
        "ConvInteger",
        "MatMulInteger",
        "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul",
    }
