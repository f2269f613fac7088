"""INT8 for the deployment CPU, checked where it will run.

The format choice is tested with faked CPU features (the host's kind is whatever the features say), so
it holds on any machine. Tests on real kernels assert the bound that fits the kind this host is, and
the x86-avx2 kernels themselves run under QEMU's user-mode emulator where it is installed (.ci/run
installs it), whatever CPU runs the suite."""

import re

import numpy as np
import pytest

import compress.cpu
from compress.cpu import resolve_cpu
from compress.errors import ArtifactError
from compress.pipeline import Pipeline
from compress.quant.emulate import emulated_outputs, emulator
from compress.stages import Distill, Export, Qad, Quantize, Train

pytestmark = pytest.mark.slow

AVX2 = frozenset({"avx", "avx2", "fma3"})
VNNI = AVX2 | {"avx512f", "avx512bw", "avx512vnni"}
CNN = Train(name="cnn", model={"arch": "resnet_cnn", "width": 8, "blocks": [1, 1]}, epochs=3)
REAL = resolve_cpu()  # this machine, before any test fakes its features
needs_emulator = pytest.mark.skipif(emulator() is None, reason="needs qemu-x86_64 (apt-get install qemu-user) on an x86 machine")


def _fake_host(monkeypatch, features):
    monkeypatch.setattr(compress.cpu, "host_features", lambda: features)


def _run(tmp_path, stages, task="digits", cpu="auto"):
    return Pipeline(stages, task=task, target={"threads": 1, "cpu": cpu}).run(tmp_path, quiet=True)


def _quant(manifest, stage: str, name: str) -> dict:
    """The INT8 model's quantization record, as JSON (only fields that were set)."""
    record = manifest.find(stage).models[name]
    assert record.kind == "int8"
    return record.quant.model_dump(mode="json", exclude_none=True)


@pytest.mark.parametrize(("features", "label", "max_abs"), [(AVX2, "u8s8+7bit", 64), (VNNI, "u8s8", 127)])
def test_auto_quantizes_for_the_kind_of_cpu_this_is(tmp_path, monkeypatch, features, label, max_abs):
    # the kernels are this machine's whatever the faked features say: 8-bit weights on a real x86-avx2 host saturate
    real_saturation = REAL.host.saturates and max_abs > 64
    _fake_host(monkeypatch, features)
    lenient = {"min_agreement": 0 if real_saturation else 0.95}  # a 3-epoch model: near-tied logits flip in 7 bits
    manifest = _run(tmp_path, [CNN, Export(), Quantize(calibration={"samples": 64}, **lenient), Qad(model="cnn", epochs=1, **lenient)])
    faked = resolve_cpu().kind.name
    assert manifest.environment["deploy_cpu"]["target"] == manifest.environment["deploy_cpu"]["host"] == faked
    for q in (_quant(manifest, "quantize", "cnn_int8"), _quant(manifest, "qad", "cnn_qad")):
        assert q["format"]["label"] == label and q["deployed"]["basis"] == "host kernels"
        weights = q["deployed"]["weights"]
        assert weights["dtypes"] == ["int8"] and weights["max_abs"] == max_abs and weights["saturation_safe"] == (max_abs <= 64)
        assert q["deployed"]["exact"]["samples"] == 360
        assert real_saturation or q["deployed"]["host_vs_exact"]["top1_agreement"] >= 0.99
        assert q["speed"]["measured"] and q["speed"]["batch"] == 32 and q["speed"]["speedup"] > 0


def test_saturating_kernels_fail_the_stage_in_one_line_naming_cause_and_fix(tmp_path, monkeypatch):
    """A host whose kernels lose agreement that the exact arithmetic keeps: the symptom of saturation,
    forced here by a host predictor that flips a tenth of the answers."""
    import compress.deploy as int8

    _fake_host(monkeypatch, AVX2)
    real = int8.host_kernels

    def saturating(path, threads):
        predict = real(path, threads)

        def flipped(x):
            out = predict(x)
            out[::10] = -out[::10]
            return out

        return flipped

    monkeypatch.setattr(int8, "host_kernels", saturating)
    with pytest.raises(ArtifactError) as err:
        _run(tmp_path, [CNN, Export(), Quantize(calibration={"samples": 64}, reduce_range=False)])
    text = str(err.value)
    assert re.match(r"quantize: 'cnn': INT8 agreement with FP32 0\.\d{4} through the host kernels < min_agreement 0\.98 \(", text)
    assert (
        "saturation on this CPU's kernels (x86-avx2" in text
        and "drop reduce_range: false so that x86-avx2 gets its 7-bit weights" in text
        and "\n" not in text
    )
    assert not (tmp_path / "quantize" / "cnn_int8.onnx").exists()


def test_a_target_that_saturates_with_8bit_weights_and_no_emulator_is_refused(tmp_path, monkeypatch):
    import compress.quant.emulate

    _fake_host(monkeypatch, VNNI)
    monkeypatch.setattr(compress.quant.emulate, "emulator", lambda: None)
    with pytest.raises(
        ArtifactError, match=r"INT8 agreement with FP32 cannot be checked here \(int8 weights up to \|127\| can saturate on x86-avx2"
    ):
        _run(tmp_path, [CNN, Export(), Quantize(calibration={"samples": 64}, reduce_range=False)], cpu="x86-avx2")
    manifest = _run(tmp_path / "safe", [CNN, Export(), Quantize(calibration={"samples": 64}, min_agreement=0.95)], cpu="x86-avx2")
    d = _quant(manifest, "quantize", "cnn_int8")["deployed"]
    assert d["basis"] == "exact arithmetic" and d["weights"]["max_abs"] <= 64 and d.get("emulated") is None
    assert _quant(manifest, "quantize", "cnn_int8")["speed"] == {
        "measured": False,
        "why": "this host is x86-vnni, the target x86-avx2: its speed differs",
    }


@needs_emulator
def test_x86_avx2_kernels_saturate_8bit_weights_and_not_the_format_chosen_for_them(tmp_path):
    """Real AVX2 integer kernels (QEMU): large same-sign weights and inputs near the top of their range make
    u8s8 pair sums exceed 16 bits; the x86-avx2 format (7-bit weights) computes what the exact arithmetic does."""
    import onnx

    from compress.cpu import CPU_KINDS
    from compress.quant import choose_format, quantize_onnx
    from compress.quant.arithmetic import exact_model
    from tests.unit.test_cpu_formats import _matmul_model, _run

    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 1.0, (64, 10)) * np.where(np.arange(10) % 2, 1, -1)
    onnx.save(_matmul_model(w), str(tmp_path / "fp32.onnx"))
    x = rng.uniform(0.8, 1.0, (200, 64)).astype(np.float32)
    agree = {}
    for cpu in ("x86-vnni", "x86-avx2"):
        path = tmp_path / f"{cpu}.onnx"
        quantize_onnx(tmp_path / "fp32.onnx", path, mode="static", calibration=x[:64], fmt=choose_format(CPU_KINDS[cpu])[0])
        emulated, how = emulated_outputs(path, x)
        assert emulated is not None, how
        exact = _run(exact_model(onnx.load(str(path)))[0], x, optimize=False)
        agree[cpu] = float(np.abs(emulated - exact).max() / np.abs(exact).max())
    assert agree["x86-vnni"] > 0.2  # 8-bit weights: the sums clip at 32767, outputs far off
    assert agree["x86-avx2"] < 1e-3


@needs_emulator
def test_a_run_for_x86_avx2_is_checked_on_its_kernels(tmp_path):
    manifest = _run(tmp_path, [CNN, Export(), Quantize(calibration={"samples": 64}, min_agreement=0.9)], cpu="x86-avx2")
    d = _quant(manifest, "quantize", "cnn_int8")["deployed"]
    host = resolve_cpu()
    assert d["basis"] == ("host kernels" if host.kind.saturates else "emulated x86-avx2 kernels")
    if not host.kind.saturates:
        assert d["emulated"]["samples"] == 360 and "qemu-x86_64" in d["emulated_method"]
    assert d["deployed"] >= 0.99 * d["exact"]["top1_agreement"]


STUDENTS = {
    "digits": {"arch": "resnet_cnn", "width": 16, "blocks": [1]},
    "mnist1d": {"arch": "cnn1d", "width": 32, "depth": 3, "kernel": 5},
}


@pytest.mark.parametrize("task", ["digits", "mnist1d"])
def test_students_agree_with_fp32_where_they_will_run(tmp_path, task):
    """Acceptance: with cpu: auto, static INT8 students and QAD agree >= 99% through this host's kernels;
    and the same recipe for x86-avx2 agrees >= 99% through the AVX2 kernels (emulated, where not the host)."""
    teacher = Train(name="teacher", model={"arch": "resnet_cnn", "width": 16, "blocks": [1, 1]}, epochs=15)
    student = Distill(teacher="teacher", name="student", model=STUDENTS[task], epochs=20)
    stages = [teacher, student, Export(models=["student"]), Quantize(models=["student"]), Qad(model="student", epochs=2)]
    manifest = _run(tmp_path, stages, task=task)
    static, qad = _quant(manifest, "quantize", "student_int8"), _quant(manifest, "qad", "student_qad")
    assert static["deployed"]["basis"] == "host kernels" and static["deployed"]["deployed"] >= 0.99
    assert qad["deployed"]["deployed"] >= 0.99 and qad["vs_reference"]["top1_agreement"] >= 0.99
    if emulator() is not None:
        cross = _quant(_run(tmp_path / "avx2", stages[:4], task=task, cpu="x86-avx2"), "quantize", "student_int8")["deployed"]
        assert cross["deployed"] >= 0.99 and cross["basis"] in ("host kernels", "emulated x86-avx2 kernels")


def test_inc_files_get_7bit_weights_for_a_cpu_that_saturates(tmp_path, monkeypatch):
    """neural-compressor has no 7-bit option: its 8-bit weights (and int32 biases) are rescaled afterwards."""
    pytest.importorskip("neural_compressor")
    _fake_host(monkeypatch, AVX2)
    stages = [CNN, Export(), Quantize(backend="inc", calibration={"samples": 64}, min_agreement=0.95)]
    q = _quant(_run(tmp_path, stages), "quantize", "cnn_int8")
    assert q["format"]["label"] == "u8s8+7bit" and q["deployed"]["weights"]["max_abs"] <= 64 and q["deployed"]["weights"]["layers"] >= 5
    assert q["deployed"]["host_vs_exact"]["top1_agreement"] >= 0.99


def test_dynamic_int8_of_a_linear_heavy_model_agrees_where_it_will_run(tmp_path):
    """Acceptance: dynamic INT8 of a transformer (MatMul-heavy) agrees >= 98% with FP32 through this host's
    kernels with cpu: auto, and through the x86-avx2 kernels for that target."""
    tokens = Train(name="tfm", model={"arch": "transformer", "dim": 32, "heads": 2, "depth": 2}, epochs=12)
    stages = [tokens, Export(), Quantize(mode="dynamic")]
    q = _quant(_run(tmp_path, stages, task="mnist1d"), "quantize", "tfm_int8")
    assert q["deployed"]["basis"] == "host kernels" and q["deployed"]["deployed"] >= 0.98
    assert set(q["integer_ops"]) & {"MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}
    if emulator() is not None:
        cross = _quant(_run(tmp_path / "avx2", stages, task="mnist1d", cpu="x86-avx2"), "quantize", "tfm_int8")["deployed"]
        assert cross["deployed"] >= 0.98 and cross["weights"]["max_abs"] <= 64


def test_resuming_on_another_kind_of_cpu_quantizes_again_and_reuses_the_rest(tmp_path, monkeypatch):
    stages = [CNN, Export(), Quantize(calibration={"samples": 64}, min_agreement=0)]  # the faked kinds, not this host's kernels
    _fake_host(monkeypatch, AVX2)
    _run(tmp_path, stages)
    _fake_host(monkeypatch, VNNI)
    again = Pipeline(stages, task="digits", target={"threads": 1}).run(tmp_path, quiet=True, resume=True)
    assert [s.status for s in again.stages] == ["reused", "reused", "done"]
    assert _quant(again, "quantize", "cnn_int8")["format"]["label"] == "u8s8"
    same = Pipeline(stages, task="digits", target={"threads": 1}).run(tmp_path, quiet=True, resume=True)
    assert [s.status for s in same.stages] == ["reused", "reused", "reused"]
