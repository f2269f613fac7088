"""Everything neural-compressor-specific: PT2E static INT8 quantization of a PyTorch model, with
`autotune` against a tolerable loss, exported to a QDQ ONNX file (torch.onnx dynamo exporter).

Measured here: the result is accurate, and OpenVINO or PyTorch run it as INT8; ONNX Runtime fuses only
part of it (PT2E puts no QuantizeLinear between a convolution and the add or pooling that follows),
so on ORT CPU it is often no faster than FP32. The `quantize` stage lists what ORT leaves in float."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from compress.errors import RecipeError

__all__ = ["quantize_inc"]

INSTALL = "pip install 'edge-compress[inc]' (neural-compressor, torchao and their helpers)"


def _modules():
    try:
        from neural_compressor.torch.export import export
        from neural_compressor.torch.quantization import StaticQuantConfig, TuningConfig, autotune, convert, prepare
    except ImportError as err:
        raise RecipeError(f"quantize backend 'inc' needs neural-compressor ({err})", fix=INSTALL) from None
    return export, StaticQuantConfig, TuningConfig, autotune, convert, prepare


def quantize_inc(
    model: nn.Module,
    example: torch.Tensor,
    calibration: torch.Tensor,
    dest: Path,
    *,
    per_channel: bool,
    activations: str,
    method: str,
    evaluate: Callable[[nn.Module], float] | None = None,
    tolerable_loss: float | None = None,
    max_trials: int = 24,
) -> list[float]:
    """Write an INT8 QDQ ONNX version of `model` to `dest` (the caller makes it atomic). With `evaluate`
    and `tolerable_loss` (relative, as neural-compressor counts it), autotune picks the configuration;
    returns the metric of every configuration it evaluated (empty without tuning)."""
    export, StaticQuantConfig, TuningConfig, autotune, convert, prepare = _modules()
    if method not in ("minmax", "entropy"):
        raise RecipeError(f"quantize backend 'inc' supports calibration methods minmax and entropy, not {method!r}")
    config = StaticQuantConfig(
        w_granularity="per_channel" if per_channel else "per_tensor",
        act_dtype=activations,
        act_sym=activations == "int8",
        act_algo="minmax" if method == "minmax" else "kl",
    )
    for name in ("neural_compressor", "onnxscript", "torch.onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
        warnings.simplefilter("ignore")
        graph = export(model.eval(), example_inputs=(example,), dynamic_shapes=({0: batch},))
        if graph is None:
            raise RecipeError("quantize backend 'inc': torch.export could not capture the model", fix="use backend: ort")
        scores: list[float] = []
        if evaluate is not None and tolerable_loss is not None:

            def scored(m: nn.Module) -> float:
                scores.append(evaluate(m))
                return scores[-1]

            tuning = TuningConfig(config_set=[config], tolerable_loss=tolerable_loss, max_trials=max_trials)
            quantized = autotune(graph, tuning, eval_fn=scored, run_fn=lambda m: m(calibration), example_inputs=(example,))
        else:
            prepared = prepare(graph, config)
            prepared(calibration)
            quantized = convert(prepared)
        torch.onnx.export(
            quantized,
            (example,),
            str(dest),
            dynamo=True,
            opset_version=18,
            input_names=["input"],
            output_names=["output"],
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
    return scores
