"""The report's figures and the numbers behind them: ratios are reference / model on one shared log
scale, the Pareto figure has one panel per batch size with every model in each, its metric axis is not
zoomed onto a one-sample change, training curves read the per-epoch history, noisy latencies are marked."""

import pytest

from compress.records import MetricInfo, ModelRecord, RunEnvironment, Summary
from compress.report.markdown import NOISY_NOTE, render_markdown
from compress.report.plots_pareto import pareto_batches, pareto_figure, pareto_front
from compress.report.plots_ratios import metric_rows, ratio_panels, ratios_figure
from compress.report.plots_training import training_series
from compress.report.verdict import decide
from compress.report.words import ratio_words, speed_words

ACCURACY = MetricInfo(name="accuracy", higher_is_better=True, test_samples=360)


def _model(name, params, acc, p50s, *, parent=None, noisy=(), history=None, prune=None):
    """A benchmarked model: `p50s` {batch: p50 ms}; batches in `noisy` flagged; round medians around the p50."""
    latency = {b: {"p50": v, "p90": v * 1.2, "round_p50": [v * 0.97, v, v * 1.03], "noisy": b in noisy} for b, v in p50s.items()}
    training = {"history": history, "best_epoch": len(history)} if history else None
    return ModelRecord.model_validate(
        {
            "name": name,
            "stage": "x",
            "spec": {"arch": "mlp"},
            "parent": parent,
            "onnx": f"export/{name}.onnx",
            "checkpoint": f"train/{name}.pt",
            "params": params,
            "macs": params * 10,
            "size_bytes": params * 4,
            "scores": [{"split": "test", "runtime": "ort-cpu", "metric": "accuracy", "value": acc}],
            "bench": {"ort-cpu": {"runner": {}, "latency_ms": latency}},
            "training": training,
            "prune": prune,
        }
    )


def _summary(*models, verdict=True):
    summary = Summary.of("digits", ACCURACY, "ort-cpu", 1, list(models))
    return summary.model_copy(update={"verdict": decide(summary, None)}) if verdict else summary


def _run():
    teacher = _model("teacher", 170_000, 0.99, {"1": 0.08, "8": 0.3, "32": 1.2})
    student = _model("student", 12_000, 0.98, {"1": 0.04, "8": 0.1, "32": 0.25}, parent="teacher", noisy={"32"})
    slower = _model("student_big", 340_000, 0.95, {"1": 0.16, "8": 0.5, "32": 2.4}, parent="teacher")
    return _summary(teacher, student, slower)


def test_ratios_are_reference_over_model_and_worse_is_written_as_worse():
    panels = {p.title: p for p in ratio_panels(_run(), "teacher")}
    params = {b.model: b.ratio for b in panels["parameters"].bars}
    assert params == {"student": pytest.approx(170_000 / 12_000), "student_big": pytest.approx(0.5)}
    batch32 = {b.model: b for b in panels["latency p50, batch 32"].bars}
    assert batch32["student"].ratio == pytest.approx(1.2 / 0.25) and batch32["student"].noisy
    assert batch32["student"].low < batch32["student"].ratio < batch32["student"].high  # the verdict's bootstrap interval
    assert not batch32["student_big"].noisy and batch32["student_big"].ratio == pytest.approx(0.5)
    assert ratio_words(170_000 / 12_000, "fewer", "more") == "14.2x fewer"
    assert ratio_words(0.07, "fewer", "more") == "14.3x more"  # never a bare '0.07x'
    assert speed_words(0.5, 0.4, 0.625) == "2.00x slower [1.60, 2.50]"


def test_every_ratio_panel_shares_one_log_scale():
    fig = ratios_figure(_run(), "teacher")
    ratio_axes = [ax for ax in fig.axes if ax.get_xscale() == "log"]
    assert len(ratio_axes) == 6  # parameters, MACs, file, latency at three batch sizes; the metric panel is linear
    assert len({ax.get_xlim() for ax in ratio_axes}) == 1
    low, high = ratio_axes[0].get_xlim()
    assert low < 0.5 and high > 170_000 / 12_000  # both the worse model and the best ratio are on the axis


def test_metric_change_is_in_points_with_the_verdicts_noise():
    rows = {r.model: r for r in metric_rows(_run(), "teacher")}
    assert rows["student"].change == pytest.approx(-0.01) and rows["student"].samples == -4
    assert rows["student"].noise == pytest.approx(1.96 * ((0.98 * 0.02 + 0.99 * 0.01) / 360) ** 0.5)
    assert rows["student"].keeps and not rows["student_big"].keeps


def test_pareto_has_one_panel_per_batch_size_with_every_model_in_each():
    summary = _run()
    assert pareto_batches(summary, "ort-cpu") == ["1", "8", "32"]
    fig = pareto_figure(summary, "ort-cpu")
    panels = [ax for ax in fig.axes if ax.get_title().startswith("batch ")]
    assert [ax.get_title() for ax in panels] == ["batch 1", "batch 8", "batch 32"]
    for ax in panels:
        assert ax.get_xscale() == "log"
        names = {t.get_text().split(" (")[0] for t in ax.texts}
        assert names == {"teacher", "student", "student_big"}, ax.get_title()
    noisy = [t.get_text() for t in panels[2].texts if "noisy" in t.get_text()]
    assert noisy == ["student (noisy)"]  # noisy at batch 32 only
    assert not any("noisy" in t.get_text() for t in panels[0].texts)


def test_pareto_front_and_an_honest_metric_axis():
    assert pareto_front([(1.0, 0.9), (2.0, 0.95), (3.0, 0.94), (0.5, 0.8)]) == [3, 0, 1]
    assert pareto_front([(1.0, 0.3), (2.0, 0.2)], higher_is_better=False) == [0, 1]
    one_sample = 1 / 360
    teacher = _model("teacher", 1000, 0.99, {"1": 1.0})
    student = _model("student", 100, 0.99 - one_sample, {"1": 0.5})
    fig = pareto_figure(_summary(teacher, student), "ort-cpu")
    low, high = next(ax for ax in fig.axes if ax.get_title() == "batch 1").get_ylim()
    assert high - low >= 3 * 0.01  # three tolerances (one point each): the one-sample change stays a small step
    assert low <= 0.98 <= high  # the tolerance line (teacher - 1 point) is on the axis


def test_training_curves_read_the_validation_metric_per_epoch():
    history = [{"epoch": e, "train_loss": 1 / e, "val_accuracy": 0.5 + e / 10} for e in (1, 2, 3)]
    teacher = _model("teacher", 1000, 0.99, {"1": 1.0}, history=history)
    int8 = _model("teacher_int8", 1000, 0.98, {"1": 0.5}, parent="teacher")
    (curve,) = training_series(_summary(teacher, int8))
    assert (curve.model, curve.key, curve.epochs) == ("teacher", "val_accuracy", [1, 2, 3])
    assert curve.values == pytest.approx([0.6, 0.7, 0.8]) and curve.best_epoch == 3


def test_a_noisy_latency_is_marked_in_the_main_table_and_the_headline():
    text = render_markdown(_run(), title="t", environment=RunEnvironment(), reference="teacher")
    row = next(line for line in text.splitlines() if line.startswith("| student |"))
    assert row.endswith("| 0.040 / 0.048 | 0.100 / 0.120 | 0.250 / 0.300 **(noisy)** |")
    assert "(noisy)" not in next(line for line in text.splitlines() if line.startswith("| teacher |"))
    assert NOISY_NOTE in text
    headline = next(line for line in text.splitlines() if line.startswith("| **student** (recommended)"))
    assert headline.endswith("(noisy) |") and "14.2x fewer" in headline
    quiet = _summary(*(m.model_copy(update={"bench": {}}) for m in _run().models), verdict=False)
    assert NOISY_NOTE not in render_markdown(quiet, title="t", environment=RunEnvironment(), reference="teacher")


def test_relative_lines_without_a_verdict_say_which_way():
    text = render_markdown(_run().model_copy(update={"verdict": None}), title="t", environment=RunEnvironment(), reference="teacher")
    line = next(line for line in text.splitlines() if line.startswith("- `student_big`:"))
    assert "params 2.00x more" in line and "latency b1 2.00x slower" in line
    assert "latency b32 4.80x faster (noisy)" in next(line for line in text.splitlines() if line.startswith("- `student`:"))


def test_without_a_verdict_the_change_still_comes_with_its_noise_and_the_first_model_is_the_reference():
    from compress.report.plots import render_all

    summary = _run().model_copy(update={"verdict": None})
    rows = {r.model: r for r in metric_rows(summary, "teacher")}
    assert rows["student"].samples == -4 and rows["student"].keeps is None
    assert rows["student"].noise == pytest.approx(1.96 * ((0.98 * 0.02 + 0.99 * 0.01) / 360) ** 0.5)
    fp32 = _model("model", 1000, 0.85, {"1": 1.0})
    int8 = _model("model_int8", 1000, 0.84, {"1": 0.7}, parent="model")
    figures = render_all(_summary(fp32, int8, verdict=False), None)
    assert {"ratios", "pareto"} <= set(figures)  # INT8 against the FP32 file it was made from
    assert "ratios" not in render_all(_summary(fp32, verdict=False), None)  # one model: nothing to compare
