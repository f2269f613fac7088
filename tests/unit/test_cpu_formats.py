"""Deployment CPUs from faked feature sets, the INT8 format chosen for each, the verdict of the
deployed-arithmetic check, and the file-level arithmetic helpers (exact form, weight range, 7-bit
rescaling) on small generated ONNX graphs. Nothing here depends on this machine's CPU."""

import numpy as np
import pytest

from compress.cpu import CPU_KINDS, kind_of, resolve_cpu
from compress.quant.arithmetic import WeightRange, exact_model, restrict_weights, weight_range
from compress.quant.formats import SAFE_INT8_WEIGHT, choose_format
from compress.quant.verify import judge, portability_note

AVX2 = frozenset({"avx", "avx2", "fma3"})
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512vl"}
VNNI = AVX512 | {"avx512vnni"}


@pytest.mark.parametrize(
    ("features", "machine", "kind"),
    [
        (AVX2, "x86_64", "x86-avx2"),
        (AVX512, "x86_64", "x86-avx512"),
        (VNNI, "x86_64", "x86-vnni"),
        (AVX2 | {"avx_vnni"}, "x86_64", "x86-vnni"),  # Alder Lake: VNNI on 256-bit registers
        (AVX2 | {"amx_int8"}, "x86_64", "x86-vnni"),
        (frozenset({"sse", "ssse3"}), "x86_64", "x86-avx2"),  # older x86: PMADDUBSW saturates the same way
        (frozenset({"asimd", "asimddp"}), "aarch64", "arm64"),
    ],
)
def test_cpu_kind_from_features(features, machine, kind):
    assert kind_of(features, machine).name == kind


def test_auto_is_the_host_and_a_named_cpu_is_not():
    auto = resolve_cpu("auto", AVX2, "x86_64")
    assert auto.kind.name == auto.host.name == "x86-avx2" and auto.is_host and auto.requested == "auto"
    cross = resolve_cpu("x86-avx2", VNNI, "x86_64")
    assert cross.kind.name == "x86-avx2" and cross.host.name == "x86-vnni" and not cross.is_host
    assert resolve_cpu("x86-avx512", AVX2, "x86_64").is_host  # both saturate: the host's kernels compute what the target's do
    d = cross.as_dict()
    assert d["target"] == "x86-avx2" and d["host"] == "x86-vnni" and "avx512vnni" in d["host_features"]


def test_real_host_detection_gives_a_known_kind():
    cpu = resolve_cpu()
    assert cpu.kind.name in CPU_KINDS and cpu.kind == cpu.host and cpu.host_features


@pytest.mark.parametrize(
    ("kind", "label", "safe"),
    [("x86-avx2", "u8s8+7bit", True), ("x86-avx512", "u8s8+7bit", True), ("x86-vnni", "u8s8", False), ("arm64", "u8s8", False)],
)
def test_format_per_target(kind, label, safe):
    fmt, why = choose_format(CPU_KINDS[kind])
    assert (fmt.label, fmt.saturation_safe, fmt.per_channel, fmt.activations) == (label, safe, True, "uint8")
    assert why.startswith(kind)


def test_format_overrides_say_what_they_cost():
    u8u8, why = choose_format(CPU_KINDS["x86-avx2"], weights="uint8")
    assert u8u8.label == "u8u8" and u8u8.saturation_safe and "cannot" in why
    forced, why = choose_format(CPU_KINDS["x86-avx2"], reduce_range=False)
    assert forced.label == "u8s8" and not forced.saturation_safe and "can saturate" in why
    seven, _ = choose_format(CPU_KINDS["x86-vnni"], reduce_range=True, per_channel=False)
    assert seven.label == "u8s8+7bit" and not seven.per_channel


SAFE, WIDE = WeightRange(("int8",), 64, 3), WeightRange(("int8",), 127, 3)


def test_verdict_host_saturation_names_cause_and_fix():
    cpu = resolve_cpu("auto", AVX2, "x86_64")
    v = judge(cpu, WIDE, host=0.88, exact=0.995, min_agreement=0.98)
    assert not v.passed and v.basis == "host kernels" and v.deployed == 0.88
    assert "saturation on this CPU's kernels (x86-avx2" in v.cause
    assert v.fix == "drop reduce_range: false so that x86-avx2 gets its 7-bit weights, or use weights: uint8"
    ok = judge(cpu, SAFE, host=0.995, exact=0.996, min_agreement=0.98)
    assert ok.passed and ok.cause is None and ok.deployed == 0.995


def test_files_for_cpus_that_do_not_saturate_say_where_they_would():
    vnni = resolve_cpu("auto", VNNI, "x86_64")
    assert "can saturate on x86 CPUs without VNNI" in portability_note(vnni, WIDE)
    assert portability_note(vnni, SAFE) is None and portability_note(resolve_cpu("x86-avx2", VNNI, "x86_64"), WIDE) is None


def test_verdict_bad_arithmetic_is_not_called_saturation():
    v = judge(resolve_cpu("auto", VNNI, "x86_64"), WIDE, host=0.9, exact=0.9, min_agreement=0.98)
    assert not v.passed and "INT8 arithmetic itself agrees with FP32 on only 0.9000" in v.cause and "qad" in v.fix


def test_verdict_for_another_cpu_uses_emulation_exact_arithmetic_or_refuses():
    cross = resolve_cpu("x86-avx2", VNNI, "x86_64")
    emulated = judge(cross, WIDE, host=0.99, exact=0.99, emulated=0.8, min_agreement=0.98)
    assert not emulated.passed and emulated.basis == "emulated x86-avx2 kernels" and "the target's kernels" in emulated.cause
    safe = judge(cross, SAFE, host=0.99, exact=0.991, min_agreement=0.98)
    assert safe.passed and safe.basis == "exact arithmetic" and safe.deployed == 0.991
    unproven = judge(cross, WIDE, host=0.99, exact=0.99, min_agreement=0.98)
    assert not unproven.passed and unproven.deployed is None and "cannot run its kernels" in unproven.cause
    assert judge(cross, WIDE, host=0.99, exact=0.99, min_agreement=0).passed  # min_agreement 0 accepts the unprovable
    built_on_avx2 = judge(resolve_cpu("x86-vnni", AVX2, "x86_64"), WIDE, host=0.85, exact=0.99, min_agreement=0.98)
    assert built_on_avx2.passed and built_on_avx2.basis == "exact arithmetic" and "host's kernels only" in built_on_avx2.cause


def _matmul_model(weights: np.ndarray):
    from onnx import TensorProto, helper, numpy_helper

    k, n = weights.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])],
        [numpy_helper.from_array(weights.astype(np.float32), "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, x, optimize=True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _quantized(tmp_path, weights, fmt, mode="static"):
    import onnx

    from compress.quant import quantize_onnx

    source = tmp_path / "fp32.onnx"
    onnx.save(_matmul_model(weights), str(source))
    dest = tmp_path / f"{fmt.label}_{mode}.onnx"
    calibration = np.random.default_rng(1).uniform(0, 1, (64, weights.shape[0])).astype(np.float32)
    quantize_onnx(source, dest, mode=mode, calibration=calibration, fmt=fmt)
    return onnx.load(str(dest))


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_weight_range_follows_the_format(tmp_path, mode):
    w = np.random.default_rng(0).normal(size=(32, 8))
    wide = weight_range(_quantized(tmp_path, w, choose_format(CPU_KINDS["x86-vnni"])[0], mode))
    narrow = weight_range(_quantized(tmp_path, w, choose_format(CPU_KINDS["x86-avx2"])[0], mode))
    unsigned = weight_range(_quantized(tmp_path, w, choose_format(CPU_KINDS["x86-avx2"], weights="uint8")[0], mode))
    assert wide.layers == narrow.layers == unsigned.layers == 1
    assert wide.max_abs == 127 and not wide.saturation_safe
    assert narrow.max_abs <= SAFE_INT8_WEIGHT and narrow.saturation_safe
    assert unsigned.dtypes == ("uint8",) and unsigned.saturation_safe


def test_exact_form_of_dynamic_integer_products_matches_the_kernels_that_cannot_saturate(tmp_path):
    w = np.random.default_rng(0).normal(size=(32, 8))
    model = _quantized(tmp_path, w, choose_format(CPU_KINDS["x86-avx2"])[0], "dynamic")
    assert any(n.op_type == "MatMulInteger" for n in model.graph.node)
    exact, how = exact_model(model)
    assert not any(n.op_type == "MatMulInteger" for n in exact.graph.node) and "float" in how
    x = np.random.default_rng(2).uniform(0, 1, (16, 32)).astype(np.float32)
    np.testing.assert_allclose(_run(exact, x, optimize=False), _run(model, x), rtol=1e-4, atol=1e-4)  # 7-bit: no saturation anywhere
    np.testing.assert_allclose(_run(exact, x, optimize=False), x @ w.astype(np.float32), rtol=0.05, atol=0.1)


def test_exact_form_refuses_fused_integer_operators():
    from onnx import TensorProto, helper

    node = helper.make_node("QLinearMatMul", list("abcdefgh"), ["y"])
    graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info("y", TensorProto.UINT8, [1])])
    exact, why = exact_model(helper.make_model(graph))
    assert exact is None and "QLinearMatMul" in why


def test_restricting_8bit_weights_to_7_bits_keeps_the_function(tmp_path):
    w = np.random.default_rng(0).normal(size=(32, 8))
    model = _quantized(tmp_path, w, choose_format(CPU_KINDS["x86-vnni"])[0])
    x = np.random.default_rng(2).uniform(0, 1, (64, 32)).astype(np.float32)
    before = _run(model, x)
    assert restrict_weights(model) == 1 and restrict_weights(model) == 0  # the second pass finds nothing left to do
    after = weight_range(model)
    assert after.max_abs <= SAFE_INT8_WEIGHT and after.saturation_safe
    scale = np.abs(before).max()
    assert np.abs(_run(model, x) - before).max() < 0.03 * scale


def test_restricting_conv_weights_rescales_their_int32_bias_too(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from compress.quant import quantize_onnx

    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(8, 3, 3, 3)).astype(np.float32), rng.normal(size=8).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8, 8, 8])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "conv.onnx"))
    calibration = rng.uniform(0, 1, (32, 3, 8, 8)).astype(np.float32)
    fmt = choose_format(CPU_KINDS["x86-vnni"])[0]
    quantize_onnx(tmp_path / "conv.onnx", tmp_path / "int8.onnx", mode="static", calibration=calibration, fmt=fmt)
    model = onnx.load(str(tmp_path / "int8.onnx"))
    biases = [numpy_helper.to_array(i) for i in model.graph.initializer if numpy_helper.to_array(i).dtype == np.int32]
    assert len([v for v in biases if v.any()]) == 1  # ORT wrote the bias as int32 (and its zero point) behind a DequantizeLinear
    before = _run(model, calibration)
    assert restrict_weights(model) == 1 and weight_range(model).max_abs <= SAFE_INT8_WEIGHT
    onnx.checker.check_model(model, full_check=True)
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    # QLinearConv's contract: the int32 bias is in units of input scale x weight scale, per channel
    np.testing.assert_allclose(values["b_quantized_scale"], values["x_scale"] * values["w_scale"], rtol=1e-6)
    reference = _run(onnx.load(str(tmp_path / "conv.onnx")), calibration)
    after = _run(model, calibration)
    assert np.abs(after - reference).max() < 0.05 * np.abs(reference).max()
    assert np.abs(after - before).max() < 0.05 * np.abs(reference).max()


def test_bench_says_when_its_metric_is_not_the_saturating_targets(tmp_path, monkeypatch):
    import onnx

    import compress.cpu
    from compress.bench.model_bench import BenchSettings, _int8_metric_warning

    w = np.random.default_rng(0).normal(size=(32, 8))
    for label, cpu in (("wide", "x86-vnni"), ("narrow", "x86-avx2")):
        onnx.save(_quantized(tmp_path, w, choose_format(CPU_KINDS[cpu])[0]), str(tmp_path / f"{label}.onnx"))
    settings = BenchSettings(target={"cpu": "x86-avx2"})
    monkeypatch.setattr(compress.cpu, "host_features", lambda: VNNI)
    assert "int8 weights (up to |127|) can saturate on x86-avx2" in _int8_metric_warning(tmp_path / "wide.onnx", settings)
    assert _int8_metric_warning(tmp_path / "narrow.onnx", settings) is None
    monkeypatch.setattr(compress.cpu, "host_features", lambda: AVX2)  # the metric is then the target's own arithmetic
    assert _int8_metric_warning(tmp_path / "wide.onnx", settings) is None


def test_a_regression_test_for_another_cpu_kind_warns_or_fails_strictly(tmp_path, monkeypatch):
    import onnx

    import compress.cpu
    from compress.bench.baseline import Baseline, save_baseline
    from compress.bench.model_bench import BenchSettings, bench_model
    from compress.bench.regress import against_baseline
    from compress.errors import ArtifactError

    onnx.save(_matmul_model(np.ones((32, 8))), str(tmp_path / "m.onnx"))
    timing = {"warmup": 1, "rounds": 2, "min_iters": 5, "min_time_s": 0}
    settings = BenchSettings(target={"cpu": "x86-avx2", "threads": 1}, input_shape=(32,), timing=timing)
    monkeypatch.setattr(compress.cpu, "host_features", lambda: VNNI)
    result = bench_model(tmp_path / "m.onnx", settings)
    assert result["warnings"] == [
        "this machine is x86-vnni, the deployment CPU x86-avx2: latencies here are this machine's, not the target's"
    ]
    baseline: Baseline = save_baseline(result, tmp_path / "base.json")
    loose = against_baseline(tmp_path / "m.onnx", baseline, max_slowdown=10.0)
    assert any("the deployment CPU x86-avx2" in w for w in loose.warnings)
    with pytest.raises(ArtifactError, match="the deployment CPU x86-avx2: latencies here are this machine's"):
        against_baseline(tmp_path / "m.onnx", baseline, max_slowdown=10.0, strict_environment=True)
    monkeypatch.setattr(compress.cpu, "host_features", lambda: AVX2)
    assert not bench_model(tmp_path / "m.onnx", settings)["warnings"]
