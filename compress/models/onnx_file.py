"""An ONNX file a user brings (exported elsewhere, or downloaded): what it takes and gives, read from the
file itself, and checked against the task before a run relies on it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compress.errors import ArtifactError, DataError, first_line

__all__ = ["OnnxSignature", "onnx_signature", "graph_inputs", "GraphInput", "input_specs", "batch_axes"]


def graph_inputs(graph) -> list:
    """The inputs a caller feeds: the graph's inputs that are not stored weights (older files list
    their initializers among the inputs too)."""
    stored = {i.name for i in graph.initializer}
    return [i for i in graph.input if i.name not in stored]


Dim = int | str
"""A declared dimension: its size, or its symbolic name ("?" where the file gives none)."""


@dataclass(frozen=True)
class GraphInput:
    """One input a caller feeds, as the file declares it."""

    name: str
    dims: tuple[Dim, ...] | None  # None: the file declares no shape at all
    dtype: str  # numpy's name for the element type, e.g. float32, int64

    def describe(self) -> str:
        return f"{self.name} [{', '.join(map(str, self.dims))}]" if self.dims is not None else f"{self.name} [rank unknown]"


def input_specs(graph) -> list[GraphInput]:
    """Name, declared dimensions and element type of each input a caller feeds (`graph_inputs`)."""
    from onnx.helper import tensor_dtype_to_np_dtype

    def dim(d) -> Dim:
        return d.dim_value if d.dim_value > 0 else (d.dim_param or "?")

    specs = []
    for i in graph_inputs(graph):
        tensor = i.type.tensor_type
        dims = tuple(dim(d) for d in tensor.shape.dim) if tensor.HasField("shape") else None
        specs.append(GraphInput(i.name, dims, str(tensor_dtype_to_np_dtype(tensor.elem_type)) if tensor.elem_type else "float32"))
    return specs


def batch_axes(inputs: list[GraphInput]) -> dict[str, tuple[int, ...]]:
    """The axes of each input that take the batch size: axis 0 of the first input unless the file fixes its
    size, and every axis of any input with the same symbolic name (recurrent state often has it at axis 1)."""
    first = inputs[0].dims if inputs else None
    if not first or isinstance(first[0], int):
        return {i.name: () for i in inputs}
    name = first[0]
    axes = {i.name: tuple(a for a, d in enumerate(i.dims or ()) if d == name and name != "?") for i in inputs}
    axes[inputs[0].name] = tuple(sorted({0, *axes[inputs[0].name]}))
    return axes


@dataclass(frozen=True)
class OnnxSignature:
    input_name: str
    sample_shape: tuple[int | str, ...]  # per sample: a dimension's size, or its symbolic name
    batch: int | str | None  # fixed size, symbolic name, or None when undeclared
    outputs: int  # the last dimension of the first output (0 when symbolic)
    params: int  # values stored in the initializers

    def check_task(self, label: str, input_shape: tuple[int, ...], num_outputs: int) -> None:
        """The file takes one task input per sample and gives one row of `num_outputs` scores."""
        fixed = tuple(d for d in self.sample_shape)
        if len(fixed) != len(input_shape) or any(isinstance(d, int) and d != s for d, s in zip(fixed, input_shape, strict=False)):
            raise DataError(
                f"{label} takes inputs of shape {fixed} per sample, the task's are {input_shape}",
                fix="bring the model of this task, or a task whose inputs it takes",
            )
        if self.outputs and self.outputs != num_outputs:
            raise DataError(
                f"{label} gives {self.outputs} outputs per sample, the task needs {num_outputs}", fix="bring the model of this task"
            )


def onnx_signature(path: Path) -> OnnxSignature:
    """The single input's name and shape, the output width and the stored parameter count of `path`."""
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # onnx raises DecodeError, ValidationError and friends
        raise ArtifactError(f"{path} is not a valid ONNX model ({first_line(err)})", fix="export it again") from None
    graph = model.graph
    inputs = graph_inputs(graph)
    if len(inputs) != 1 or not graph.output:
        raise ArtifactError(
            f"{path} has {len(inputs)} inputs and {len(graph.output)} outputs; a run's model takes one input and gives one output",
            fix="benchmark multi-input models with 'edge-compress bench'",
        )

    def dim(d) -> int | str:
        return d.dim_value if d.dim_value > 0 else (d.dim_param or "?")

    dims = [dim(d) for d in inputs[0].type.tensor_type.shape.dim]
    out = [dim(d) for d in graph.output[0].type.tensor_type.shape.dim]
    # weights are initializers, or (older exporters, e.g. paddle2onnx) Constant nodes
    constants = [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    params = sum(int(onnx.numpy_helper.to_array(t).size) for t in [*graph.initializer, *constants])
    return OnnxSignature(
        input_name=inputs[0].name,
        sample_shape=tuple(dims[1:]),
        batch=dims[0] if dims else None,
        outputs=out[-1] if out and isinstance(out[-1], int) else 0,
        params=params,
    )
