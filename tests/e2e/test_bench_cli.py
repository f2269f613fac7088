"""`edge-compress bench` and `regress` on real ONNX models: baselines, exit codes, JUnit XML, the
relative mode, the other targets, one-line errors, and the pytest helper."""

import json
import xml.etree.ElementTree as ET

import pytest
import torch
from torch import nn

from compress.bench.runners import target_available
from compress.deploy import export_onnx
from compress.testing import assert_no_regression
from tests.e2e.test_cli import cli

FAST = ("--threads", "1", "--rounds", "6", "--min-time", "0.02", "--warmup", "5")


def _conv(width: int, depth: int) -> nn.Module:
    layers, cin = [], 1
    for _ in range(depth):
        layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU()]
        cin = width
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * 64, 10)).eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A small model, the same model again, and one about ten times slower, all for 1x8x8 inputs."""
    folder = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    paths = {"fast": folder / "fast.onnx", "slow": folder / "slow.onnx", "wide": folder / "wide.onnx"}
    export_onnx(_conv(8, 1), torch.randn(2, 1, 8, 8), paths["fast"], opset=17, exporter="legacy")
    export_onnx(_conv(64, 3), torch.randn(2, 1, 8, 8), paths["slow"], opset=17, exporter="legacy")
    other = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)).eval()
    export_onnx(other, torch.randn(2, 1, 28, 28), paths["wide"], opset=17, exporter="legacy")
    return paths


@pytest.fixture(scope="module")
def baseline(models, tmp_path_factory):
    path = tmp_path_factory.mktemp("base") / "fast.json"
    result = cli("bench", models["fast"], *FAST, "--task", "digits", "--batch-sizes", "1", "8", "--save-baseline", path)
    assert result.returncode == 0, result.stderr
    assert "batch    1: p50" in result.stdout and "accuracy (test)" in result.stdout and "peak RSS" in result.stdout
    return path


def test_baseline_records_settings_fingerprint_rounds_and_metric(baseline):
    data = json.loads(baseline.read_text())
    assert data["kind"] == "edge-compress-baseline" and data["settings"]["batch_sizes"] == [1, 8]
    assert data["settings"]["task"]["name"] == "digits" and data["metric"]["name"] == "accuracy"
    assert data["fingerprint"]["target"] == "ort-cpu" and data["fingerprint"]["threads"] == 1 and data["fingerprint"]["cpu"]
    assert len(data["latency"]["8"]["round_p50"]) == 6 and data["latency"]["1"]["p99"] >= data["latency"]["1"]["p50"]
    assert data["command"].startswith("edge-compress bench")


def test_a_much_slower_model_fails_with_exit_1_and_junit(models, baseline, tmp_path):
    junit = tmp_path / "regress.xml"
    result = cli("regress", models["slow"], "--baseline", baseline, "--max-slowdown", "10%", "--junit", junit)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL latency[batch=1]: slower" in result.stdout and "REGRESSION" in result.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("failures") == "2" and suite.get("tests") == "2"


def test_the_same_model_passes_with_exit_0(models, baseline, tmp_path):
    junit = tmp_path / "ok.xml"
    # a generous limit: this asserts the plumbing; the statistics' error rates are benchmarks/harness_reliability.py's job
    result = cli("regress", models["fast"], "--baseline", baseline, "--max-slowdown", "100%", "--max-metric-drop", "0", "--junit", junit)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS metric[accuracy]" in result.stdout and "no regression" in result.stdout
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "0"


def test_reference_mode_needs_no_baseline(models):
    slower = cli("regress", models["slow"], "--reference", models["fast"], "--max-slowdown", "10%", *FAST, "--input-shape", "1,8,8")
    assert slower.returncode == 1 and "Wilcoxon signed-rank" in slower.stdout, slower.stdout + slower.stderr
    faster = cli("regress", models["fast"], "--reference", models["slow"], "--max-slowdown", "10%", *FAST)
    assert faster.returncode == 0 and "PASS latency[batch=1]: faster" in faster.stdout, faster.stdout + faster.stderr


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("{broken", "is not valid JSON"), ('{"kind": "edge-compress-baseline", "schema_version": 1}', "is corrupt")],
)
def test_corrupt_baseline_exits_2_with_one_line(models, tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = cli("regress", models["fast"], "--baseline", path, "--max-slowdown", "10%")
    assert result.returncode == 2 and fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_baseline_for_another_input_shape_exits_2_with_one_line(models, baseline):
    result = cli("regress", models["wide"], "--baseline", baseline, "--max-slowdown", "10%")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "does not fit wide.onnx" in result.stderr and "(1, 28, 28)" in result.stderr


def test_unknown_and_unavailable_targets_exit_2(models):
    unknown = cli("bench", models["fast"], "--target", "openvino")
    assert unknown.returncode == 2 and "did you mean 'openvino-cpu'" in unknown.stderr, unknown.stderr
    if not target_available("ort-cuda"):
        missing = cli("bench", models["fast"], "--target", "ort-cuda")
        assert missing.returncode == 2 and "CUDAExecutionProvider" in missing.stderr and "pip install" in missing.stderr
    onnx_on_torch = cli("bench", models["fast"], "--target", "torch-cpu")
    assert onnx_on_torch.returncode == 2 and ".pt2" in onnx_on_torch.stderr


@pytest.mark.skipif(not target_available("openvino-cpu"), reason="OpenVINO is not installed")
def test_openvino_target_records_its_precision_hint(models, tmp_path):
    out = tmp_path / "ov.json"
    result = cli("bench", models["fast"], "--target", "openvino-cpu", *FAST, "--task", "digits", "--json", out)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["runner"]["precision_hint"] == "f32" and data["fingerprint"]["runtime"].startswith("openvino")
    assert 0 <= data["metric"]["value"] <= 1


def test_torch_cpu_target_times_an_exported_program(tmp_path):
    model = _conv(8, 1)
    path = tmp_path / "m.pt2"
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.export.save(torch.export.export(model, (torch.randn(2, 1, 8, 8),), dynamic_shapes=({0: batch},)), str(path))
    out = tmp_path / "t.json"
    result = cli("bench", path, "--target", "torch-cpu", *FAST, "--input-shape", "1,8,8", "--json", out)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["runner"]["provider"] == "eager on cpu"
    static = tmp_path / "static.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(2, 1, 8, 8),)), str(static))
    wrong = cli("bench", static, "--target", "torch-cpu", *FAST, "--input-shape", "1,8,8")
    assert wrong.returncode == 2 and "fails on inputs of shape (1, 1, 8, 8)" in wrong.stderr, wrong.stderr


def test_pytest_helper_passes_and_fails_like_the_command(models):
    from compress.bench.model_bench import BenchSettings
    from compress.bench.timing import TimingConfig

    settings = BenchSettings(target={"name": "ort-cpu", "threads": 1}, timing=TimingConfig(rounds=6, min_time_s=0.02, warmup=5))
    result = assert_no_regression(models["fast"], reference=models["slow"], max_slowdown="10%", settings=settings)
    assert result.checks[0].details["verdict"] == "faster"
    with pytest.raises(AssertionError, match=r"latency regression:\nFAIL latency\[batch=1\]"):
        assert_no_regression(models["slow"], reference=models["fast"], max_slowdown=0.1, settings=settings)


def test_the_fixture_is_registered_for_users_test_suites(pytester, models):
    pytester.makepyfile(
        f"""
        from compress.bench.model_bench import BenchSettings

        def test_latency(latency_regression):
            settings = BenchSettings(target={{"name": "ort-cpu", "threads": 1}}, timing={{"rounds": 6, "min_time_s": 0.02}})
            latency_regression({str(models["slow"])!r}, reference={str(models["fast"])!r}, max_slowdown=0.1, settings=settings)
        """
    )
    result = pytester.runpytest_subprocess()  # loaded through the pytest11 entry point, as in a user project
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*latency regression:*", "*FAIL latency?batch=1?: slower*"])


def test_json_dash_writes_the_measurement_to_stdout_and_no_file(models, tmp_path):
    result = cli("bench", models["fast"], *FAST, "--task", "digits", "--batch-sizes", "1", "--json", "-", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # stdout is the JSON alone: it pipes into jq
    assert data["kind"] == "edge-compress-measurement" and data["latency"]["1"]["p50"] > 0
    assert "batch    1: p50" in result.stderr and not (tmp_path / "-").exists()
