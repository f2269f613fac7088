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
from compress.records import RecurrentLayer
from compress.registry import did_you_mean

__all__ = ["quantize_onnx", "float_ops", "dynamic_op_types", "recurrent_layers", "refuse_mostly_float", "RECURRENT", "CALIBRATION_METHODS"]

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
RECURRENT = ("GRU", "LSTM", "RNN")
"""Recurrent operators. Static mode never puts QDQ around them: ONNX Runtime has no QDQ kernel for any of
them (it dequantizes the int8-stored weights and runs the layer in float, no faster, less accurate) and
OpenVINO 2026.4 misreads such weights (a GRU model fell from 0.59 to 0.44 accuracy, an LSTM one to 0.10)."""
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
        prepared, source = Path(tmp) / "prepared.onnx", Path(source).resolve()
        # in the temporary folder: symbolic shape inference leaves sym_shape_infer_temp.onnx in the working directory
        with contextlib.chdir(tmp):
            try:
                quant_pre_process(str(source), str(prepared), skip_symbolic_shape=False)
            except Exception:  # symbolic shape inference gives up on some graphs (attention reshapes): use ONNX's own
                quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        import onnx

        _at_least_opset_13(prepared)
        graph = onnx.load(str(prepared)).graph
        op_types = sorted({n.op_type for n in graph.node} - set(exclude_op_types) - (set(RECURRENT) if mode == "static" else set()))
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


def recurrent_layers(
    source: Path, mode: str, *, exclude_nodes: list[str] | None = None, exclude_op_types: list[str] | None = None
) -> list[RecurrentLayer]:
    """The recurrent layers of `source`, each with its share of the weights and whether `mode` in the
    installed ONNX Runtime runs it on integer kernels (dynamic LSTM: DynamicQuantizeLSTM) or leaves it float."""
    import onnx

    graph = onnx.load(str(source)).graph
    sizes = _weight_sizes(graph)
    total = sum(sizes.values()) or 1
    kept = set(exclude_nodes or []), set(exclude_op_types or [])
    found = []
    for node in (n for n in graph.node if n.op_type in RECURRENT):
        why = _why_float(node.op_type, node.name, mode, kept)
        share = sum(sizes.get(name, 0) for name in node.input) / total
        found.append(RecurrentLayer(node=node.name or node.op_type, op=node.op_type, weight_share=share, integer=why is None, why=why))
    return found


MOSTLY_FLOAT = 0.5
"""Recurrent layers left in float that hold this share of a model's weights make its INT8 file INT8 in name only."""


def refuse_mostly_float(source: Path, name: str, mode: str, exclude_nodes: list[str], exclude_op_types: list[str]) -> list[RecurrentLayer]:
    """`recurrent_layers` of model `name`; a `RecipeError` when those `mode` leaves in float, and not
    excluded on purpose, hold most of the weights: its INT8 file would be float where the work is."""
    layers = recurrent_layers(source, mode, exclude_nodes=exclude_nodes, exclude_op_types=exclude_op_types)
    silent = [r for r in layers if not r.integer and r.node not in exclude_nodes and r.op not in exclude_op_types]
    share = sum(r.weight_share for r in silent)
    if share < MOSTLY_FLOAT:
        return layers
    ops = sorted({r.op for r in silent})
    whys = "; ".join(dict.fromkeys(r.why or "" for r in silent))
    static = "mode: static with " if mode == "dynamic" else ""  # dynamic mode has nothing else to quantize in a GRU model's Gemm head
    keep = f"or set {static}exclude_op_types: [{', '.join(ops)}] to quantize the rest and keep {'them' if len(ops) > 1 else 'it'} in float"
    dynamic = mode == "static" and set(ops) <= set(dynamic_op_types())  # LSTM: dynamic mode runs it on integer kernels
    raise RecipeError(
        f"quantize: {name!r} would stay mostly float: its {'/'.join(ops)} ({', '.join(r.node for r in silent)}) "
        f"{'hold' if len(silent) > 1 else 'holds'} {share:.0%} of the weights and {whys}",
        fix=f"use mode: dynamic, {keep}" if dynamic else f"keep {name!r} in FP32 (list the other models in quantize.models), {keep}",
    )


def _weight_sizes(graph: Any) -> dict[str, int]:
    """Elements per weight tensor: initializers, or (older exporters) Constant nodes' values."""
    import math

    constants = [(n.output[0], a.t) for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    return {t.name: math.prod(t.dims) for t in graph.initializer} | {name: math.prod(t.dims) for name, t in constants}


def _why_float(op: str, node: str, mode: str, kept: tuple[set[str], set[str]]) -> str | None:
    """Why a recurrent layer stays float in `mode`, or None when ONNX Runtime runs it on integer kernels."""
    import onnxruntime

    if node in kept[0] or op in kept[1]:
        return "kept in float by exclude_nodes / exclude_op_types"
    if mode == "dynamic" and op in dynamic_op_types():
        return None
    ort = f"ONNX Runtime {onnxruntime.__version__}"
    if op in dynamic_op_types():
        return f"{ort} runs {op} on integer kernels in dynamic mode only (DynamicQuantize{op}); static INT8 has no {op} kernel"
    return f"{ort} has no INT8 {op} kernel, static or dynamic"


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
        options.log_severity_level = 4
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
        "NhwcMaxPool",  # ORT's channels-last max pooling: int8/uint8 only
    }
