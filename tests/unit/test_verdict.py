"""The run's decision: the fastest model that keeps the metric is recommended, ratios are reference /
model, and each acceptance gate passes or fails on its own figures (also in JUnit XML)."""

from xml.etree import ElementTree as ET

import pytest

from compress.config import Acceptance
from compress.records import LatencyStats, MetricInfo, ModelRecord, Score, Summary, TargetBench
from compress.report.verdict import decide, junit_xml


def _model(name: str, accuracy: float, params: int, b1: float, b32: float, noisy: bool = False) -> ModelRecord:
    def stats(ms: float) -> LatencyStats:
        rounds = [ms * f for f in (0.98, 1.0, 1.01, 0.99, 1.02, 1.0, 0.97)]
        return LatencyStats(p50=ms, p90=ms * 1.1, round_p50=rounds, noisy=noisy)

    return ModelRecord(
        name=name,
        stage="x",
        spec={"arch": "mlp"},
        params=params,
        size_bytes=params * 4,
        scores=[Score(split="test", runtime="ort-cpu", metric="accuracy", value=accuracy)],
        bench={"ort-cpu": TargetBench(runner={}, latency_ms={"1": stats(b1), "32": stats(b32)})},
    )


def _summary(*models: ModelRecord) -> Summary:
    metric = MetricInfo(name="accuracy", higher_is_better=True, test_samples=360)
    return Summary.of("digits", metric, "ort-cpu", 1, list(models))


TEACHER = _model("teacher", 0.99, 170_000, 0.150, 3.8)
STUDENT = _model("student", 0.985, 12_000, 0.060, 0.70)
PRUNED = _model("pruned", 0.975, 3_800, 0.030, 0.40)  # fastest, but 1.5 points down


def test_the_fastest_model_within_the_tolerance_is_recommended():
    verdict = decide(_summary(TEACHER, STUDENT, PRUNED), None)
    assert verdict.recommended == "student" and verdict.tolerance == 0.01 and verdict.tolerance_from == "default"
    student = verdict.standing("student")
    assert student.params_ratio == pytest.approx(170_000 / 12_000) and student.speedup["32"].value == pytest.approx(3.8 / 0.7)
    assert student.speedup["32"].low <= student.speedup["32"].value <= student.speedup["32"].high
    assert student.metric_change == pytest.approx(-0.005) and student.samples_changed == -2 and student.noise > 0
    assert not verdict.standing("pruned").keeps_metric
    looser = decide(_summary(TEACHER, STUDENT, PRUNED), Acceptance(max_metric_drop=0.02))
    assert looser.recommended == "pruned" and looser.passed is True and [g.name for g in looser.gates] == ["accuracy drop"]


def test_gates_pass_or_fail_on_their_own_figures_and_junit_names_them():
    acceptance = Acceptance(max_metric_drop=0.005, min_speedup={1: 4, 32: 10}, min_param_reduction=10)
    verdict = decide(_summary(TEACHER, STUDENT, PRUNED), acceptance)
    assert verdict.recommended == verdict.checked == "student" and verdict.passed is False
    outcome = {g.name: g.passed for g in verdict.gates}
    assert outcome == {"accuracy drop": True, "speedup at batch 1": False, "speedup at batch 32": False, "fewer parameters": True}
    xml = ET.fromstring(junit_xml(verdict, "demo"))
    failures = [case.find("failure").get("message") for case in xml.iter("testcase") if case.find("failure") is not None]
    assert len(failures) == 2 and xml.get("failures") == "2"
    assert failures[1].startswith("student: speedup at batch 32: wanted >= 10x, measured 5.43x [")


def test_with_no_model_keeping_the_metric_the_gates_are_checked_on_the_closest():
    verdict = decide(_summary(TEACHER, PRUNED), Acceptance(max_metric_drop=0.005, min_speedup=2))
    assert verdict.recommended is None and verdict.checked == "pruned" and verdict.passed is False
    assert verdict.why == "no model keeps accuracy within 0.50 points of teacher; the closest is pruned (-1.50 points)"
    assert [g.passed for g in verdict.gates] == [False, True, True]


def test_noisy_latency_is_carried_and_an_unmeasured_reference_gives_no_verdict():
    noisy = _model("student", 0.99, 12_000, 0.05, 0.5, noisy=True)
    verdict = decide(_summary(TEACHER, noisy), Acceptance(min_speedup=2))
    assert verdict.standing("student").speedup["1"].noisy and "(noisy)" in verdict.gates[0].measured
    assert decide(_summary(STUDENT, PRUNED), None) is None  # no teacher: nothing to compare with


@pytest.mark.parametrize(
    "section, words",
    [
        ({"min_speedup": {0: 3}}, "batch size 0 is not a whole number"),
        ({"min_speedup": True}, "True is not a positive number"),
        ({"max_metric_drop": -1}, "greater than or equal to 0"),
        ({"min_speedups": 3}, "min_speedups"),
    ],
)
def test_a_bad_acceptance_section_is_refused(section, words):
    with pytest.raises(ValueError, match=words):
        Acceptance.model_validate(section)


def _rounds_model(name: str, rounds: list[float], *, interleaved: bool, accuracy: float = 0.99, group: str | None = None) -> ModelRecord:
    """A model timed at batch 1 only, with these round medians (its p50 their median)."""
    p50 = sorted(rounds)[len(rounds) // 2]
    stats = LatencyStats(p50=p50, p90=max(rounds), round_p50=rounds, interleaved=interleaved, round_group=group)
    return ModelRecord(
        name=name,
        stage="x",
        spec={"arch": "mlp"},
        params=1000,
        size_bytes=4000,
        scores=[Score(split="test", runtime="ort-cpu", metric="accuracy", value=accuracy)],
        bench={"ort-cpu": TargetBench(runner={}, latency_ms={"1": stats})},
    )


SHARED_NOISE = {"teacher": [10.0, 20.0, 10.0, 20.0, 10.0], "student": [1.0, 2.0, 1.0, 2.0, 1.0]}  # a load spike in rounds 2 and 4, on both


def _shared_noise(interleaved: bool, acceptance: Acceptance | None = None):
    models = [_rounds_model(name, rounds, interleaved=interleaved) for name, rounds in SHARED_NOISE.items()]
    return decide(_summary(*models), acceptance)


def test_interleaved_rounds_pair_and_the_shared_noise_cancels_out():
    paired = _shared_noise(True).standing("student").speedup["1"]
    unpaired = _shared_noise(False).standing("student").speedup["1"]
    assert paired.value == unpaired.value == pytest.approx(10)
    assert paired.low == pytest.approx(10) and paired.high == pytest.approx(10)  # every round: 10x
    assert unpaired.low < 6 and unpaired.high > 15  # rounds resampled on their own mix the spikes in
    assert paired.high - paired.low < unpaired.high - unpaired.low


def test_rounds_pair_only_when_both_sides_are_interleaved_together_with_equal_counts():
    teacher = _rounds_model("teacher", SHARED_NOISE["teacher"], interleaved=True, group="a")
    fewer = _rounds_model("student", SHARED_NOISE["student"][:4], interleaved=True, group="a")
    old = _rounds_model("student", SHARED_NOISE["student"], interleaved=False)
    elsewhere = _rounds_model("student", SHARED_NOISE["student"], interleaved=True, group="b")  # another benchmark stage's timing
    together = _rounds_model("student", SHARED_NOISE["student"], interleaved=True, group="a")
    assert decide(_summary(teacher, together), None).standing("student").speedup["1"].low == pytest.approx(10)
    for student in (fewer, old, elsewhere):
        found = decide(_summary(teacher, student), None).standing("student").speedup["1"]
        assert found.high - found.low > 5  # compared unpaired: no error, a wide interval


def test_a_speed_gate_whose_point_estimate_passes_but_lower_bound_does_not_fails():
    acceptance = Acceptance(min_speedup=8)
    unpaired = _shared_noise(False, acceptance)
    gate = unpaired.gates[0]
    assert unpaired.standing("student").speedup["1"].value >= 8 and gate.passed is False and unpaired.passed is False
    assert gate.measured.startswith("10.00x [") and gate.measured.endswith(": lower bound below 8x")
    paired = _shared_noise(True, acceptance)
    assert paired.passed is True and paired.gates[0].measured == "10.00x [10.00, 10.00]"


def test_old_latency_records_load_as_not_interleaved():
    assert LatencyStats.model_validate({"p50": 1.0, "p90": 1.2, "round_p50": [1.0, 1.1]}).interleaved is False
