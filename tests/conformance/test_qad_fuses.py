"""QAD fuses what static PTQ fuses (issue 17): for each family QAD can train, every operator ONNX Runtime
runs on an integer kernel in the static PTQ file of a model runs on one in the QAD file of the same model;
families whose layers QAD cannot see into refuse in one line, before any training. Tiny epochs: the
bounds are about which kernels run, not accuracy."""

from __future__ import annotations

import pytest

from compress.errors import ModelError
from compress.pipeline import Pipeline
from compress.quant.census import integer_coverage
from compress.stages import Export, Load, Qad, Quantize, Train
from tests.conformance.families import FAMILIES

pytestmark = pytest.mark.slow

FUSED = ["residual_cnn", "inverted_residual", "concat_branches", "se_gating", "grouped_conv", "cnn1d", "mlp_layernorm"]
OPAQUE = {"gru": "GRU", "lstm": "LSTM", "transformer_encoder": "TransformerEncoder"}
MIN_AGREEMENT = 0.5  # one epoch: near-tied logits; agreement is the qad and quantize tests' business


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Per family, one run (built on first use): the model trained 1 epoch, QAD'd from it (1 epoch), then
    exported and quantized statically; QAD runs before export so its check skips timing."""
    cache = {}

    def get(family: str):
        if family not in cache:
            folder = tmp_path_factory.mktemp(family)
            stages = [
                Train(name="model", model={"factory": FAMILIES[family]}, epochs=1, batch_size=256),
                Qad(model="model", epochs=1, batch_size=256, freeze_after=0, calibration_samples=64, min_agreement=MIN_AGREEMENT),
                Export(models=["model"]),
                Quantize(calibration={"samples": 64}, min_agreement=MIN_AGREEMENT),
            ]
            manifest = Pipeline(stages, task="digits", seed=0).run(folder, quiet=True)
            cache[family] = (folder, manifest.records())
        return cache[family]

    return get


@pytest.mark.parametrize("family", FUSED)
def test_qad_runs_on_integer_kernels_whatever_static_ptq_does(family, runs):
    folder, records = runs(family)
    ptq, qad = folder / records["model_int8"].onnx, folder / records["model_qad"].onnx
    coverage = integer_coverage(ptq, qad)
    assert coverage.covered, f"{family}: {coverage.describe()}"
    assert set(coverage.reference_integer) <= set(coverage.candidate_integer)


@pytest.mark.parametrize("family", FUSED)
def test_recorded_float_ops_of_qad_are_no_more_than_ptqs(family, runs):
    _, records = runs(family)
    ptq, qad = records["model_int8"].quant, records["model_qad"].quant
    assert set(qad.float_ops) <= set(ptq.float_ops), (qad.float_ops, ptq.float_ops)
    assert sum(qad.float_ops.values()) <= sum(ptq.float_ops.values())


@pytest.mark.parametrize("family", list(OPAQUE))
def test_qad_refuses_opaque_layers_in_one_line_before_training(family, tmp_path):
    stages = [Load(name="model", model={"factory": FAMILIES[family]}), Qad(model="model", epochs=1)]
    with pytest.raises(ModelError) as err:
        Pipeline(stages, task="digits", seed=0).run(tmp_path, quiet=True)
    message = str(err.value)
    assert f"qad: cannot fake-quantize inside the {OPAQUE[family]} layer" in message and "\n" not in message
    assert "use post-training quantization (the quantize stage)" in message
    assert not list((tmp_path / "qad").glob("**/*.pt")) and not (tmp_path / "qad" / "model_qad.onnx").exists()  # nothing trained
