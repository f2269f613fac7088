"""Fake quantization in PyTorch and its QDQ export: BatchNorm folded, quantizers where static PTQ puts them (so
ONNX Runtime fuses what PTQ fuses), ranges that follow the batches until frozen, and an INT8 file ORT runs on integer kernels."""

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from compress.bench.runners.ort import OrtCpuRunner
from compress.cpu import resolve_cpu
from compress.deploy import export_onnx
from compress.errors import ModelError
from compress.models.zoo import cnn1d, mobilenet_v2, resnet_cnn
from compress.quant import choose_format, float_ops, integer_coverage, quantize_onnx
from compress.quant.qat import ActQuant, SharedQuant, calibrate, export_qdq, freeze_ranges, prepare_qat, quantizers
from tests.conformance.families import concat_branches, gru, lstm, mlp_layernorm, se_gating, transformer_encoder


def _model(builder, shape=(1, 8, 8), **kw):
    torch.manual_seed(0)
    model = builder(shape, 10, **kw)
    model.train()
    with torch.no_grad():  # give BatchNorm statistics worth folding
        for _ in range(3):
            model(torch.randn(32, *shape))
    return model.eval()


@pytest.mark.parametrize(
    ("builder", "shape", "kw"),
    [(resnet_cnn, (1, 8, 8), {"width": 8, "blocks": [1, 1]}), (mobilenet_v2, (1, 8, 8), {"width": 8}), (cnn1d, (1, 40), {"width": 8})],
)
def test_bn_folded_quantizers_placed_and_export_runs_on_integer_kernels(tmp_path, builder, shape, kw):
    model = _model(builder, shape, **kw)
    x = torch.randn(64, *shape)
    q = prepare_qat(model, x[:2])
    assert not [m for m in q.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    calibrate(q, [x])
    with torch.no_grad():
        ref, fake = model(x), q(x)
    assert (ref.argmax(1) == fake.argmax(1)).float().mean() >= 0.9  # 8-bit noise, not a different model
    assert not torch.equal(ref, fake)  # and it is quantized
    path = tmp_path / "q.onnx"
    export_qdq(q, x[:2], path)
    onnx.checker.check_model(str(path), full_check=True)
    ops = float_ops(path)
    assert ops["float_ops"] == {}, ops  # every conv, add, pooling and the classifier on integer kernels
    tensors = [i for i in onnx.load(str(path)).graph.initializer if len(i.dims) >= 2]  # weight matrices and kernels
    assert tensors and {i.data_type for i in tensors} == {onnx.TensorProto.INT8}  # stored as int8, not float
    got = OrtCpuRunner(1).load(path)(x.numpy())
    assert np.mean(got.argmax(1) == fake.numpy().argmax(1)) >= 0.95
    assert np.abs(got - fake.numpy()).max() < 0.25 * np.abs(fake.numpy()).max()


def test_ranges_follow_training_batches_until_frozen():
    q = prepare_qat(_model(resnet_cnn, width=8, blocks=[1]), torch.randn(2, 1, 8, 8))
    calibrate(q, [torch.randn(16, 1, 8, 8)])
    act = quantizers(q)[0][0]
    q.train()
    before = act.hi.clone()
    q(10 * torch.randn(16, 1, 8, 8))
    assert act.hi > before  # the moving average moved towards the wider batch
    freeze_ranges(q)
    frozen = (act.lo.clone(), act.hi.clone(), act.scale.clone())
    q(100 * torch.randn(16, 1, 8, 8))
    assert all(torch.equal(a, b) for a, b in zip(frozen, (act.lo, act.hi, act.scale), strict=True))
    assert "act_quant_0.observing" in q.state_dict()  # the frozen state survives a checkpoint


def test_logits_stay_float_and_act_quant_zero_is_exact():
    q = prepare_qat(_model(resnet_cnn, width=8, blocks=[1]), torch.randn(2, 1, 8, 8))
    last = next(n for n in q.graph.nodes if n.op == "output").args[0]
    assert not (last.op == "call_module" and isinstance(q.get_submodule(str(last.target)), ActQuant))
    act = ActQuant()
    act.eval()
    act.enabled = False
    act(torch.tensor([0.3, 2.0]))  # all positive: the range still includes zero
    act.enabled = True
    assert act.zero_point.item() == 0 and act(torch.tensor([0.0])).item() == 0.0


def test_models_without_weights_to_quantize_are_model_errors():
    with pytest.raises(ModelError, match="no Conv or Linear layer"):
        prepare_qat(nn.Sequential(nn.ReLU(), nn.Flatten()), torch.randn(2, 4))


def _exported(tmp_path, model, x):
    q = prepare_qat(model, x[:2])
    calibrate(q, [x])
    path = tmp_path / "q.onnx"
    export_qdq(q, x[:2], path)
    with torch.no_grad():
        fake = q(x).numpy()
    return q, path, fake


@pytest.mark.parametrize(
    ("family", "integer", "allowed_float"),
    [
        # hardswish is x * hardsigmoid(x) in ORT: the Mul and the convolutions after it go integer, HardSigmoid stays float (as in PTQ)
        (se_gating, {"QLinearConv": 8, "QLinearMul": 6, "QLinearSigmoid": 1, "QLinearGlobalAveragePool": 3}, {"HardSigmoid"}),
        (concat_branches, {"QLinearConv": 15, "QLinearConcat": 2, "NhwcMaxPool": 2}, set()),  # max pooling on its input's grid
        (mlp_layernorm, {"QGemm": 3, "QLinearAdd": 2, "QLinearMul": 4}, {"LayerNormalization", "Div", "Erf"}),  # GELU split as ORT runs it
    ],
)
def test_quantizers_where_static_ptq_puts_them_leave_no_fusable_op_in_float(tmp_path, family, integer, allowed_float):
    x = torch.randn(64, 1, 8, 8)
    _, path, fake = _exported(tmp_path, _model(family), x)
    ops = float_ops(path)
    assert set(ops["float_ops"]) <= allowed_float, ops
    assert {op: ops["integer_ops"].get(op, 0) for op in integer} == integer, ops
    got = OrtCpuRunner(1).load(path)(x.numpy())
    assert np.mean(got.argmax(1) == fake.argmax(1)) >= 0.95  # the fake-quantized twin is what ORT runs


def test_layers_that_keep_values_share_their_inputs_grid_and_constants_are_quantized():
    q = prepare_qat(_model(concat_branches), torch.randn(2, 1, 8, 8))
    shared = [m for m in q.modules() if isinstance(m, SharedQuant)]
    assert len(shared) == 3 and all(isinstance(m.source[0], ActQuant) for m in shared)  # both max poolings, the flatten
    gelu = prepare_qat(_model(mlp_layernorm), torch.randn(2, 1, 8, 8))
    constants = {round(float(b), 4) for n, b in gelu.named_buffers() if n.startswith("qad_constant_")}
    assert constants == {1.4142, 1.0, 0.5} and not any(isinstance(m, nn.GELU) for m in gelu.modules())


@pytest.mark.parametrize("family", [gru, lstm, transformer_encoder])
def test_layers_qad_cannot_see_into_are_refused_in_one_line(family):
    with pytest.raises(ModelError, match="qad: cannot fake-quantize inside the .* layer") as err:
        prepare_qat(family((1, 8, 8), 10), torch.randn(2, 1, 8, 8))
    assert "\n" not in str(err.value) and "use post-training quantization" in str(err.value)


class _Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * 0.5 + 1.0  # constants static PTQ quantizes, so that ORT fuses the Mul and the Add


@pytest.mark.parametrize("act", [nn.SiLU, nn.Mish, lambda: nn.GELU("tanh"), _Scaled], ids=["silu", "mish", "gelu-tanh", "constants"])
def test_qad_file_runs_on_integer_kernels_what_static_ptq_of_the_same_model_does(tmp_path, act):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), act(), nn.Conv2d(8, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    )
    x = torch.randn(128, 1, 8, 8)
    export_onnx(model.eval(), x[:2], tmp_path / "fp32.onnx", opset=17, exporter="legacy")
    quantize_onnx(
        tmp_path / "fp32.onnx", tmp_path / "ptq.onnx", mode="static", calibration=x.numpy(), fmt=choose_format(resolve_cpu().kind)[0]
    )
    _, qad, _ = _exported(tmp_path, model, x)
    coverage = integer_coverage(tmp_path / "ptq.onnx", qad)
    assert coverage.covered, coverage.describe()
    assert {"QLinearMul", "QLinearConv"} <= set(coverage.candidate_integer)
