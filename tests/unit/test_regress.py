"""Regression checks, baselines and JUnit XML on synthetic timing data (no model is run)."""

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from compress.bench import regress as regress_mod
from compress.bench.baseline import load_baseline, save_baseline
from compress.bench.compare import compare_rounds
from compress.bench.fingerprint import differences, fingerprint
from compress.bench.junit import junit_xml
from compress.bench.model_bench import BenchSettings
from compress.bench.regress import RegressResult, against_baseline, latency_check, metric_check, parse_fraction
from compress.errors import ArtifactError, CompressError, RecipeError


def _stats(level: float, seed: int = 0) -> dict:
    rounds = (level * (1 + 0.01 * np.random.default_rng(seed).standard_normal(10))).tolist()
    return {"p50": level, "p90": level * 1.1, "p99": level * 1.3, "round_p50": rounds, "noisy": False}


def _result(level: float = 1.0, metric: float | None = 0.95, seed: int = 0) -> dict:
    return {
        "model": {"path": "m.onnx", "sha256": "0" * 64, "input_shape": [1, 8, 8]},
        "settings": BenchSettings(input_shape=(1, 8, 8)).model_dump(mode="json"),
        "runner": {"target": "ort-cpu", "runtime": "onnxruntime 1.0", "provider": "CPUExecutionProvider", "threads": 1},
        "fingerprint": fingerprint({"target": "ort-cpu", "runtime": "onnxruntime 1.0", "provider": "CPUExecutionProvider", "threads": 1}),
        "latency": {"1": _stats(level, seed)},
        "memory": {},
        "metric": None
        if metric is None
        else {"name": "accuracy", "value": metric, "split": "test", "higher_is_better": True, "task": None},
    }


@pytest.fixture
def baseline_file(tmp_path):
    path = tmp_path / "base.json"
    save_baseline(_result(), path, command="edge-compress bench m.onnx")
    return path


@pytest.fixture
def measured(monkeypatch):
    """Make `against_baseline` see synthetic measurements instead of timing a model."""
    now = {}

    def fake_bench(model, settings, runner=None):
        return now["result"]

    monkeypatch.setattr(regress_mod, "bench_model", fake_bench)
    monkeypatch.setattr(regress_mod, "make_runner", lambda spec: type("R", (), {"describe": lambda self: _result()["runner"]})())
    return now


def test_unchanged_model_passes_and_a_slower_one_fails(baseline_file, measured):
    baseline = load_baseline(baseline_file)
    measured["result"] = _result(1.02, seed=1)
    ok = against_baseline("m.onnx", baseline, max_slowdown=0.10)
    assert ok.passed and ok.exit_code == 0 and ok.checks[0].details["verdict"] == "unchanged"
    measured["result"] = _result(1.25, seed=2)
    bad = against_baseline("m.onnx", baseline, max_slowdown=0.10)
    assert not bad.passed and bad.exit_code == 1 and bad.checks[0].details["verdict"] == "slower"
    assert bad.lines()[0].startswith("FAIL latency[batch=1]: slower")


def test_metric_drop_is_checked_only_when_asked(baseline_file, measured):
    baseline = load_baseline(baseline_file)
    measured["result"] = _result(1.0, metric=0.93, seed=3)
    assert against_baseline("m.onnx", baseline, max_slowdown=0.1).passed
    failed = against_baseline("m.onnx", baseline, max_slowdown=0.1, max_metric_drop=0.01)
    assert [c.name for c in failed.checks if not c.passed] == ["metric[accuracy]"]
    assert against_baseline("m.onnx", baseline, max_slowdown=0.1, max_metric_drop=0.03).passed


def test_metric_drop_without_a_baseline_metric_is_bad_input(tmp_path, measured):
    path = tmp_path / "nometric.json"
    save_baseline(_result(metric=None), path)
    with pytest.raises(RecipeError, match="has none; save it with --task"):
        against_baseline("m.onnx", load_baseline(path), max_slowdown=0.1, max_metric_drop=0.01)


def test_environment_mismatch_is_reported_or_refused(tmp_path, measured):
    other = _result()
    other["fingerprint"] = {**other["fingerprint"], "cpu": "Some Other CPU", "threads": 4}
    path = tmp_path / "other.json"
    save_baseline(other, path)
    measured["result"] = _result(1.0, seed=5)
    result = against_baseline("m.onnx", load_baseline(path), max_slowdown=0.1)
    assert result.passed and any("cpu: Some Other CPU ->" in d for d in result.environment_differences)
    assert any(w.startswith("environment differs from the baseline's") for w in result.warnings)
    with pytest.raises(ArtifactError, match="differs from baseline"):
        against_baseline("m.onnx", load_baseline(path), max_slowdown=0.1, strict_environment=True)


def test_lower_is_better_metrics_drop_when_they_rise():
    mse = {"name": "mse", "higher_is_better": False}
    assert not metric_check({**mse, "value": 0.30}, {**mse, "value": 0.20}, max_drop=0.05, against="b").passed
    assert metric_check({**mse, "value": 0.10}, {**mse, "value": 0.20}, max_drop=0.0, against="b").passed


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "does not exist"),
        ("{not json", "is not valid JSON (line 1"),
        ('{"kind": "something-else"}', "is not an edge-compress baseline"),
        ('{"kind": "edge-compress-baseline", "schema_version": 99}', "schema version 99"),
        ('{"kind": "edge-compress-baseline", "schema_version": 1, "created": "x"}', "is corrupt (model: Field required)"),
    ],
)
def test_bad_baselines_are_one_line_errors_with_the_fix(tmp_path, content, fragment):
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ArtifactError) as err:
        load_baseline(path)
    message = str(err.value)
    assert fragment in message and "\n" not in message and "edge-compress bench MODEL --save-baseline" in message


def test_truncated_baseline_rounds_are_corrupt(baseline_file):
    data = json.loads(baseline_file.read_text())
    data["latency"]["1"]["round_p50"] = [1.0]
    baseline_file.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=r"latency\.1\.round_p50"):
        load_baseline(baseline_file)


def test_junit_xml_has_a_case_per_check_and_failures_for_regressions():
    slow = latency_check(
        "1", compare_rounds([1.3] * 5 + [1.31] * 5, [1.0] * 5 + [1.01] * 5, paired=False), max_slowdown=0.1, alpha=0.05, against="baseline"
    )
    fine = latency_check(
        "32", compare_rounds([1.0, 1.01] * 5, [1.0, 1.01] * 5, paired=False), max_slowdown=0.1, alpha=0.05, against="baseline"
    )
    result = RegressResult("m.onnx", "baseline", "base.json", [slow, fine], warnings=["noisy"], seconds=1.5)
    root = ET.fromstring(junit_xml(result))
    suite = root.find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1" and root.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"latency[batch=1]", "latency[batch=32]"}
    assert cases["latency[batch=1]"].find("failure").get("message").startswith("slower")
    assert cases["latency[batch=32]"].find("failure") is None
    assert {p.get("name"): p.get("value") for p in suite.find("properties")}["warning.0"] == "noisy"


def test_fingerprint_differences_name_each_field():
    a = {"cpu": "X", "cpu_flags": ["avx2", "avx512f"], "threads": 1, "packages": {"onnxruntime": "1.0"}}
    b = {"cpu": "X", "cpu_flags": ["avx2"], "threads": 2, "packages": {"onnxruntime": "1.1"}}
    assert differences(a, b) == ["cpu_flags: -avx512f", "threads: 1 -> 2", "onnxruntime: 1.0 -> 1.1"]
    assert differences(a, a) == []


@pytest.mark.parametrize(("text", "value"), [("10%", 0.10), ("0.1", 0.1), (" 5 % ", 0.05), ("0%", 0.0)])
def test_slowdown_fractions(text, value):
    assert parse_fraction(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["ten", "-5%"])
def test_bad_slowdown_fractions(text):
    with pytest.raises(CompressError):
        parse_fraction(text)
