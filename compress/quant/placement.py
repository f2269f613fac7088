"""Where `prepare_qat` puts its activation quantizers: where ONNX Runtime's static quantizer (QDQ, every
op type) puts Q/DQ pairs, so that everything static PTQ runs on integer kernels the QAD file runs on
integer kernels too.

Static PTQ quantizes every float tensor between operators. So does this: the model input, the output
of every operator (but the logits, and an operator whose only user is the ReLU ORT fuses into it),
constants an operator combines with a tensor (`x * 0.5`), and the inside of activations that ONNX
writes as several operators (hardswish as x * hardsigmoid(x), SiLU, GELU, Mish), split here
the same way. Operators that only move or select values (max pooling, reshapes, indexing) keep their
input's grid (`SharedQuant`), as ORT keeps their scale."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata
from torch.nn import functional as F

__all__ = ["decompose_activations", "lift_scalars", "float_nodes", "place_quantizers"]

_RELUS = (nn.ReLU, nn.ReLU6)
_SAME_GRID_MODULES = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.Flatten,
    nn.Unflatten,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
)
_SAME_GRID_FUNCTIONS = {
    torch.flatten,
    torch.reshape,
    torch.transpose,
    torch.permute,
    torch.squeeze,
    torch.unsqueeze,
    operator.getitem,
    F.max_pool1d,
    F.max_pool2d,
    F.dropout,
}
_SAME_GRID_METHODS = {"view", "reshape", "flatten", "transpose", "permute", "squeeze", "unsqueeze", "contiguous"}
_ARITHMETIC_FUNCTIONS = {operator.add, operator.mul, operator.sub, operator.truediv, torch.add, torch.mul, torch.sub, torch.div}
_ARITHMETIC_METHODS = {"add", "mul", "sub", "div"}

Build = Callable[[fx.Graph, fx.Node], fx.Node]


def _hardswish(g: fx.Graph, x: fx.Node) -> fx.Node:
    """ONNX's HardSwish, as ONNX Runtime inlines it: X * HardSigmoid(X)."""
    return g.call_function(operator.mul, (x, g.call_function(F.hardsigmoid, (x,))))


def _silu(g: fx.Graph, x: fx.Node) -> fx.Node:
    return g.call_function(operator.mul, (x, g.call_function(torch.sigmoid, (x,))))


def _mish(g: fx.Graph, x: fx.Node) -> fx.Node:
    return g.call_function(operator.mul, (x, g.call_function(torch.tanh, (g.call_function(F.softplus, (x,)),))))


def _gelu(g: fx.Graph, x: fx.Node) -> fx.Node:
    """The exporter's exact GELU below opset 20: Mul(Mul(X, Add(Erf(Div(X, sqrt 2)), 1)), 0.5)."""
    erf = g.call_function(torch.erf, (g.call_function(operator.truediv, (x, math.sqrt(2.0))),))
    return g.call_function(operator.mul, (g.call_function(operator.mul, (x, g.call_function(operator.add, (erf, 1.0)))), 0.5))


def _gelu_tanh(g: fx.Graph, x: fx.Node) -> fx.Node:
    """The exporter's tanh GELU: 0.5 * (x * (1 + tanh(beta * (x + kappa * (x * (x * x))))))."""
    mul, add = (lambda a, b: g.call_function(operator.mul, (a, b))), (lambda a, b: g.call_function(operator.add, (a, b)))
    inner = mul(math.sqrt(2 / math.pi), add(x, mul(0.044715, mul(x, mul(x, x)))))
    return mul(0.5, mul(x, add(1.0, g.call_function(torch.tanh, (inner,)))))


_SPLIT_MODULES: dict[type[nn.Module], Build] = {nn.Hardswish: _hardswish, nn.SiLU: _silu, nn.Mish: _mish, nn.GELU: _gelu}
_SPLIT_FUNCTIONS: dict[object, Build] = {F.hardswish: _hardswish, F.silu: _silu, F.mish: _mish, F.gelu: _gelu}


def _split_rule(node: fx.Node, modules: dict[str, nn.Module]) -> Build | None:
    if node.op == "call_module":
        module = modules.get(str(node.target))
        tanh = isinstance(module, nn.GELU) and module.approximate == "tanh"
        return _gelu_tanh if tanh else _SPLIT_MODULES.get(type(module))
    if node.op == "call_function" and node.target in _SPLIT_FUNCTIONS:
        tanh = node.target is F.gelu and node.kwargs.get("approximate", "none") == "tanh"
        return _gelu_tanh if tanh else _SPLIT_FUNCTIONS[node.target]
    return None


def decompose_activations(gm: fx.GraphModule) -> None:
    """Rewrite hardswish, SiLU, Mish and GELU as the operators ONNX Runtime runs them as, so each
    intermediate tensor can carry a quantizer as static PTQ gives it one."""
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        build = _split_rule(node, modules)
        if build is None:
            continue
        with gm.graph.inserting_before(node):
            node.replace_all_uses_with(build(gm.graph, node.args[0]))
        gm.graph.erase_node(node)
    gm.delete_all_unused_submodules()
    gm.graph.lint()
    gm.recompile()


def float_nodes(gm: fx.GraphModule, example: torch.Tensor) -> set[fx.Node]:
    """The nodes whose value is a floating-point tensor, found by running `gm` on `example`."""
    with torch.no_grad():
        ShapeProp(gm).propagate(example)
    found = set()
    for node in gm.graph.nodes:
        meta = node.meta.get("tensor_meta")
        if isinstance(meta, TensorMetadata) and meta.dtype.is_floating_point:
            found.add(node)
    return found


def _is_arithmetic(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target in _ARITHMETIC_FUNCTIONS) or (
        node.op == "call_method" and node.target in _ARITHMETIC_METHODS
    )


def lift_scalars(gm: fx.GraphModule, floats: set[fx.Node]) -> int:
    """Turn the Python numbers that tensor arithmetic combines with a float tensor into constant buffers
    (static PTQ quantizes such constants, and ORT fuses Add/Mul only when both inputs are quantized).
    Returns how many were lifted; the graph changed when it is not 0."""
    count = 0
    for node in list(gm.graph.nodes):
        if node not in floats or not _is_arithmetic(node):
            continue
        args = list(node.args)
        for i, arg in enumerate(args):
            if isinstance(arg, float | int) and not isinstance(arg, bool):
                name = f"qad_constant_{count}"
                gm.register_buffer(name, torch.tensor(float(arg)))
                with gm.graph.inserting_before(node):
                    args[i] = gm.graph.get_attr(name)
                count += 1
        node.args = tuple(args)
    if count:
        gm.graph.lint()
        gm.recompile()
    return count


def _is_fused_activation(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """A ReLU or ReLU6: ONNX Runtime drops it into the quantizer that follows it."""
    return (
        (node.op == "call_module" and isinstance(modules.get(str(node.target)), _RELUS))
        or (node.op == "call_function" and node.target in {F.relu, torch.relu, F.relu6})
        or (node.op == "call_method" and node.target == "relu")
    )


def _keeps_grid(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    return (
        (node.op == "call_module" and isinstance(modules.get(str(node.target)), _SAME_GRID_MODULES))
        or (node.op == "call_function" and node.target in _SAME_GRID_FUNCTIONS)
        or (node.op == "call_method" and node.target in _SAME_GRID_METHODS)
    )


def _wants_quantizer(node: fx.Node, floats: set[fx.Node], modules: dict[str, nn.Module]) -> bool:
    if node not in floats or all(user.op == "output" for user in node.users):
        return False  # not a float tensor, or the model's output (logits stay float)
    if len(node.users) == 1 and not _is_fused_activation(node, modules):
        return not _is_fused_activation(next(iter(node.users)), modules)  # the ReLU after it carries the quantizer
    return True


def place_quantizers(
    gm: fx.GraphModule, floats: set[fx.Node], *, own: Callable[[], nn.Module], shared: Callable[[nn.Module], nn.Module]
) -> list[str]:
    """Insert a quantizer after every float tensor static PTQ quantizes: `own()` makes one with its own
    range, `shared(q)` one on the grid of quantizer `q` (after operators that keep their input's values).
    Returns the inserted submodules' names."""
    modules = dict(gm.named_modules())
    grid: dict[fx.Node, nn.Module] = {}  # quantizer node -> the quantizer whose grid its values are on
    names = []
    for node in list(gm.graph.nodes):
        if not _wants_quantizer(node, floats, modules):
            continue
        source = node.args[0] if node.args and _keeps_grid(node, modules) else None
        root = grid.get(source) if isinstance(source, fx.Node) else None
        quantizer = shared(root) if root is not None else own()
        name = f"act_quant_{len(names)}"
        gm.add_submodule(name, quantizer)
        with gm.graph.inserting_after(node):
            q_node = gm.graph.call_module(name, (node,))
        node.replace_all_uses_with(q_node, delete_user_cb=lambda user, q=q_node: user is not q)
        grid[q_node] = root if root is not None else quantizer
        names.append(name)
    gm.graph.lint()
    gm.recompile()
    return names
