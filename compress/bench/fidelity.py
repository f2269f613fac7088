"""How closely an INT8 model reproduces its FP32 parent through one runtime, on the same inputs: top-1
agreement (classification) or 1 - relative error (regression), flagged below `FIDELITY_BOUND`. The
quantize stage checks agreement on ONNX Runtime only; another runtime can read the same file differently
(OpenVINO once ran a GRU model's INT8 file at chance), so the benchmark measures it on every target."""

from __future__ import annotations

import numpy as np

__all__ = ["FIDELITY_BOUND", "fidelity", "compare_outputs"]

FIDELITY_BOUND = 0.98
"""Least agreement of an INT8 model with its FP32 parent on a benchmarked runtime; below it, it is flagged."""


def fidelity(reference: np.ndarray, outputs: np.ndarray, *, classification: bool) -> tuple[str, float]:
    """(measure, value): the share of inputs whose top-1 class is the same, or 1 - ||outputs - reference|| / ||reference||."""
    if classification:
        return "top-1 agreement", float(np.mean(reference.argmax(1) == outputs.argmax(1)))
    error = np.linalg.norm(outputs - reference) / max(float(np.linalg.norm(reference)), 1e-12)
    return "1 - relative error", float(max(0.0, 1.0 - error))


def compare_outputs(
    reference: np.ndarray,
    outputs: np.ndarray,
    *,
    classification: bool,
    reference_name: str,
    target: str,
    split: str,
    bound: float = FIDELITY_BOUND,
) -> tuple[float, str | None]:
    """(agreement, flag) of the INT8 `outputs` with its FP32 parent's `reference` outputs, both through
    `target` on `split`; the flag, one line saying what fell and where, only below `bound`."""
    measure, value = fidelity(reference, outputs, classification=classification)
    if value >= bound:
        return value, None
    return value, f"INT8 {measure} with FP32 {reference_name!r} is {value:.4f} on {target} ({split}, {len(outputs)} samples), below {bound}"
