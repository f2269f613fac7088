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
        gap = export.models[name].parity
        assert gap.max_abs_diff < 1e-4 and gap.top1_agreement == 1.0 and gap.samples == 256
    model = onnx.load(str(run_dir / "export" / "student.onnx"))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_summary_json_follows_the_documented_schema(tiny_run):
    run_dir, _ = tiny_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["schema_version"] == 2 and summary["task"] == "digits"
    assert summary["metric"] == {"name": "accuracy", "higher_is_better": True, "test_samples": 360}
    by_name = {m["name"]: m for m in summary["models"]}
    assert set(by_name) == {"teacher", "student"}
    for entry in by_name.values():
        assert (run_dir / entry["onnx"]).is_file() and entry["kind"] == "fp32"
        assert entry["metric"]["metric"] == "accuracy" and entry["metric"]["split"] == "test" and entry["metric"]["runtime"] == "ort-cpu"
        assert 0.0 <= entry["metric"]["value"] <= 1.0
        assert entry["size_bytes"] == (run_dir / entry["onnx"]).stat().st_size
        for batch in ("1", "4"):
            stats = entry["bench"]["ort-cpu"]["latency_ms"][batch]
            assert 0 < stats["p50"] <= stats["p90"]
    assert by_name["student"]["params"] < by_name["teacher"]["params"]
    assert by_name["student"]["macs"] < by_name["teacher"]["macs"]
    assert by_name["teacher"]["stage"] == "train" and by_name["student"]["stage"] == "distill"


def test_metric_through_onnx_runtime_matches_pytorch(tiny_run):
    _, manifest = tiny_run
    student = manifest.records()["student"]
    torch_acc, ort_acc = (student.score("accuracy", runtime=r).value for r in ("torch", "ort-cpu"))
    assert ort_acc == pytest.approx(torch_acc, abs=1 / 360)  # at most one test image may flip


def test_report_has_the_comparison_table(tiny_run):
    run_dir, _ = tiny_run
    report = (run_dir / "report" / "report.md").read_text()
    assert "| model | arch | format | accuracy (ONNX Runtime, test) | params | MACs | ONNX size |" in report
    assert "| teacher | mlp | fp32 |" in report and "| student | mlp | fp32 |" in report
    assert "## Verdict" in report and "## Environment" in report
    models = {m["name"]: m for m in json.loads((run_dir / "summary.json").read_text())["models"]}
    change = 100 * (models["student"]["metric"]["value"] - models["teacher"]["metric"]["value"])
    assert f"| {change:+.2f} points (" in report  # the student's row of the verdict table
    student_params = json.loads((run_dir / "summary.json").read_text())["models"][1]["params"]
    assert f"{student_params:,}" in report


def test_benchmark_results_file_describes_the_runner(tiny_run):
    run_dir, _ = tiny_run
    results = json.loads((run_dir / "benchmark" / "results.json").read_text())
    target = results["targets"]["ort-cpu"]
    assert target["provider"] == "CPUExecutionProvider" and target["threads"] == 1 and target["cpu"] and target["packages"]["onnxruntime"]
    stats = results["models"]["student"]["bench"]["ort-cpu"]["latency_ms"]["4"]
    assert stats["p50"] <= stats["p90"] <= stats["p99"] and len(stats["round_p50"]) == 5 and isinstance(stats["noisy"], bool)
    assert stats["throughput"] > 0 and stats["loads"] == 5  # a fresh load per round
    assert np.isfinite(results["models"]["teacher"]["bench"]["ort-cpu"]["latency_ms"]["1"]["p50"])


def test_html_report_is_self_contained_with_figures(tiny_run):
    run_dir, _ = tiny_run
    html = (run_dir / "report" / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 5  # ratios, Pareto, training curves, latency distributions, parity
    assert 'src="plots/' not in html and "http://" not in html and "https://" not in html
    assert "<h2>Environment</h2>" in html and "<table>" in html and "<h2>Latency</h2>" in html
    for name in ("ratios", "pareto", "training", "latency", "parity"):
        png = (run_dir / "report" / "plots" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "![Each model against the reference](plots/ratios.png)" in (run_dir / "report" / "report.md").read_text()


def test_report_command_rebuilds_the_report_from_the_manifest(tiny_run, tmp_path):
    from tests.e2e.test_cli import cli

    run_dir, _ = tiny_run
    out = tmp_path / "again"
    result = cli("report", run_dir, "--out", out, "--title", "Rebuilt")
    assert result.returncode == 0, result.stderr
    text = (out / "report.md").read_text()
    assert text.startswith("# Rebuilt") and "| student | mlp |" in text and "target `ort-cpu`" in text
    assert "CPU flags:" in text and (out / "report.html").is_file()
    missing = cli("report", tmp_path)
    assert missing.returncode == 2 and "is not a run folder" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    unknown = cli("report", run_dir, "--out", out, "--reference", "studnet")
    assert unknown.returncode == 2 and "did you mean 'student'" in unknown.stderr
