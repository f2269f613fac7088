"""Stages compose: every order `validate` accepts runs correctly, and every model in summary.json is what
it claims (INT8 entries point at files ONNX Runtime runs on integer kernels, FP32 entries at float files);
an order that cannot work is refused before anything trains."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from compress.errors import RecipeError
from compress.pipeline import Pipeline

pytestmark = pytest.mark.slow

INTEGER_KERNELS = {
    "QLinearConv",
    "QLinearMatMul",
    "QGemm",
    "QLinearAdd",
    "MatMulInteger",
    "ConvInteger",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
}
TIMING = {"warmup": 1, "min_iters": 5, "min_time_s": 0, "rounds": 2}
TRAIN = {"train": {"name": "teacher", "model": {"arch": "mlp", "hidden": [32]}, "epochs": 3}}
DISTILL = {"distill": {"teacher": "teacher", "name": "student", "model": {"arch": "mlp", "hidden": [16]}, "epochs": 2}}
PRUNE = {
    "prune": {
        "model": "student",
        "steps": 1,
        "target": {"kind": "ratio", "value": 0.25},
        "finetune": {"epochs": 1, "final_epochs": 1},
        "timing": TIMING,
    }
}
QAD = {"qad": {"model": "student_pruned", "epochs": 1, "freeze_after": 0, "min_agreement": 0.5}}
QUANTIZE = {"quantize": {"min_agreement": 0.5, "calibration": {"samples": 64}}}
BENCH = {"benchmark": {"batch_sizes": [1], "timing": TIMING}}


def ort_ops(path: Path) -> set[str]:
    """The operators of `path` as ONNX Runtime runs it: the graph after all its optimizations (fusions)."""
    import onnxruntime as ort

    optimized = path.with_suffix(".ort-optimized.onnx")
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(optimized)
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ops = {node.op_type for node in onnx.load(str(optimized)).graph.node}
    optimized.unlink()
    return ops


def check_models_are_what_they_claim(run_dir: Path) -> dict[str, str]:
    """{name: kind} of every model in summary.json, each checked against its file."""
    summary = json.loads((run_dir / "summary.json").read_text())
    kinds = {}
    for entry in summary["models"]:
        kinds[entry["name"]] = entry["kind"]
        if not entry["onnx"]:
            assert entry["kind"] == "fp32", f"{entry['name']}: an INT8 model without its file"
            continue
        ops = ort_ops(run_dir / entry["onnx"])
        if entry["kind"] == "int8":
            assert ops & INTEGER_KERNELS, f"{entry['name']} claims INT8 but ORT runs {sorted(ops)}"
            assert entry["quant"]["format"]["label"] and entry["quant"]["source"] in kinds
        else:
            assert not ops & INTEGER_KERNELS and "QuantizeLinear" not in ops, f"{entry['name']} claims FP32 but ORT runs {sorted(ops)}"
            assert entry["quant"] is None
    return kinds


def test_every_step_in_the_order_a_user_writes_them(tmp_path):
    """train -> distill -> prune -> qad -> export -> quantize -> benchmark -> report: export leaves the qad
    model's INT8 file alone, and quantize takes only FP32 files."""
    stages = [TRAIN, DISTILL, PRUNE, QAD, "export", QUANTIZE, BENCH, "report"]
    manifest = Pipeline(stages, task="digits", target={"threads": 1}).run(tmp_path, quiet=True)
    kinds = check_models_are_what_they_claim(tmp_path)
    assert kinds == {
        "teacher": "fp32",
        "student": "fp32",
        "student_pruned": "fp32",
        "student_pruned_qad": "int8",
        "teacher_int8": "int8",
        "student_int8": "int8",
        "student_pruned_int8": "int8",
    }
    qad = manifest.records()["student_pruned_qad"]
    assert qad.onnx == "qad/student_pruned_qad.onnx" and qad.parity is None
    assert set(manifest.find("export").models) == {"teacher", "student", "student_pruned"}
    # the benchmark measured the INT8 file, so its figure is the INT8 model's
    assert qad.bench["ort-cpu"].latency_ms["1"].p50 > 0 and qad.size_bytes == (tmp_path / qad.onnx).stat().st_size
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| student_pruned_qad | mlp | u8s8" in report or "| student_pruned_qad | mlp | u8s8+7bit" in report


ORDERS = [
    pytest.param([TRAIN, "export", QUANTIZE, BENCH], {"teacher": "fp32", "teacher_int8": "int8"}, id="export-quantize-benchmark"),
    pytest.param(
        [TRAIN, {"qad": {"model": "teacher", "epochs": 1, "min_agreement": 0.5}}, "export", BENCH],
        {"teacher": "fp32", "teacher_qad": "int8"},
        id="qad-before-export",
    ),
    pytest.param(
        [TRAIN, "export", {"qad": {"model": "teacher", "epochs": 1, "min_agreement": 0.5}}, QUANTIZE, "export", BENCH],
        {"teacher": "fp32", "teacher_qad": "int8", "teacher_int8": "int8"},
        id="qad-then-quantize-then-export-again",
    ),
    pytest.param([TRAIN, "quantize"], "no exported FP32 model to quantize at this point", id="quantize-before-export"),
    pytest.param([TRAIN, "benchmark"], "no exported model to measure at this point", id="benchmark-before-export"),
    pytest.param(
        [TRAIN, {"qad": {"model": "teacher"}}, {"export": {"models": ["teacher_qad"]}}],
        "model 'teacher_qad' is INT8 and already has its ONNX file",
        id="export-of-a-qad-model",
    ),
    pytest.param([TRAIN, {"qad": {"model": "teacher"}}, "quantize"], "no exported FP32 model to quantize", id="quantize-after-qad-only"),
    pytest.param(
        [TRAIN, "export", "quantize", {"distill": {"teacher": "teacher_int8", "model": {"arch": "mlp"}}}],
        "model 'teacher_int8' is INT8 (an ONNX file); this stage works on an FP32 PyTorch model",
        id="distill-from-int8",
    ),
    pytest.param([TRAIN, "export", "quantize", {"prune": {"model": "teacher_int8"}}], "'teacher_int8' is INT8", id="prune-int8"),
    pytest.param([TRAIN, "export", "quantize", {"qad": {"model": "teacher_int8"}}], "'teacher_int8' is INT8", id="qad-of-int8"),
    pytest.param([TRAIN, "export", {"quantize": {"models": ["nobody"]}}], "model 'nobody' is not made by an earlier stage", id="unknown"),
]


@pytest.mark.parametrize(("stages", "expected"), ORDERS)
def test_stage_orders_run_correctly_or_are_refused_before_training(tmp_path, stages, expected):
    if isinstance(expected, str):
        with pytest.raises(RecipeError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            Pipeline(stages, task="digits")
        return
    Pipeline(stages, task="digits", target={"threads": 1}).run(tmp_path, quiet=True)
    assert check_models_are_what_they_claim(tmp_path) == expected


def test_validate_checks_every_recipe_and_names_the_file_of_a_broken_order(tmp_path, write_recipe, tiny_recipe):
    from tests.e2e.test_cli import cli

    good = write_recipe(tiny_recipe, "good.yaml")
    tiny_recipe["stages"] = [tiny_recipe["stages"][0], "quantize", "export"]
    bad = write_recipe(tiny_recipe, "bad.yaml")
    result = cli("validate", bad, good)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    message = f"{bad}: stages[1] (quantize): no exported FP32 model to quantize at this point; add an export stage before quantize"
    assert message in result.stderr
    assert f"{good}: ok (5 stages" in result.stdout, "the recipes after a bad one are checked too"
