"""The whole product on a tiny recipe: every artifact is there, checked, and described."""

import json

import numpy as np
import onnx
import pytest

from compress.fsio import sha256_file
from compress.pipeline import Pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import yaml

    from tests.conftest import TINY

    folder = tmp_path_factory.mktemp("smoke")
    recipe = folder / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    run_dir = folder / "run"
    manifest = Pipeline.from_recipe(recipe).run(run_dir, quiet=True)
    return run_dir, manifest


def test_manifest_records_every_stage_with_hashed_outputs(tiny_run):
    run_dir, manifest = tiny_run
    assert [s.id for s in manifest.stages] == ["train", "distill", "export", "benchmark", "report"]
    assert all(s.status == "done" and s.duration_s >= 0 for s in manifest.stages)
    on_disk = json.loads((run_dir / "manifest.json").read_text())
    assert on_disk["environment"]["packages"]["torch"] and on_disk["environment"]["cores"] >= 1
    for stage in manifest.stages:
        for path, digest in stage.outputs.items():
            assert path.startswith(stage.id + "/") and sha256_file(run_dir / path) == digest
    distill = manifest.find("distill")
    assert distill.parent == "train" and "train/teacher.pt" in distill.inputs
    assert set(distill.models) == {"student"}


def test_exported_models_pass_checker_and_match_pytorch(tiny_run):
    run_dir, manifest = tiny_run
    export = manifest.find("export")
    for name in ("teacher", "student"):
        onnx.checker.check_model(str(run_dir / "export" / f"{name}.onnx"), full_check=True)
        gap = export.metrics[name]
        assert gap["max_abs_diff"] < 1e-4 and gap["top1_agreement"] == 1.0 and gap["samples"] == 256
    model = onnx.load(str(run_dir / "export" / "student.onnx"))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_summary_json_follows_the_documented_schema(tiny_run):
    run_dir, _ = tiny_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["schema_version"] == 1 and summary["task"] == "digits"
    by_name = {m["name"]: m for m in summary["models"]}
    assert set(by_name) == {"teacher", "student"}
    for entry in by_name.values():
        assert (run_dir / entry["onnx"]).is_file()
        assert entry["metric"]["name"] == "accuracy" and entry["metric"]["split"] == "test"
        assert 0.0 <= entry["metric"]["value"] <= 1.0
        assert entry["size_bytes"] == (run_dir / entry["onnx"]).stat().st_size
        for batch in ("1", "4"):
            stats = entry["latency_ms"]["ort-cpu"][batch]
            assert 0 < stats["p50"] <= stats["p90"]
    assert by_name["student"]["params"] < by_name["teacher"]["params"]
    assert by_name["student"]["macs"] < by_name["teacher"]["macs"]
    assert by_name["teacher"]["stage"] == "train" and by_name["student"]["stage"] == "distill"


def test_metric_through_onnx_runtime_matches_pytorch(tiny_run):
    _, manifest = tiny_run
    torch_acc = manifest.find("distill").metrics["student"]["test_accuracy_torch"]
    ort_acc = manifest.find("benchmark").metrics["student"]["metric"]["value"]
    assert ort_acc == pytest.approx(torch_acc, abs=1 / 360)  # at most one test image may flip


def test_report_has_the_comparison_table(tiny_run):
    run_dir, _ = tiny_run
    report = (run_dir / "report" / "report.md").read_text()
    assert "| model | arch | accuracy (ONNX Runtime, test) | params | MACs | ONNX size |" in report
    assert "| teacher | mlp |" in report and "| student | mlp |" in report
    assert "Relative to `teacher`" in report and "## Environment" in report
    models = {m["name"]: m for m in json.loads((run_dir / "summary.json").read_text())["models"]}
    change = 100 * (models["student"]["metric"]["value"] - models["teacher"]["metric"]["value"])
    assert f"- `student`: accuracy {change:+.2f} points" in report
    student_params = json.loads((run_dir / "summary.json").read_text())["models"][1]["params"]
    assert f"{student_params:,}" in report


def test_benchmark_results_file_describes_the_runner(tiny_run):
    run_dir, _ = tiny_run
    results = json.loads((run_dir / "benchmark" / "results.json").read_text())
    assert results["runner"]["provider"] == "CPUExecutionProvider" and results["runner"]["threads"] == 1
    assert np.isfinite(results["models"]["teacher"]["latency_ms"]["ort-cpu"]["1"]["p50"])
