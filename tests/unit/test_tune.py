"""Accuracy-driven tuning's search order and stopping rule, with a scripted evaluator."""

from compress.quant.tune import Candidate, tune

LAYERS = ["conv1", "conv2", "conv3", "fc"]


def _run(metric_of, **kw):
    seen = []

    def evaluate(c: Candidate) -> float:
        seen.append(c)
        return metric_of(c)

    args = {"baseline": 0.90, "allowed_loss": 0.01, "higher_is_better": True, "layers": LAYERS}
    args |= {"methods": ("minmax", "entropy", "percentile"), "max_trials": 20, "max_float_layers": 3, **kw}
    return tune(evaluate, Candidate("minmax", True), **args), seen


def test_stops_at_the_first_configuration_within_the_tolerance():
    result, seen = _run(lambda c: 0.895 if c.method == "entropy" else 0.80)
    assert [t.kind for t in result.trials] == ["base", "calibration"]
    assert result.met and result.chosen.candidate == Candidate("entropy", True) and len(seen) == 2


def test_order_is_calibration_then_per_channel_then_sensitivity_then_most_sensitive_layers_together():
    # conv2 and fc hurt most; keeping one float is not enough, keeping both is
    def metric(c: Candidate) -> float:
        return 0.80 + 0.045 * ("conv2" in c.exclude_nodes) + 0.05 * ("fc" in c.exclude_nodes) + 0.001 * (c.method == "percentile")

    result, _ = _run(metric)
    kinds = [t.kind for t in result.trials]
    assert kinds == ["base", "calibration", "calibration", "per_channel"] + ["sensitivity"] * 4 + ["fallback"]
    assert all(t.candidate.method == "percentile" for t in result.trials[4:])  # the scan starts from the best so far
    assert result.chosen.kind == "fallback" and result.chosen.candidate.exclude_nodes == ("fc", "conv2")
    assert result.met and [t.index for t in result.trials] == list(range(9))
    assert [t.passed for t in result.trials] == [False] * 8 + [True]


def test_without_a_passing_trial_the_best_one_is_chosen_and_the_budget_holds():
    result, seen = _run(lambda c: 0.70 + 0.01 * len(c.exclude_nodes), max_trials=6)
    assert not result.met and len(result.trials) == 6 == len(seen)
    assert result.chosen.loss == min(t.loss for t in result.trials) and result.chosen.candidate.exclude_nodes


def test_lower_is_better_metrics_count_loss_upwards():
    result, _ = _run(lambda c: 0.55 if c.method == "minmax" else 0.50, baseline=0.50, higher_is_better=False, allowed_loss=0.02)
    assert abs(result.trials[0].loss - 0.05) < 1e-9 and not result.trials[0].passed
    assert result.chosen.candidate.method == "entropy" and result.chosen.loss == 0.0


def test_trials_serialise_flat():
    result, _ = _run(lambda c: 0.9)
    d = result.trials[0].as_dict()
    assert d["method"] == "minmax" and d["per_channel"] is True and d["exclude_nodes"] == [] and d["passed"] is True
