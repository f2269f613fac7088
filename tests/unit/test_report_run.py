"""The report's account of the run: date, every stage with its duration (the report stage, not yet recorded
when it writes, included), each model's files, the recipe as YAML; and the HTML a browser gets."""

import shutil

import pytest
import yaml

from compress.records import MetricInfo, ModelRecord, RunEnvironment, Summary
from compress.report.markdown import render_markdown
from compress.report.markdown_run import duration
from compress.report.run_info import RunInfo, StageTime, load_run_info
from compress.report.write import render_html, write_report
from tests.conftest import REPO

V1_RUN = REPO / "tests" / "fixtures" / "run_v1"
ACCURACY = MetricInfo(name="accuracy", higher_is_better=True, test_samples=360)


def _model(name, **fields):
    record = {"name": name, "stage": "x", "spec": {"arch": "mlp"}, "params": 100, "size_bytes": 400}
    record["scores"] = [{"split": "test", "runtime": "ort-cpu", "metric": "accuracy", "value": 0.9}]
    record["bench"] = {"ort-cpu": {"runner": {}, "latency_ms": {"1": {"p50": 1.0, "p90": 1.1}}}}
    return ModelRecord.model_validate(record | fields)


def _run_info():
    recipe = {"name": "demo", "seed": 0, "task": {"name": "digits", "factory": None}, "stages": [{"train": {"epochs": 3}}]}
    recipe["acceptance"] = {"min_speedup": {"1": 3.0, "32": 6.0}}  # as the manifest's JSON holds it
    stages = [
        StageTime(id="train", type="train", status="done", started="2026-11-28T02:37:46+00:00", duration_s=37.9),
        StageTime(id="benchmark", type="benchmark", status="reused", started="2026-11-28T02:38:24+00:00", duration_s=6.6),
        StageTime(id="report", type="report", status="running", started="2026-11-28T02:38:31+00:00"),
    ]
    return RunInfo(name="demo", run_dir="/runs/demo", created="2026-11-28T02:37:46+00:00", recipe=recipe, stages=stages)


def _render(run, *models):
    summary = Summary.of("digits", ACCURACY, "ort-cpu", 1, list(models) or [_model("teacher")])
    return render_markdown(summary, title="t", environment=RunEnvironment(), reference="teacher", run=run)


def test_the_durations_table_lists_every_stage_and_the_one_writing_the_report():
    text = _render(_run_info())
    assert "Run `demo`, started 2026-11-28 02:37 UTC; its 2 timed stages (of 3; the report's own is not counted) took 44.5 s" in text
    assert "| train | train | 02:37:46 | 37.9 s | done |" in text
    assert "| benchmark | benchmark | 02:38:24 | 6.6 s | reused from an earlier run (its first time shown) |" in text
    assert "| report | report | 02:38:31 | writing this report | running |" in text
    assert "| **total** | | | **44.5 s** | |" in text
    assert [duration(s) for s in (4.04, 75.2, 3725)] == ["4.0 s", "1 min 15 s", "1 h 02 min"]


def test_files_of_each_model_and_the_recipe_as_yaml():
    teacher = _model("teacher", onnx="export/teacher.onnx", checkpoint="train/teacher.pt")
    int8 = _model("teacher_int8", kind="int8", onnx="quantize/teacher_int8.onnx")
    text = _render(_run_info(), teacher, int8)
    assert "Paths relative to the run folder `/runs/demo`." in text
    assert "| teacher | fp32 | `export/teacher.onnx` | `train/teacher.pt` |" in text
    assert "| teacher_int8 | int8 | `quantize/teacher_int8.onnx` | - |" in text
    block = text.split("```yaml\n", 1)[1].split("\n```", 1)[0]
    expected = {"name": "demo", "seed": 0, "task": {"name": "digits"}, "stages": [{"train": {"epochs": 3}}]}
    assert yaml.safe_load(block) == expected | {"acceptance": {"min_speedup": {1: 3.0, 32: 6.0}}}  # batch sizes as written
    html = render_html(text, "t")
    assert "<details>\n<summary>The recipe as validated" in html and '<code class="language-yaml">name: demo' in html


def test_run_info_from_a_manifest_puts_the_running_report_in_place_of_an_earlier_record(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(V1_RUN, run)
    running = StageTime(id="report", type="report", status="running", started="2026-11-28T00:00:00+00:00")
    info = load_run_info(run, running=running)
    assert [s.id for s in info.stages] == ["train", "distill", "export", "quantize", "benchmark", "report"]
    assert info.stages[-1].duration_s is None and info.stages[0].duration_s == pytest.approx(1.108)
    assert info.name == "tiny_v1" and info.created.startswith("2026-11-27") and info.recipe["stages"]
    assert load_run_info(tmp_path / "nothing") is None


def test_html_keeps_notes_apart_and_nests_the_environment_lists():
    env = RunEnvironment.model_validate({"cpu": "EPYC", "cores": 2, "targets": {"ort-cpu": {"runtime": "ort", "cpu_flags": ["avx2"]}}})
    flagged = _model("student", bench={"ort-cpu": {"runner": {}, "latency_ms": {}, "flag": "INT8 agreement 0.5"}})
    text = render_markdown(Summary.of("digits", ACCURACY, "ort-cpu", 1, [flagged, flagged]), title="t", environment=env, reference=None)
    html = render_html(text, "t")
    assert html.count("<p><strong>Warning:</strong>") == 2  # a paragraph per note, not one running both together
    assert "<li>target <code>ort-cpu</code>: ort, None, None threads<ul>\n<li>CPU flags: avx2</li>" in html


def test_write_report_draws_the_new_figures_and_drops_a_stale_waterfall(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "waterfall.png").write_bytes(b"old")
    history = [{"epoch": e, "val_accuracy": 0.5 + e / 10} for e in (1, 2)]
    teacher = _model("teacher", params=1000, training={"history": history, "best_epoch": 2})
    student = _model("student", parent="teacher")
    summary = Summary.of("digits", ACCURACY, "ort-cpu", 1, [teacher, student])
    md, html = write_report(summary, {}, tmp_path, title="t", reference="teacher", run=_run_info())
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["pareto.png", "ratios.png", "training.png"]
    text = md.read_text()
    assert "![Each model against the reference](plots/ratios.png)" in text and "## Training curves" in text
    assert html.read_text().count('src="data:image/png;base64,') == 3
