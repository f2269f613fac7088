"""The qad stage: a fake-quantized student trained against the FP32 teacher, written as an INT8 ONNX file
that ORT runs on integer kernels and that agrees with the PyTorch fake-quantized model."""

import pytest

from compress.errors import ModelError, RecipeError
from compress.pipeline import Pipeline
from compress.stages import Export, Qad, Train

pytestmark = pytest.mark.slow

CNN = Train(name="cnn", model={"arch": "resnet_cnn", "width": 8, "blocks": [1, 1]}, epochs=2)


def test_qad_writes_a_fused_int8_model_that_matches_its_fake_quantized_twin(tmp_path):
    stages = [CNN, Export(), Qad(model="cnn", epochs=3, freeze_after=1, calibration_samples=64)]
    manifest = Pipeline(stages, task="digits").run(tmp_path, quiet=True)
    record = manifest.find("qad").models["cnn_qad"]
    q = record.quant
    assert record.kind == "int8" and q.method == "qad" and q.reference == "fake-quant"
    assert q.float_ops == {} and q.integer_ops.get("QLinearConv", 0) >= 5 and q.integer_ops.get("QLinearAdd", 0) >= 2
    assert q.vs_reference.samples == 360 and q.vs_reference.top1_agreement >= 0.99
    assert [h["ranges_frozen"] for h in record.training.history] == [0.0, 1.0, 1.0]
    onnx, fake = (record.score("accuracy", runtime=r).value for r in ("onnxruntime", "fake-quant"))
    assert q.teacher == "cnn (FP32)" and abs(onnx - fake) <= 0.01
    int8, fp32 = tmp_path / "qad" / "cnn_qad.onnx", tmp_path / "export" / "cnn.onnx"
    assert int8.stat().st_size < fp32.stat().st_size  # int8 weights (tiny model: the Q/DQ nodes weigh about as much)
    assert record.onnx == "qad/cnn_qad.onnx"


def test_qad_kd_on_regression_is_a_one_line_error(tmp_path):
    mlp = Train(name="mlp", model={"arch": "mlp", "hidden": [16]}, epochs=1)
    with pytest.raises(RecipeError) as err:
        Pipeline([mlp, Qad(model="mlp", epochs=1)], task="diabetes").run(tmp_path, quiet=True)
    assert "qad loss 'kd' needs a classification task" in str(err.value) and "\n" not in str(err.value)


def test_qad_of_an_attention_model_is_refused_in_one_line_before_training(tmp_path):
    tokens = Train(name="vit", model={"arch": "transformer", "dim": 16, "heads": 2, "depth": 1}, epochs=1)
    with pytest.raises(ModelError) as err:
        Pipeline([tokens, Qad(model="vit", epochs=1)], task="digits").run(tmp_path, quiet=True)
    assert "qad: cannot fake-quantize inside the MultiheadAttention layer 'layer1.attn'" in str(err.value)
    assert "\n" not in str(err.value) and not (tmp_path / "qad" / "vit_qad.onnx").exists()


def test_qad_can_learn_the_teachers_outputs_on_unlabeled_inputs_too(tmp_path, caplog):
    from compress.errors import DataError

    cnn1d = Train(name="cnn", model={"arch": "cnn1d", "width": 8}, epochs=1)
    qad = Qad(model="cnn", epochs=1, freeze_after=0, calibration_samples=64, unlabeled=True)
    with caplog.at_level("INFO", logger="compress"):
        manifest = Pipeline([cnn1d, Export(), qad], task="mnist1d").run(tmp_path / "m", quiet=True)
    assert "cnn_qad: 20,000 unlabeled inputs join the 3,600 training samples" in caplog.text
    assert manifest.model("cnn_qad").kind == "int8"
    with pytest.raises(DataError, match="task 'digits' has no unlabeled inputs"):
        Pipeline([CNN, Export(), Qad(model="cnn", epochs=1, unlabeled=True)], task="digits").run(tmp_path / "d", quiet=True)
    assert not (tmp_path / "d" / "qad" / "cnn_qad.onnx").exists()
