"""Recurrent models get the INT8 path a runtime really accelerates, or a one-line refusal.

Measured with ONNX Runtime 1.32 and OpenVINO 2026.4 (8-epoch digits models): static QDQ around a GRU or
LSTM left it running in float on ORT and OpenVINO misread its int8-stored weights (GRU 0.59 -> 0.44
accuracy, LSTM 0.55 -> 0.10); dynamic mode runs LSTM on ORT's DynamicQuantizeLSTM (agreement 0.99 on
ort-cpu, 1.00 on openvino-cpu); no mode has an INT8 GRU kernel."""

from collections.abc import Sequence

import onnx
import pytest
import torch
from torch import nn

from compress.bench.runners import target_available
from compress.errors import RecipeError
from compress.pipeline import Pipeline
from compress.stages import Benchmark, Export, Quantize, Train

pytestmark = pytest.mark.slow

TARGETS = ["ort-cpu"] + (["openvino-cpu"] if target_available("openvino-cpu") else [])
TIMING = {"warmup": 1, "warmup_time_s": 0, "rounds": 2, "min_iters": 5, "min_time_s": 0}


class _GruThenMlp(nn.Module):
    """A small GRU (a tenth of the weights) under a wide MLP head: quantizing the rest is worth it."""

    def __init__(self, features: int, num_outputs: int) -> None:
        super().__init__()
        self.features = features
        self.rnn = nn.GRU(features, 8, batch_first=True)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, num_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.reshape(x.shape[0], -1, self.features))
        return self.head(out)


def gru_minor(in_shape: Sequence[int], num_outputs: int) -> nn.Module:
    return _GruThenMlp(in_shape[-1], num_outputs)


def _train(family: str, epochs: int = 3) -> Train:
    module = "tests.stages.test_recurrent_int8" if family == "gru_minor" else "tests.conformance.families"
    return Train(name=family, model={"factory": f"{module}:{family}"}, epochs=epochs)


def _run(tmp_path, family: str, *later, epochs: int = 3):
    return Pipeline([_train(family, epochs), Export(), *later], task="digits", target={"threads": 1}).run(tmp_path, quiet=True)


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_a_gru_model_is_refused_in_one_line_since_no_runtime_runs_its_gru_in_int8(tmp_path, mode):
    with pytest.raises(RecipeError) as err:
        _run(tmp_path, "gru", Quantize(mode=mode))
    message = str(err.value)
    assert "\n" not in message
    assert "quantize: 'gru' would stay mostly float: its GRU (/rnn/GRU) holds 9" in message  # 92% of the weights
    assert "has no INT8 GRU kernel, static or dynamic" in message
    static = "mode: static with " if mode == "dynamic" else ""  # following the fix must work: dynamic mode has nothing else to quantize
    assert err.value.fix == f"keep 'gru' in FP32 (list the other models in quantize.models), or set {static}exclude_op_types: [GRU] to quantize the rest and keep it in float"  # fmt: skip
    assert not (tmp_path / "quantize" / "gru_int8.onnx").exists()


def test_static_on_an_lstm_model_is_refused_naming_dynamic_mode(tmp_path):
    with pytest.raises(RecipeError) as err:
        _run(tmp_path, "lstm", Quantize())
    assert "runs LSTM on integer kernels in dynamic mode only (DynamicQuantizeLSTM); static INT8 has no LSTM kernel" in str(err.value)
    assert err.value.fix.startswith("use mode: dynamic, or set exclude_op_types: [LSTM]")


def test_dynamic_lstm_runs_on_integer_kernels_and_agrees_on_every_runtime(tmp_path):
    manifest = _run(tmp_path, "lstm", Quantize(mode="dynamic"), Benchmark(targets=TARGETS, batch_sizes=[1], timing=TIMING), epochs=8)
    record = manifest.find("benchmark").models["lstm_int8"]
    q = record.quant
    assert q.integer_ops.get("DynamicQuantizeLSTM") == 1 and "LSTM" not in q.float_ops
    assert [(r.op, r.integer, r.why) for r in q.recurrent] == [("LSTM", True, None)] and q.recurrent[0].weight_share > 0.9
    for target in TARGETS:
        bench = record.bench[target]
        assert bench.agreement >= 0.95, (target, bench)  # 0.994 on ort-cpu, 1.000 on openvino-cpu (x86-vnni)
        assert (bench.flag is None) == (bench.agreement >= 0.98)


def test_static_keeps_a_minor_gru_in_float_with_float_weights_quantizes_the_rest_and_says_so(tmp_path, caplog):
    bench = Benchmark(targets=TARGETS, batch_sizes=[1], timing=TIMING)
    manifest = _run(tmp_path, "gru_minor", Quantize(calibration={"samples": 64}, min_agreement=0.9), bench, epochs=6)
    record = manifest.find("benchmark").models["gru_minor_int8"]
    q = record.quant
    (layer,) = q.recurrent
    assert layer.op == "GRU" and not layer.integer and layer.weight_share < 0.2
    assert "has no INT8 GRU kernel" in layer.why and q.float_ops.get("GRU") == 1 and q.integer_ops.get("QGemm") == 2
    assert f"note: GRU {layer.node} ({layer.weight_share:.0%} of the weights) stays float: ONNX Runtime" in caplog.text
    graph = onnx.load(str(tmp_path / record.onnx)).graph
    made_by = {out: n.op_type for n in graph.node for out in n.output}
    gru = next(n for n in graph.node if n.op_type == "GRU")
    assert [made_by.get(name) for name in gru.input[1:4]] == [None, None, None]  # W, R, B: float initializers, no DequantizeLinear
    for target in TARGETS:  # OpenVINO read int8-stored GRU weights wrongly (0.54 agreement); float ones it runs right
        assert record.bench[target].agreement >= 0.95, target


def test_neural_compressor_refuses_recurrent_layers_in_one_line(tmp_path):
    """Its PT2E export of a GRU used to end in a traceback (external data written beside a temporary name)."""
    with pytest.raises(RecipeError) as err:
        _run(tmp_path, "gru", Quantize(backend="inc"), epochs=1)
    assert str(err.value).startswith("quantize: backend inc does not quantize the recurrent layers (GRU) of 'gru'")
    assert "use backend: ort" in str(err.value) and not list(tmp_path.glob("quantize/*.onnx*"))
