"""summary.json and the manifest are typed records with a published JSON Schema; run folders written
before the typed records (schema 1, tests/fixtures/run_v1, made by edge-compress 0.1.0 at d76a704) still
render and resume."""

from __future__ import annotations

import json
import shutil

import pytest

from compress.manifest import Manifest
from compress.pipeline import Pipeline
from tests.conftest import REPO
from tests.e2e.test_cli import cli

V1_RUN = REPO / "tests" / "fixtures" / "run_v1"
V1_RECIPE = REPO / "tests" / "fixtures" / "run_v1_recipe.yaml"


@pytest.fixture
def v1_run(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(V1_RUN, run)
    return run


def test_schema_command_prints_a_schema_the_written_summary_validates_against(tmp_path, tiny_recipe, write_recipe):
    jsonschema = pytest.importorskip("jsonschema")
    result = cli("schema", "summary")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["$schema"].endswith("2020-12/schema") and {"models", "schema_version", "metric"} <= set(schema["properties"])
    tiny_recipe["stages"].insert(3, {"quantize": {"models": ["student"], "min_agreement": 0}})
    Pipeline.from_recipe(write_recipe(tiny_recipe)).run(tmp_path / "run", quiet=True)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    jsonschema.validate(summary, schema)
    kinds = {m["name"]: m["kind"] for m in summary["models"]}
    assert kinds == {"teacher": "fp32", "student": "fp32", "student_int8": "int8"}
    broken = {**summary, "models": [{**summary["models"][0], "kind": "int4"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    manifest_schema = json.loads(cli("schema", "manifest").stdout)
    jsonschema.validate(json.loads((tmp_path / "run" / "manifest.json").read_text()), manifest_schema)


def test_schema_of_an_unknown_document_is_exit_2():
    result = cli("schema", "recipes")
    assert result.returncode == 2 and "invalid choice: 'recipes'" in result.stderr


def test_a_schema_1_manifest_is_read_as_typed_records(v1_run):
    raw = json.loads((v1_run / "manifest.json").read_text())
    assert raw["schema_version"] == 1 and "metrics" in raw["stages"][0]["models"]["teacher"]
    manifest = Manifest.load(v1_run / "manifest.json")
    records = manifest.records()
    assert {n: r.kind for n, r in records.items()} == {"teacher": "fp32", "student": "fp32", "student_int8": "int8"}
    assert manifest.metric.name == "accuracy" and manifest.metric.higher_is_better
    student = records["student"]
    assert student.training.epochs_run == 3 and len(student.training.history) == 3  # kept in the distill stage's metrics then
    assert student.score("accuracy", runtime="torch").value == raw["stages"][1]["models"]["student"]["metrics"]["torch_test"]["accuracy"]
    assert student.parity.top1_agreement is not None and student.bench["ort-cpu"].latency_ms["1"].p50 > 0
    int8 = records["student_int8"]
    assert int8.quant.source == "student" and int8.quant.reference == "fp32 onnx" and int8.quant.vs_reference.samples == 360
    assert int8.score("accuracy", runtime="onnxruntime") is not None


def test_a_schema_1_run_still_renders(v1_run):
    result = cli("report", v1_run)
    assert result.returncode == 0, result.stderr
    md = (v1_run / "report" / "report.md").read_text()
    assert "| student_int8 | mlp | u8s8" in md and "## Quantization" in md and "## Latency" in md


@pytest.mark.parametrize("host", ["this machine", "x86-vnni", "x86-avx2"])
def test_a_schema_1_run_resumes_reusing_every_finished_stage(v1_run, monkeypatch, host):
    import compress.cpu
    from compress.cpu import resolve_cpu

    avx2 = frozenset({"avx", "avx2", "fma3"})
    if host != "this machine":  # the host kind is what its features say: both kinds are tried on any machine
        monkeypatch.setattr(
            compress.cpu, "host_features", lambda: avx2 | ({"avx512f", "avx512bw", "avx512vnni"} if host == "x86-vnni" else set())
        )
    made_on = json.loads((v1_run / "manifest.json").read_text())["environment"]["deploy_cpu"]["host"]
    assert made_on == "x86-vnni"
    manifest = Pipeline.from_recipe(V1_RECIPE).run(v1_run, resume=True, quiet=True)
    # the report folder is not part of the fixture: that stage runs again; so do the INT8 ones (and what
    # measures them) on another kind of CPU than the fixture's, whose format and check depend on it
    same_cpu = resolve_cpu("auto").host.name == made_on
    again = "reused" if same_cpu else "done"
    assert [(s.id, s.status) for s in manifest.stages] == [
        ("train", "reused"),
        ("distill", "reused"),
        ("export", "reused"),
        ("quantize", again),
        ("benchmark", again),
        ("report", "done"),
    ]
    saved = json.loads((v1_run / "manifest.json").read_text())
    assert saved["schema_version"] == 2 and "metrics" not in saved["stages"][0]["models"]["teacher"]
    summary = json.loads((v1_run / "summary.json").read_text())
    assert summary["schema_version"] == 2 and [m["kind"] for m in summary["models"]] == ["fp32", "fp32", "int8"]
