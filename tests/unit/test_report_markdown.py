"""report.md: the comparison table, ratios to the reference, and a pruning curve with its warnings."""

from compress.records import MetricInfo, ModelRecord, RunEnvironment, Summary
from compress.report.markdown import render_markdown

ACCURACY = MetricInfo(name="accuracy", higher_is_better=True)
NO_ENV = RunEnvironment()


def _model(name, params, macs, p50, acc, prune=None, quant=None):
    return ModelRecord.model_validate(
        {
            "name": name,
            "stage": "x",
            "spec": {"arch": "resnet_cnn"},
            "kind": "int8" if quant else "fp32",
            "onnx": f"export/{name}.onnx",
            "scores": [{"split": "test", "runtime": "ort-cpu", "metric": "accuracy", "value": acc}],
            "params": params,
            "macs": macs,
            "size_bytes": params * 4,
            "bench": {"ort-cpu": {"runner": {}, "latency_ms": {"32": {"p50": p50, "p90": p50 * 1.1}}}},
            "prune": prune,
            "quant": quant,
        }
    )


def _summary(*models, threads=1):
    return Summary.of("digits", ACCURACY, "ort-cpu", threads, list(models))


def test_pruning_section_lists_every_step_and_the_warnings():
    point = {"ratio": 0.0, "channels": 490, "params": 1000, "macs": 4000, "latency_ms": {"p50": 2.0, "p90": 2.2, "batch_size": 32}}
    curve = [
        {**point, "step": 0, "val": 0.99},
        {**point, "step": 1, "ratio": 0.5, "channels": 250, "params": 300, "macs": 1000, "val": 0.95},
        {**point, "step": 1, "ratio": 0.5, "channels": 250, "params": 300, "macs": 1000, "val": 0.985, "final": True},
    ]
    prune = {
        "importance": "l2",
        "target": {"kind": "ratio", "value": 0.5, "batch_size": 32},
        "target_met": True,
        "curve": curve,
        "speedup": 1.2,
        "mac_reduction": 4.0,
        "warnings": ["measured speedup 1.20x is far below the MAC reduction 4.00x; most time goes to: conv3 (Conv, 60%)"],
        "dominant_nodes": [{"node": "conv3", "op": "Conv", "ms": 3.0, "share": 0.6}],
    }
    summary = _summary(_model("teacher", 1000, 4000, 2.0, 0.99), _model("teacher_pruned", 300, 1000, 1.6, 0.985, prune), threads=2)
    text = render_markdown(summary, title="t", environment=NO_ENV, reference="teacher")
    assert "## Pruning `teacher_pruned`" in text
    assert "target ratio 0.5 (met); measured speedup 1.20x for 4.00x fewer MACs" in text
    assert "| 1 (final fine-tune) | 50% | 250 | 300 | 1,000 | 2.000 / 2.200 | 0.9850 |" in text
    assert "| 0 | 0% | 490 | 1,000 | 4,000 |" in text
    assert "> **Warning:** measured speedup 1.20x" in text
    assert "- `conv3` (Conv): 60%" in text
    assert "`teacher_pruned`: accuracy -0.50 points" in text
    assert "## Pruning `teacher`" not in text


def test_quantization_section_lists_float_ops_and_tuning_trials():
    trial = {"index": 0, "kind": "base", "method": "minmax", "per_channel": True, "exclude_nodes": [], "metric": 0.95, "passed": False}
    trial |= {"loss": 0.02, "seconds": 0.1}
    tuning = {
        "split": "val",
        "metric": "accuracy",
        "fp32": 0.97,
        "met": True,
        "trials": [trial, {**trial, "index": 1, "kind": "sensitivity", "exclude_nodes": ["/stem/Conv"], "metric": 0.968, "passed": True}],
    }
    agree = {"samples": 360, "max_abs_diff": 0.01, "top1_agreement": 0.995}
    deployed = {"deployed": 0.99, "basis": "host kernels", "cpu": "x86-avx2", "host": "x86-avx2", "exact": agree, "host_kernels": agree}
    deployed |= {"weights": {}, "min_agreement": 0.98, "cause": None, "fix": None, "passed": True}
    fmt = {
        "activations": "uint8",
        "weights": "int8",
        "reduce_range": True,
        "per_channel": True,
        "label": "u8s8+7bit",
        "saturation_safe": True,
    }
    quant = {
        "source": "student",
        "backend": "ort",
        "method": "static",
        "calibration": {"method": "minmax"},
        "reference": "fp32 onnx",
        "vs_reference": {"samples": 360, "top1_agreement": 0.99, "max_abs_diff": 0.05},
        "integer_ops": {"QLinearConv": 3, "QuantizeLinear": 1},
        "float_ops": {"Conv": 1},
        "tuning": tuning,
        "format": fmt,
        "format_reason": "x86-avx2 kernels saturate",
        "deployed": deployed,
        "speed": {"measured": True, "speedup": 1.04, "batch": 32, "int8_ms": 0.5, "fp32_ms": 0.52, "pays_off": False},
    }
    summary = _summary(_model("student", 100, 400, 1.0, 0.97), _model("student_int8", 100, 400, 0.5, 0.968, quant=quant))
    text = render_markdown(summary, title="t", environment=NO_ENV, reference="student")
    assert "| student_int8 | resnet_cnn | u8s8+7bit | 0.9680 |" in text
    row = "| `student_int8` | `student` | static, minmax, tuned | u8s8+7bit | 0.9900 / 0.05 | 0.9900 (host kernels, x86-avx2) / 0.9950 "
    assert row + "| 1.04x faster at b32 | QLinearConv x3 | Conv x1 |" in text
    assert (
        "> **INT8 does not pay off here:** `student_int8` runs at 1.04x the speed of its FP32 file at batch 32 (0.500 vs 0.520 ms)" in text
    )
    assert "Tuning `student_int8` (2 trials, met; val accuracy FP32 0.9700):" in text
    assert "- 1 sensitivity: minmax, per-channel True, float: /stem/Conv: 0.9680 (passed)" in text
    alone = _summary(summary.models[0])
    assert "## Quantization" not in render_markdown(alone, title="t", environment=NO_ENV, reference=None)


def _on_targets(name, accuracy, agreement=None):
    """A model measured on ort-cpu and openvino-cpu: `accuracy` and (INT8) `agreement` with FP32 per target."""
    record = _model(name, 100, 400, 1.0, 0).model_dump()
    record["scores"] = [{"split": "test", "runtime": t, "metric": "accuracy", "value": v} for t, v in accuracy.items()]
    record["bench"] = {t: {"runner": {}, "latency_ms": {"32": {"p50": 1.0, "p90": 1.1}}} for t in accuracy}
    for target, value in (agreement or {}).items():
        record["bench"][target] |= {"agreement": value, "flag": f"INT8 top-1 agreement is {value}" if value < 0.98 else None}
    return ModelRecord.model_validate(record)


def test_an_int8_model_below_the_bound_on_one_runtime_is_marked_in_that_runtimes_column():
    fp32 = _on_targets("student", {"ort-cpu": 0.97, "openvino-cpu": 0.97})
    int8 = _on_targets("student_gru", {"ort-cpu": 0.96, "openvino-cpu": 0.17}, {"ort-cpu": 0.99, "openvino-cpu": 0.18})
    text = render_markdown(_summary(fp32, int8), title="t", environment=NO_ENV, reference=None)
    assert "| model | arch | format | accuracy (ort-cpu, test) | accuracy (openvino-cpu, test) | params |" in text
    assert "| student | resnet_cnn | fp32 | 0.9700 | 0.9700 | 100 |" in text
    assert "| student_gru | resnet_cnn | fp32 | 0.9600 | 0.1700 ⚠ **agreement with FP32 0.1800** | 100 |" in text
    assert "> **Warning:** `student_gru`: INT8 top-1 agreement is 0.18." in text
    assert text.count("⚠") == 1  # 0.99 on ort-cpu is above the bound: no mark
