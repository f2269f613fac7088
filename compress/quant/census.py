"""Whether one INT8 ONNX file runs on integer kernels everything another runs on integer kernels: the
operator census of `ort.float_ops` (what ONNX Runtime runs after optimising each file for the CPU),
compared. Used to hold quantization-aware training to what static PTQ of the same model fuses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compress.quant.ort import float_ops

__all__ = ["Coverage", "integer_coverage", "float_forms"]

_QDQ = {"QuantizeLinear", "DequantizeLinear"}
# integer kernel -> the float operators it replaces (ORT's fused and blocked-layout names included)
_FLOAT_FORMS = {
    "QLinearConv": {"Conv", "FusedConv"},
    "ConvInteger": {"Conv", "FusedConv"},
    "QGemm": {"Gemm", "FusedGemm"},
    "QLinearMatMul": {"MatMul", "FusedMatMul"},
    "MatMulInteger": {"MatMul", "FusedMatMul"},
    "MatMulIntegerToFloat": {"MatMul", "FusedMatMul"},
    "DynamicQuantizeMatMul": {"MatMul", "FusedMatMul"},
    "NhwcMaxPool": {"MaxPool"},
}


def float_forms(integer_op: str) -> set[str]:
    """The float operators an integer kernel stands for: QLinearAdd -> {Add}, QGemm -> {Gemm, FusedGemm}."""
    if integer_op in _FLOAT_FORMS:
        return _FLOAT_FORMS[integer_op]
    return {integer_op.removeprefix("QLinear")} if integer_op.startswith("QLinear") else set()


@dataclass(frozen=True)
class Coverage:
    """What `candidate` leaves undone of `reference`'s integer work. `fewer`: integer kernels it runs fewer
    of (Q/DQ aside), by how many; `left_float`: float operators it runs that `reference` runs as integer kernels."""

    reference_integer: dict[str, int]
    candidate_integer: dict[str, int]
    fewer: dict[str, int]
    left_float: dict[str, int]

    @property
    def covered(self) -> bool:
        return not self.fewer and not self.left_float

    def describe(self) -> str:
        """One line: 'covered', or what is missing."""
        parts = []
        if self.fewer:
            parts.append("fewer integer kernels: " + ", ".join(f"{op} -{n}" for op, n in self.fewer.items()))
        if self.left_float:
            parts.append("left float: " + ", ".join(f"{op} x{n}" for op, n in self.left_float.items()))
        return "; ".join(parts) or "covered"


def integer_coverage(reference: Path, candidate: Path, threads: int = 1) -> Coverage:
    """Compare the operators ONNX Runtime runs for two INT8 files of the same model (e.g. static PTQ as
    `reference`, QAD as `candidate`); `Coverage.covered` when no operator `reference` runs on an
    integer kernel stays float in `candidate`."""
    ref, cand = float_ops(reference, threads), float_ops(candidate, threads)
    ref_int = {op: n for op, n in ref["integer_ops"].items() if op not in _QDQ}
    cand_int = {op: n for op, n in cand["integer_ops"].items() if op not in _QDQ}
    fewer = {op: n - cand_int.get(op, 0) for op, n in ref_int.items() if cand_int.get(op, 0) < n}
    forms = set().union(*(float_forms(op) for op in ref_int))
    left = {op: n for op, n in cand["float_ops"].items() if op in forms}
    return Coverage(ref_int, cand_int, fewer, left)
