"""An INT8 model's agreement with its FP32 parent is measured on every benchmarked runtime, and one below
the bound is flagged in the stage output, the report's main table and summary.json. The quantize stage
checks agreement on ONNX Runtime only; OpenVINO once ran a GRU model's INT8 file at chance unflagged."""

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import compress.quant
from compress.bench.fidelity import FIDELITY_BOUND, compare_outputs
from compress.bench.runners import target_available
from compress.pipeline import Pipeline
from compress.stages import Benchmark, Export, Quantize, Report, Train

TARGETS = ["ort-cpu"] + (["openvino-cpu"] if target_available("openvino-cpu") else [])
TIMING = {"warmup": 1, "warmup_time_s": 0, "rounds": 2, "min_iters": 5, "min_time_s": 0}


def _spoil_last_weight_scales(path) -> None:
    """Rescale the output layer's per-channel weight scales from 1/20 to 20x: a few classes dominate."""
    model = onnx.load(str(path))
    weights = {t.name: t for t in model.graph.initializer}
    dequantize = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and len(getattr(weights.get(n.input[0]), "dims", [])) == 2]
    scale = weights[dequantize[-1].input[1]]
    values = numpy_helper.to_array(scale)
    scale.CopyFrom(numpy_helper.from_array((values * np.geomspace(0.05, 20, values.size)).astype(values.dtype), scale.name))
    onnx.save(model, str(path))


@pytest.mark.slow
def test_a_bad_int8_is_flagged_on_every_runtime_in_stage_output_report_and_summary(tmp_path, monkeypatch, caplog):
    real = compress.quant.quantize_onnx

    def harmful(source, dest, **kwargs):  # only the `_bad` model; its quantize stage accepts it (min_agreement: 0)
        real(source, dest, **kwargs)
        if "_bad" in dest.name:
            _spoil_last_weight_scales(dest)

    monkeypatch.setattr(compress.quant, "quantize_onnx", harmful)
    stages = [
        Train(name="mlp", model={"arch": "mlp", "hidden": [64]}, epochs=10),
        Export(),
        Quantize(suffix="_bad", min_agreement=0, calibration={"samples": 64}),
        Quantize(models=["mlp"], suffix="_int8", calibration={"samples": 64}),
        Benchmark(targets=TARGETS, batch_sizes=[1], timing=TIMING),
        Report(),
    ]
    manifest = Pipeline(stages, task="digits", target={"threads": 1}).run(tmp_path, quiet=True)
    models = manifest.find("benchmark").models
    summary = {m["name"]: m for m in json.loads((tmp_path / "summary.json").read_text())["models"]}
    report = (tmp_path / "report" / "report.md").read_text()
    html = (tmp_path / "report" / "report.html").read_text()
    assert all(b.agreement is None and b.flag is None for b in models["mlp"].bench.values())  # FP32: nothing to compare with
    for target in TARGETS:
        good, bad = models["mlp_int8"].bench[target], models["mlp_bad"].bench[target]
        assert good.agreement >= FIDELITY_BOUND and good.flag is None, (target, good)
        assert bad.agreement < 0.8, (target, bad)
        assert bad.flag == f"INT8 top-1 agreement with FP32 'mlp' is {bad.agreement:.4f} on {target} (test, 360 samples), below 0.98"
        assert f"warning: mlp_bad: {bad.flag}" in caplog.text
        in_summary = summary["mlp_bad"]["bench"][target]
        assert in_summary["flag"] == bad.flag and in_summary["agreement"] == pytest.approx(bad.agreement)
        assert summary["mlp_int8"]["bench"][target]["flag"] is None and summary["mlp_int8"]["bench"][target]["agreement"] >= 0.98
        assert f"⚠ **agreement with FP32 {bad.agreement:.4f}**" in report and f"> **Warning:** `mlp_bad`: {bad.flag}." in report
        assert f"⚠ <strong>agreement with FP32 {bad.agreement:.4f}</strong>" in html
    row = next(line for line in report.splitlines() if line.startswith("| mlp_bad |"))
    assert row.count("⚠") == len(TARGETS) and "⚠" not in next(line for line in report.splitlines() if line.startswith("| mlp_int8 |"))


def test_regression_outputs_are_compared_by_relative_error():
    reference = np.array([[1.0, 2.0], [3.0, -4.0]])
    where = {"classification": False, "reference_name": "net", "target": "ort-cpu", "split": "val"}
    close, flag = compare_outputs(reference, reference * 1.01, **where)
    assert close == pytest.approx(0.99) and flag is None
    far, flag = compare_outputs(reference, reference * 1.5, **where)
    assert far == pytest.approx(0.5) and flag == "INT8 1 - relative error with FP32 'net' is 0.5000 on ort-cpu (val, 2 samples), below 0.98"
    assert compare_outputs(reference, -reference, **where)[0] == 0.0
