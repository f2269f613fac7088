"""The quantize stage: INT8 ONNX that passes onnx.checker, runs in ONNX Runtime with integer kernels,
agrees with FP32, and lists what stays in float; bad node or op names are one-line errors."""

import pytest

from compress.errors import RecipeError
from compress.pipeline import Pipeline
from compress.stages import Export, Quantize, Train

pytestmark = pytest.mark.slow

CNN = Train(name="cnn", model={"arch": "resnet_cnn", "width": 8, "blocks": [1, 1]}, epochs=2)
MLP = Train(name="mlp", model={"arch": "mlp", "hidden": [64, 32]}, epochs=2)


def _quantize(tmp_path, train, **cfg):
    return Pipeline([train, Export(), Quantize(**cfg)], task="digits").run(tmp_path, quiet=True).find("quantize").models


def test_static_uint8_runs_on_integer_kernels_and_agrees_with_fp32(tmp_path):
    record = _quantize(tmp_path, CNN, calibration={"samples": 64})["cnn_int8"]
    q = record.quant
    assert record.kind == "int8" and record.onnx == "quantize/cnn_int8.onnx" and q.source == "cnn"
    assert q.integer_ops.get("QLinearConv", 0) >= 5 and q.integer_ops.get("QLinearAdd", 0) >= 2  # residual joins fused too
    assert q.float_ops == {}, q.float_ops
    assert q.vs_reference.top1_agreement >= 0.95 and q.vs_reference.samples == 360 and q.reference == "fp32 onnx"
    assert (tmp_path / "quantize" / "cnn_int8.onnx").is_file()


def test_kept_op_types_are_listed_as_float(tmp_path):
    q = _quantize(tmp_path, CNN, exclude_op_types=["Gemm"], calibration={"samples": 32, "method": "percentile"})["cnn_int8"].quant
    assert q.float_ops.get("Gemm") == 1 and "QGemm" not in q.integer_ops
    assert any("Gemm" in n or "head" in n for n in q.float_nodes)


def test_dynamic_mode_quantizes_matmuls(tmp_path):
    tokens = Train(name="vit", model={"arch": "transformer", "dim": 16, "heads": 2, "depth": 1}, epochs=2)
    q = _quantize(tmp_path, tokens, mode="dynamic", min_agreement=0.8)["vit_int8"].quant  # 2 epochs: near-tied logits flip easily
    assert q.calibration is None and q.method == "dynamic"
    assert set(q.integer_ops) & {"MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLinear", "MatMulIntegerToFloat"}
    assert q.vs_reference.top1_agreement >= 0.8  # 0.96 on x86-vnni; 0.86 with the 7-bit weights of x86-avx2


def test_dynamic_mode_on_gemm_only_model_says_why_and_what_to_do(tmp_path):
    with pytest.raises(RecipeError) as err:
        _quantize(tmp_path, MLP, mode="dynamic")
    assert "'mlp' would run entirely in float (ONNX Runtime " in str(err.value)
    assert "dynamic mode quantizes Attention, Conv, EmbedLayerNormalization, Gather, LSTM, MatMul; not Gemm, GRU or RNN" in str(err.value)
    assert "use mode: static" in str(err.value)
    assert not (tmp_path / "quantize" / "mlp_int8.onnx").exists()


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"exclude_op_types": ["Conv2d"]}, "quantize: unknown op type 'Conv2d' in cnn.onnx; did you mean 'Conv'"),
        ({"exclude_nodes": ["/layer9/Conv"]}, "quantize: unknown node '/layer9/Conv' in cnn.onnx"),
    ],
)
def test_unknown_names_are_one_line_errors(tmp_path, cfg, message):
    with pytest.raises(RecipeError) as err:
        _quantize(tmp_path, CNN, **cfg)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_nothing_exported_is_an_error(tmp_path):
    with pytest.raises(RecipeError, match="no exported FP32 model to quantize at this point; add an export stage before quantize"):
        Pipeline([MLP, Quantize()], task="digits")  # refused before anything trains
    assert not tmp_path.joinpath("train").exists()


def test_tuning_records_every_trial_and_stops_at_the_first_pass(tmp_path):
    q = _quantize(tmp_path, CNN, calibration={"samples": 1}, tune={"tolerable_loss": 1e-9, "max_trials": 3}, min_agreement=0)[
        "cnn_int8"
    ].quant
    tuning = q.tuning
    trials = tuning.trials
    assert [t.index for t in trials] == list(range(len(trials))) and 1 <= len(trials) <= 3
    assert tuning.met == any(t.passed for t in trials)
    assert tuning.met == trials[-1].passed  # the search stops at the first pass
    assert len(trials) == 3 or tuning.met
    assert [t.kind for t in trials] == ["base", "calibration", "calibration"][: len(trials)]
    assert q.calibration["method"] == tuning.chosen.method and tuning.split == "val"
    easy = _quantize(tmp_path / "easy", CNN, tune={"tolerable_loss": 0.5})["cnn_int8"].quant.tuning
    assert easy.met and len(easy.trials) == 1 and easy.chosen.index == 0


def test_calibration_from_a_user_file(tmp_path):
    import numpy as np

    good = tmp_path / "calib.npy"
    np.save(good, np.random.default_rng(0).normal(size=(16, 1, 8, 8)).astype(np.float32))
    q = _quantize(tmp_path / "run", CNN, calibration={"file": str(good)}, min_agreement=0)["cnn_int8"].quant  # random inputs: ranges off
    assert q.float_ops == {} and q.calibration["file"] == str(good)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "calibration file '{path}' does not exist"),  # checked before any stage runs
        ("text", "is not a numpy .npy array"),
        ((16, 64), "has shape (16, 64), the task's inputs are (1, 8, 8)"),
    ],
)
def test_bad_calibration_source_is_a_one_line_error(tmp_path, content, message):
    import numpy as np

    from compress.errors import CompressError

    path = tmp_path / "calib.npy"
    if content == "text":
        path.write_text("not an array")
    elif content is not None:
        np.save(path, np.zeros(content, dtype=np.float32))
    with pytest.raises(CompressError) as err:
        _quantize(tmp_path / "run", CNN, calibration={"file": str(path)})
    text = str(err.value)
    assert message.format(path=path) in text and "\n" not in text
    assert content is None or "numpy.save" in text, "the fix says how to write the array"
    assert not (tmp_path / "run" / "quantize" / "cnn_int8.onnx").exists()


def test_inc_backend_quantizes_the_pytorch_model_and_reports_what_ort_leaves_in_float(tmp_path):
    pytest.importorskip("neural_compressor")
    q = _quantize(tmp_path, CNN, backend="inc", calibration={"samples": 64}, min_agreement=0.9)["cnn_int8"].quant  # a 2-epoch model
    assert q.backend == "inc" and q.vs_reference.top1_agreement >= 0.9
    assert "QLinearConv" in q.integer_ops and isinstance(q.float_ops, dict)
    assert (tmp_path / "quantize" / "cnn_int8.onnx").is_file()
