"""Measuring every file of one model the same way, in one process: ONNX Runtime CPU (1 intra-op thread by
default, ORT_ENABLE_ALL), test accuracy, top-1 agreement with the FP32 file, latency at each batch size
timed interleaved across all files (each round times every file once, on a fresh session, in alternating
order; a file's p50 is the median over rounds of its per-round p50), what ORT runs in integer and in float
after optimising the file, and the INT8 format read from the file itself."""

from __future__ import annotations

import statistics
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from compress.bench import TimingConfig, measure

TIMING = TimingConfig(warmup=10, warmup_time_s=0.02, rounds=1, min_iters=30, min_time_s=0.12, max_iters=5000)
# operators that only move data (ORT's blocked-layout converters among them): neither integer nor float compute
_MOVES = {"Reshape", "Flatten", "Transpose", "Shape", "Gather", "Concat", "Unsqueeze", "Squeeze", "Identity", "Cast", "Slice"}
_MOVES |= {"ReorderInput", "ReorderOutput"}
_INTEGER = {"QuantizeLinear", "DequantizeLinear", "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "NhwcMaxPool"}
_QOPERATOR = ("QLinear", "ConvInteger", "MatMulInteger", "QGemm")


def size_bytes(path: Path) -> int:
    """The file and its external-data file, if it has one (torch.onnx's dynamo exporter may write one)."""
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + ".data")) if p.exists())


def int8_format(path: Path) -> dict[str, Any]:
    """The format as written in the file: QDQ or QOperator, activation and weight types, per-channel
    weights, and 7-bit weights (every int8 weight within [-64, 64], what reduce_range writes)."""
    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    ops = Counter(n.op_type for n in graph.node)
    consts = _constants(graph, inits)
    act, wts, per_channel, biggest = set(), set(), False, 0
    for node in graph.node:
        zero_dtype = str(consts[node.input[2]].dtype) if len(node.input) > 2 and node.input[2] in consts else "uint8"
        if node.op_type == "QuantizeLinear" and node.input[0] not in consts:
            act.add(zero_dtype)
        if node.op_type == "QuantizeLinear" and node.input[0] in consts:  # float weights quantized in the graph (PT2E)
            wts.add(zero_dtype)
            per_channel |= consts.get(node.input[1], np.zeros(1)).size > 1
            biggest = max(biggest, _largest_level(consts, node))
        if node.op_type == "DequantizeLinear" and node.input[0] in consts:
            w = consts[node.input[0]]
            if w.dtype in (np.int8, np.uint8) and w.ndim > 1:
                wts.add(str(w.dtype))
                per_channel |= consts.get(node.input[1], np.zeros(1)).size > 1
                biggest = max(biggest, int(np.abs(w.astype(np.int32) - _zero(consts, node)).max()))
    qop = any(op.startswith(_QOPERATOR) for op in ops)
    style = "QOperator" if qop else "QDQ" if ops["QuantizeLinear"] or ops["DequantizeLinear"] else "float"
    a, w = ("+".join(_short(t) for t in sorted(kinds, reverse=True)) or "?" for kinds in (act, wts))
    label = f"{a}{w}" if len(act) < 2 else f"{a} activations, {w} weights"
    seven = bool(wts) and biggest <= 64
    desc = f"{style} {label}, {'per-channel' if per_channel else 'per-tensor'}" + (", 7-bit weights" if seven else "")
    return {
        "style": style,
        "activations": sorted(act),
        "weights": sorted(wts),
        "per_channel": per_channel,
        "max_abs_weight": biggest,
        "label": desc,
    }


def _constants(graph, inits: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Initializers plus Constant node outputs (the dynamo exporter writes weights both ways)."""
    consts = dict(inits)
    for node in graph.node:
        if node.op_type == "Constant":
            value = next((a for a in node.attribute if a.name == "value"), None)
            if value is not None:
                consts[node.output[0]] = numpy_helper.to_array(value.t)
    return consts


def _zero(consts: dict[str, np.ndarray], node) -> np.ndarray | int:
    if len(node.input) < 3 or node.input[2] not in consts:
        return 0
    zp, w = consts[node.input[2]].astype(np.int32), consts[node.input[0]]
    return zp.reshape(-1, *([1] * (w.ndim - 1))) if zp.size > 1 else int(zp.reshape(-1)[0])


def _largest_level(consts: dict[str, np.ndarray], node) -> int:
    """The largest |q - zero point| a QuantizeLinear of a float weight produces (7-bit weights stay <= 64)."""
    w, scale = consts[node.input[0]], consts.get(node.input[1])
    if scale is None:
        return 128
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    shape = [1] * w.ndim
    if scale.size > 1:
        shape[axis] = -1
    return int(np.abs(np.round(w / scale.reshape(shape))).max())


def _short(dtype: str) -> str:
    return {"uint8": "u8", "int8": "s8"}.get(dtype, dtype)


def census(path: Path, threads: int, config: dict[str, str] | None = None) -> dict[str, Any]:
    """Operators ORT runs after optimising the file (with session `config` entries): integer kernels,
    Quantize/DequantizeLinear, and operators left in float (layout-only operators aside)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.log_severity_level = threads, 4
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        for key, value in (config or {}).items():
            options.add_session_config_entry(key, value)
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(options.optimized_model_filepath, load_external_data=False)  # op types only
        ops = Counter(n.op_type for n in optimized.graph.node)
    qdq = {op: ops[op] for op in ("QuantizeLinear", "DequantizeLinear") if ops[op]}
    integer = {op: n for op, n in ops.items() if is_integer(op) and op not in qdq}
    floating = {op: n for op, n in ops.items() if not is_integer(op) and op not in _MOVES}
    return {"integer_kernels": integer, "quantize_dequantize": qdq, "float_ops": floating}


def is_integer(op: str) -> bool:
    """An ONNX Runtime kernel on integer data (as compress.quant.ort counts them)."""
    return op.startswith(("QLinear", "QGemm", "QAttention", "DynamicQuantize")) or op in _INTEGER


Source = tuple[Path, dict[str, str]]
"""A file and the session config entries it runs with (empty: ORT's defaults)."""


def load(source: Source, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """A fresh ORT CPU session: `threads` intra-op threads, ORT_ENABLE_ALL, the source's config entries."""
    import onnxruntime as ort

    path, config = source
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 4
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    for key, value in config.items():
        options.add_session_config_entry(key, value)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def scores(files: dict[str, Source], x: np.ndarray, labels: np.ndarray, threads: int, reference: str) -> dict[str, dict[str, float]]:
    """Test accuracy of each file and its top-1 agreement with `reference`, through ORT on this CPU."""
    preds = {}
    for name, source in files.items():
        predict = load(source, threads)
        preds[name] = np.concatenate([np.asarray(predict(x[i : i + 256])).argmax(1) for i in range(0, len(x), 256)])
    return {n: {"accuracy": float(np.mean(p == labels)), "agreement": float(np.mean(p == preds[reference]))} for n, p in preds.items()}


def interleaved(files: dict[str, Source], x: np.ndarray, *, reference: str, rounds: int, threads: int) -> dict[str, dict[str, float]]:
    """Per file: p50 (median over rounds), the rounds' p25-p75 of p50, and the speedup over `reference`
    (median over rounds of reference p50 / file p50, and its p25-p75)."""
    names = list(files)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            predict = load(files[name], threads)  # a fresh session each round: loads of one file differ in speed
            times[name].append(measure(lambda p=predict: p(x), TIMING)["p50"])
    base = np.asarray(times[reference])
    out = {}
    for name, t in times.items():
        ratio = base / np.asarray(t)
        out[name] = {
            "p50_ms": statistics.median(t),
            "p25_ms": float(np.percentile(t, 25)),
            "p75_ms": float(np.percentile(t, 75)),
            "speedup": float(np.median(ratio)),
            "speedup_p25": float(np.percentile(ratio, 25)),
            "speedup_p75": float(np.percentile(ratio, 75)),
            "rounds_ms": [round(v, 5) for v in t],
        }
    return out
