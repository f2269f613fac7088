"""Fake quantization in PyTorch and its QDQ export: BatchNorm folded, quantizers where ONNX Runtime fuses
them, ranges that follow the batches until frozen, and an INT8 file ORT runs on integer kernels."""

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from compress.bench.runners.ort import OrtCpuRunner
from compress.errors import ModelError
from compress.models.zoo import cnn1d, mobilenet_v2, resnet_cnn
from compress.quant import float_ops
from compress.quant.qat import ActQuant, calibrate, export_qdq, freeze_ranges, prepare_qat, quantizers


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
    q = prepare_qat(model)
    assert not [m for m in q.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    x = torch.randn(64, *shape)
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
    q = prepare_qat(_model(resnet_cnn, width=8, blocks=[1]))
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
    q = prepare_qat(_model(resnet_cnn, width=8, blocks=[1]))
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
        prepare_qat(nn.Sequential(nn.ReLU(), nn.Flatten()))
