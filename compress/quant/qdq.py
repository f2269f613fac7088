"""Graph surgery on QDQ ONNX models exported from fake-quantized PyTorch (ours, or neural-compressor's
PT2E): store weights as int8 initializers and biases as int32 (each behind a DequantizeLinear), as
ONNX Runtime's own quantizer writes them.

A QuantizeLinear applied to a constant weight is computed once here, so the file holds one byte per
weight instead of four, and ONNX Runtime sees the DQ -> Conv <- DQ pattern it fuses into QLinearConv.
A float bias next to quantized inputs would stop that fusion, so it becomes int32 with scale
s_input * s_weight (per channel), zero point 0."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["fold_quantized_weights"]


def fold_quantized_weights(model: Any) -> None:
    """Rewrite `model` (an onnx.ModelProto) in place: constant Q nodes become int8 initializers, float
    biases of Conv/Gemm nodes with quantized inputs become int32 behind a DequantizeLinear."""
    graph = model.graph
    consts = _constants(graph)
    _fold_constant_quantizers(graph, consts)
    _fold_constant_clips(graph, consts)
    _quantize_biases(graph, consts)
    _drop_unused(graph)


def _constants(graph) -> dict[str, np.ndarray]:
    """Values known before run time: initializers, Constant nodes, and Casts of either."""
    from onnx import numpy_helper

    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif node.op_type == "Identity" and node.input[0] in consts:
            consts[node.output[0]] = consts[node.input[0]]
        elif node.op_type == "Cast" and node.input[0] in consts:
            from onnx import helper

            to = next(a.i for a in node.attribute if a.name == "to")
            consts[node.output[0]] = consts[node.input[0]].astype(helper.tensor_dtype_to_np_dtype(to))
    return consts


def _axis(node, default: int = 1) -> int:
    return next((a.i for a in node.attribute if a.name == "axis"), default)


def _quantize(w: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int) -> np.ndarray:
    if scale.ndim == 1 and w.ndim > 1:
        shape = [1] * w.ndim
        shape[axis] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    info = np.iinfo(zero_point.dtype)
    q = np.rint(w.astype(np.float32) / scale.astype(np.float32)) + zero_point.astype(np.int32)  # rint: half to even, as ONNX
    return np.clip(q, info.min, info.max).astype(zero_point.dtype)


def _fold_constant_clips(graph, consts: dict[str, np.ndarray]) -> None:
    """Clip of constants becomes an initializer (the dynamo exporter clips each quantized weight: Q -> Clip -> DQ)."""
    from onnx import numpy_helper

    for node in list(graph.node):
        if node.op_type != "Clip" or not all(i in consts for i in node.input if i):
            continue
        bounds = [consts[i] if i else None for i in node.input[1:3]]
        value = np.clip(consts[node.input[0]], *(bounds + [None] * (2 - len(bounds))))
        value = value.astype(consts[node.input[0]].dtype)
        graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
        consts[node.output[0]] = value
        graph.node.remove(node)


def _fold_constant_quantizers(graph, consts: dict[str, np.ndarray]) -> None:
    from onnx import numpy_helper

    for node in list(graph.node):
        if node.op_type != "QuantizeLinear" or not all(i in consts for i in node.input):
            continue
        w, scale, zero_point = (consts[i] for i in node.input)
        if not np.issubdtype(w.dtype, np.floating) or w.ndim < 2:
            continue  # only weight tensors; a quantized scalar input stays as exported
        q = _quantize(w, scale, zero_point, _axis(node))
        graph.initializer.append(numpy_helper.from_array(q, node.output[0]))
        consts[node.output[0]] = q
        graph.node.remove(node)


def _dq_scale(graph, name: str, consts: dict[str, np.ndarray]) -> np.ndarray | None:
    """The scale of the DequantizeLinear that produces `name`, if it is one with a constant scale."""
    producer = next((n for n in graph.node if name in n.output), None)
    if producer is None or producer.op_type != "DequantizeLinear" or producer.input[1] not in consts:
        return None
    return consts[producer.input[1]].astype(np.float32)


def _quantize_biases(graph, consts: dict[str, np.ndarray]) -> None:
    from onnx import helper, numpy_helper

    for node in list(graph.node):
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 3 or node.input[2] not in consts:
            continue
        s_x, s_w = _dq_scale(graph, node.input[0], consts), _dq_scale(graph, node.input[1], consts)
        bias = consts[node.input[2]]
        if s_x is None or s_w is None or s_x.size != 1 or bias.dtype != np.float32:
            continue
        scale = (s_x.reshape(()) * s_w).astype(np.float32).reshape(-1)
        if scale.size == 1 and bias.size > 1:
            scale = np.full(bias.shape, scale[0], dtype=np.float32)
        q = np.clip(np.rint(bias / scale), np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
        base = node.input[2]
        graph.initializer.extend(
            [
                numpy_helper.from_array(q, f"{base}_quantized"),
                numpy_helper.from_array(scale, f"{base}_quantized_scale"),
                numpy_helper.from_array(np.zeros_like(q), f"{base}_quantized_zero_point"),
            ]
        )
        dq = helper.make_node(
            "DequantizeLinear",
            [f"{base}_quantized", f"{base}_quantized_scale", f"{base}_quantized_zero_point"],
            [f"{base}_dequantized"],
            name=f"{base}_DequantizeLinear",
            axis=0,
        )
        graph.node.insert(list(graph.node).index(node), dq)
        node.input[2] = f"{base}_dequantized"


def _drop_unused(graph) -> None:
    """Remove initializers and Constant/Cast nodes nothing reads any more."""
    while True:
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if n.op_type in ("Constant", "Cast", "Identity") and not set(n.output) & used]
        for node in dead:
            graph.node.remove(node)
        unused = [init for init in graph.initializer if init.name not in used]
        for init in unused:
            graph.initializer.remove(init)
        if not dead and not unused:
            return
