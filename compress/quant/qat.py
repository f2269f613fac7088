"""Quantization-aware training that ends as an INT8 ONNX model ONNX Runtime runs with integer kernels.

`prepare_qat` folds BatchNorm into the preceding convolution (torch.fx), fake-quantizes every Conv and
Linear weight per output channel (symmetric int8) and the activations per tensor (asymmetric uint8,
ranges from an exponential moving average that can be frozen). The activation quantizers sit where
ONNX Runtime's static quantizer puts its Q/DQ pairs (see `placement`): after the model input and every
operator, split activations included, none on the output (logits stay float), so whatever static PTQ
runs on integer kernels the QAD file runs on integer kernels too. `export_qdq` writes the Q/DQ graph
with int8 weights and int32 biases, so the file is small and fuses into QLinearConv / QLinearAdd /
QLinearMul / QGemm; activation quantizers carry the same numbers in PyTorch and in ONNX Runtime.
Recurrent and attention layers cannot be fake-quantized inside (ONNX writes a recurrent layer as one
operator; torch.fx does not enter attention modules): `prepare_qat` refuses them.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import fx, nn
from torch.nn.utils import parametrize

from compress.errors import ModelError, first_line

__all__ = ["ActQuant", "SharedQuant", "WeightQuant", "prepare_qat", "calibrate", "freeze_ranges", "export_qdq", "quantizers"]

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear)
# layers QAD cannot see into (a recurrent layer is one ONNX operator; torch.fx does not enter attention
# modules): no place for the quantizers static PTQ's integer kernels need
_OPAQUE = (
    nn.RNNBase,
    nn.RNNCellBase,
    nn.MultiheadAttention,
    nn.Transformer,
    nn.TransformerEncoder,
    nn.TransformerDecoder,
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
)


class ActQuant(nn.Module):
    """Per-tensor uint8 fake quantization. The range follows the batches' min/max as an exponential
    moving average while `observing` (training mode only); `calibrate` sets it from data first."""

    def __init__(self, momentum: float = 0.01) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("zero_point", torch.tensor(0, dtype=torch.int32))
        self.register_buffer("observing", torch.tensor(True))  # buffers, so a checkpoint keeps the frozen state
        self.register_buffer("seen", torch.tensor(False))
        self.enabled = True  # off while calibrating: observe the float values only

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.training and bool(self.observing)) or not self.enabled:
            self._observe(x.detach())
        if not self.enabled or not bool(self.seen):
            return x
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, 0, 255)

    @torch.no_grad()
    def _observe(self, x: torch.Tensor) -> None:
        lo, hi = x.min(), x.max()
        if not self.enabled or not bool(self.seen):  # calibration keeps the running extremes
            lo = torch.minimum(lo, self.lo) if bool(self.seen) else lo
            hi = torch.maximum(hi, self.hi) if bool(self.seen) else hi
        else:
            lo, hi = torch.lerp(self.lo, lo, self.momentum), torch.lerp(self.hi, hi, self.momentum)
        self.lo.copy_(lo)
        self.hi.copy_(hi)
        self.seen.fill_(True)
        lo, hi = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)  # zero must be exact (padding, ReLU)
        scale = torch.clamp((hi - lo) / 255.0, min=1e-8)
        self.scale.copy_(scale)
        self.zero_point.copy_(torch.clamp(torch.round(-lo / scale), 0, 255).to(torch.int32))


class WeightQuant(nn.Module):
    """Per-output-channel symmetric int8 fake quantization of a weight (a parametrization): the scale is
    max|w| / `levels` of each channel (127; 63 for 7-bit weights, which x86 CPUs without VNNI need),
    recomputed every step, held fixed (`frozen`) while exporting."""

    def __init__(self, out_channels: int, levels: int = 127) -> None:
        super().__init__()
        self.levels = levels
        self.register_buffer("scale", torch.ones(out_channels))
        self.register_buffer("zero_point", torch.zeros(out_channels, dtype=torch.int32))
        self.frozen = False

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if not self.frozen:
            with torch.no_grad():
                amax = w.detach().abs().flatten(1).amax(1)
                self.scale.copy_(torch.clamp(amax / self.levels, min=1e-8))
        return torch.fake_quantize_per_channel_affine(w, self.scale, self.zero_point, 0, -128, 127)


class SharedQuant(nn.Module):
    """Fake quantization on another quantizer's grid, with no range of its own: after an operator that only
    moves or selects values (max pooling, reshapes), whose output ONNX Runtime keeps in its input's scale."""

    def __init__(self, source: ActQuant) -> None:
        super().__init__()
        self.source = (source,)  # a tuple: not a submodule, so its buffers are not counted twice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (q,) = self.source
        if not q.enabled or not bool(q.seen):
            return x
        return torch.fake_quantize_per_tensor_affine(x, q.scale, q.zero_point, 0, 255)


def prepare_qat(model: nn.Module, example: torch.Tensor, *, momentum: float = 0.01, weight_levels: int = 127) -> fx.GraphModule:
    """A fake-quantized copy of `model` (eval mode, BatchNorm folded), weights in [-weight_levels,
    weight_levels], activation quantizers where static PTQ puts them (`example`: an input batch, to tell
    tensors from shapes). Raises `ModelError` when the model has a layer QAD cannot see into (recurrent,
    attention), cannot be traced or has no Conv/Linear layer."""
    from compress.quant import placement

    _refuse_opaque(model)
    graph_module = _traced(model)
    weighted = [m for m in graph_module.modules() if isinstance(m, _WEIGHTED)]
    if not weighted:
        raise ModelError(f"qad: {type(model).__name__} has no Conv or Linear layer to quantize")
    placement.decompose_activations(graph_module)
    floats = placement.float_nodes(graph_module, example)
    if placement.lift_scalars(graph_module, floats):
        floats = placement.float_nodes(graph_module, example)
    placement.place_quantizers(graph_module, floats, own=lambda: ActQuant(momentum), shared=SharedQuant)
    for module in weighted:
        parametrize.register_parametrization(module, "weight", WeightQuant(module.weight.shape[0], weight_levels))
    return graph_module.eval()


def _refuse_opaque(model: nn.Module) -> None:
    name, layer = next(((n, m) for n, m in model.named_modules() if isinstance(m, _OPAQUE)), ("", None))
    if layer is not None:
        raise ModelError(
            f"qad: cannot fake-quantize inside the {type(layer).__name__} layer {name!r} of {type(model).__name__} "
            "(recurrent and attention layers are opaque to torch.fx: no place for the quantizers integer kernels need)",
            fix="use post-training quantization (the quantize stage) for this model",
        )


def _traced(model: nn.Module) -> fx.GraphModule:
    """A torch.fx copy of `model` in eval mode, Conv+BatchNorm (and Linear+BatchNorm1d) folded."""
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(copy.deepcopy(model).eval())
    except Exception as err:
        raise ModelError(
            f"qad: cannot trace {type(model).__name__} with torch.fx ({first_line(err)})",
            fix="use post-training quantization (the quantize stage) for this model",
        ) from None


def quantizers(model: nn.Module) -> tuple[list[ActQuant], list[WeightQuant]]:
    acts = [m for m in model.modules() if isinstance(m, ActQuant)]
    weights = [m for m in model.modules() if isinstance(m, WeightQuant)]
    return acts, weights


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Set every activation range to the min/max of the float activations over `batches` (the model
    runs unquantized meanwhile, like ONNX Runtime's MinMax calibration)."""
    acts, _ = quantizers(model)
    was_training = model.training
    model.eval()
    for act in acts:
        act.enabled = False
        act.seen.fill_(False)
    try:
        for x in batches:
            model(x)
    finally:
        for act in acts:
            act.enabled = True
        model.train(was_training)


def freeze_ranges(model: nn.Module, frozen: bool = True) -> None:
    """Stop (or restart) the activation ranges following the training batches."""
    for act in quantizers(model)[0]:
        act.observing.fill_(not frozen)


@contextmanager
def _frozen_weight_scales(model: nn.Module) -> Iterator[None]:
    _, weights = quantizers(model)
    for w in weights:
        w.frozen = False
    model.eval()
    with torch.no_grad():
        for module in model.modules():
            if parametrize.is_parametrized(module, "weight"):
                module.weight  # noqa: B018 - recompute each scale from the final weights
    for w in weights:
        w.frozen = True
    try:
        yield
    finally:
        for w in weights:
            w.frozen = False


def export_qdq(model: nn.Module, example: torch.Tensor, path: Path, *, opset: int = 17) -> None:
    """Write the fake-quantized `model` as a QDQ ONNX file with int8 weights and int32 biases (not atomic:
    the caller's path is a temporary one)."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp, _frozen_weight_scales(model), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(
            model,
            (example,),
            str(raw),
            dynamo=False,
            opset_version=max(opset, 13),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
        proto = onnx.load(str(raw))
    from compress.quant.qdq import fold_quantized_weights

    fold_quantized_weights(proto)
    onnx.save(proto, str(path))
