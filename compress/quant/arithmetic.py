"""The arithmetic an INT8 ONNX file asks for, apart from the kernels that compute it.

- `exact_model`: the same file, made to compute its integer arithmetic exactly. A QDQ file run with
  graph optimizations disabled dequantizes, computes in float and quantizes again: no integer kernel,
  nothing saturates. Integer operators that run as such even then (MatMulInteger, ConvInteger, which
  dynamic quantization writes) become the same products in float. The gap between this and the
  host's optimized session is what the host's kernels change (saturation on x86 without VNNI).
- `weight_range`: the integer weights the file's matrix products read, and whether they are small
  enough (|w| <= 64, or unsigned) that no 16-bit pair sum saturates on any CPU.
- `restrict_weights`: rescale int8 weights (and the int32 biases that go with them) to |w| <= 64, for
  QDQ files written by other tools (neural-compressor) that a saturating target will run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from compress.quant.formats import SAFE_INT8_WEIGHT

__all__ = ["WeightRange", "exact_model", "weight_range", "restrict_weights", "INTEGER_PRODUCTS"]

INTEGER_PRODUCTS = ("MatMulInteger", "ConvInteger")
_WEIGHTED = ("Conv", "Gemm", "MatMul", *INTEGER_PRODUCTS)
_UNREWRITABLE = ("QLinearConv", "QLinearMatMul", "QGemm", "DynamicQuantizeLSTM", "QAttention", "DynamicQuantizeMatMul")


@dataclass(frozen=True)
class WeightRange:
    dtypes: tuple[str, ...]
    max_abs: int
    layers: int

    @property
    def saturation_safe(self) -> bool:
        return self.max_abs <= SAFE_INT8_WEIGHT  # uint8 weights (u8u8 kernels) never saturate

    def as_dict(self) -> dict[str, Any]:
        return {"dtypes": list(self.dtypes), "max_abs": self.max_abs, "layers": self.layers, "saturation_safe": self.saturation_safe}


def _initializers(graph) -> dict[str, Any]:
    return {init.name: init for init in graph.initializer}


def _weight_tensors(graph) -> list[tuple[Any, str]]:
    """(node that reads an integer weight, initializer name) for each weighted operator of the graph:
    DequantizeLinear(int initializer) -> Conv/Gemm/MatMul input 1 (QDQ), or MatMulInteger/ConvInteger input 1."""
    inits = _initializers(graph)
    producers = {o: n for n in graph.node for o in n.output}
    found = []
    for node in graph.node:
        if node.op_type not in _WEIGHTED or len(node.input) < 2:
            continue
        name = node.input[1]
        if node.op_type in INTEGER_PRODUCTS and name in inits:
            found.append((node, name))
            continue
        dq = producers.get(name)
        if dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] in inits:
            found.append((dq, dq.input[0]))
    return found


def weight_range(model: Any) -> WeightRange:
    """The integer weights of `model` (an onnx.ModelProto) that feed matrix products."""
    from onnx import numpy_helper

    inits = _initializers(model.graph)
    dtypes, max_abs, layers = set(), 0, 0
    for _, name in _weight_tensors(model.graph):
        w = numpy_helper.to_array(inits[name])
        if w.dtype not in (np.int8, np.uint8):
            continue
        layers += 1
        dtypes.add(str(w.dtype))
        if w.dtype == np.int8:
            max_abs = max(max_abs, int(np.abs(w.astype(np.int32)).max(initial=0)))
    return WeightRange(tuple(sorted(dtypes)), max_abs, layers)


def exact_model(model: Any) -> tuple[Any | None, str]:
    """A copy of `model` whose integer products compute in float (run it with optimizations disabled),
    or None and the reason when the file holds integer operators with no float form here."""
    import copy

    found = sorted({n.op_type for n in model.graph.node if n.op_type in _UNREWRITABLE})
    if found:
        return None, f"{', '.join(found)} (QOperator or fused integer nodes) have no float form here"
    exact = copy.deepcopy(model)
    graph = exact.graph
    for node in [n for n in graph.node if n.op_type in INTEGER_PRODUCTS]:
        _to_float_product(graph, node)
    return exact, "QDQ computed in float with graph optimizations disabled"


def _to_float_product(graph, node) -> None:
    """Replace MatMulInteger/ConvInteger(a, b, a_zero, b_zero) -> int32 by Cast/Sub/MatMul|Conv/Cast."""
    from onnx import TensorProto, helper, numpy_helper

    inits = _initializers(graph)
    index = list(graph.node).index(node)
    new, tag = [], node.name or node.output[0]
    operands = []
    for i in (0, 1):
        x, zp = node.input[i], node.input[i + 2] if len(node.input) > i + 2 else ""
        if i == 1 and x in inits and (not zp or zp in inits):
            w = numpy_helper.to_array(inits[x]).astype(np.float32)
            if zp:
                z = numpy_helper.to_array(inits[zp]).astype(np.float32)
                w = w - (z.reshape(-1, *[1] * (w.ndim - 1)) if node.op_type == "ConvInteger" and z.ndim == 1 else z)
            graph.initializer.append(numpy_helper.from_array(w, f"{tag}_exact_w"))
            operands.append(f"{tag}_exact_w")
            continue
        new.append(helper.make_node("Cast", [x], [f"{tag}_exact_{i}"], to=TensorProto.FLOAT))
        operands.append(f"{tag}_exact_{i}")
        if zp:
            new.append(helper.make_node("Cast", [zp], [f"{tag}_exact_zp{i}"], to=TensorProto.FLOAT))
            new.append(helper.make_node("Sub", [operands[-1], f"{tag}_exact_zp{i}"], [f"{tag}_exact_c{i}"]))
            operands[-1] = f"{tag}_exact_c{i}"
    op = "MatMul" if node.op_type == "MatMulInteger" else "Conv"
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    new.append(helper.make_node(op, operands, [f"{tag}_exact_y"], **attrs))
    new.append(helper.make_node("Cast", [f"{tag}_exact_y"], list(node.output), to=TensorProto.INT32))
    graph.node.remove(node)
    for offset, n in enumerate(new):
        graph.node.insert(index + offset, n)


def restrict_weights(model: Any, limit: int = SAFE_INT8_WEIGHT) -> int:
    """Rescale, in place, every per-channel (or per-tensor) group of int8 QDQ weights whose largest
    |value| exceeds `limit`, and the int32 bias behind a DequantizeLinear of each layer that reads it, so
    the layer computes the same function at 7 bits. Returns how many weight tensors changed."""
    from onnx import numpy_helper

    graph = model.graph
    inits = _initializers(graph)
    producers = {o: n for n in graph.node for o in n.output}
    changed = 0
    for dq, name in _weight_tensors(graph):
        if dq.op_type != "DequantizeLinear" or len(dq.input) < 2 or dq.input[1] not in inits:
            continue
        q = numpy_helper.to_array(inits[name])
        zero = numpy_helper.to_array(inits[dq.input[2]]) if len(dq.input) > 2 and dq.input[2] in inits else np.zeros(1, np.int8)
        if q.dtype != np.int8 or np.any(zero != 0):
            continue
        scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float32)
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1) % q.ndim if scale.size > 1 else None
        reduce = tuple(d for d in range(q.ndim) if d != axis)
        peak = np.abs(q.astype(np.int32)).max(axis=reduce) if axis is not None else np.abs(q.astype(np.int32)).max()
        factor = np.maximum(np.asarray(peak, np.float32) / limit, 1.0)
        if np.all(factor == 1.0):
            continue
        shape = [1] * q.ndim
        if axis is not None:
            shape[axis] = -1
        new_q = np.clip(np.rint(q / factor.reshape(shape)), -limit, limit).astype(np.int8)
        _replace(inits, name, new_q)
        _replace(inits, dq.input[1], (scale * factor.reshape(scale.shape)).astype(np.float32))
        for consumer in (n for n in graph.node if dq.output[0] in n.input and n.op_type in ("Conv", "Gemm") and len(n.input) > 2):
            _rescale_bias(inits, producers.get(consumer.input[2]), factor)
        changed += 1
    return changed


def _rescale_bias(inits: dict[str, Any], dq, factor: np.ndarray) -> None:
    """The int32 bias of a layer whose weight scales grew by `factor`: scale x factor, values / factor."""
    from onnx import helper, numpy_helper

    if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits or dq.input[1] not in inits:
        return
    q = numpy_helper.to_array(inits[dq.input[0]])
    if q.dtype != np.int32 or q.ndim != 1:
        return
    scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float64)
    per = np.broadcast_to(factor.astype(np.float64), q.shape)
    _replace(inits, dq.input[0], np.rint(q / per).astype(np.int32))
    _replace(inits, dq.input[1], (np.broadcast_to(scale.reshape(-1), q.shape) * per).astype(np.float32))
    if scale.size == 1 and q.size > 1:  # the scale became per channel
        del dq.attribute[:]
        dq.attribute.append(helper.make_attribute("axis", 0))


def _replace(inits: dict[str, Any], name: str, value: np.ndarray) -> None:
    from onnx import numpy_helper

    inits[name].CopyFrom(numpy_helper.from_array(value, name))
