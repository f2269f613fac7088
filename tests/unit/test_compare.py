"""The comparison statistics on synthetic round medians: verdicts, the tolerance, both rank tests, and
the false-alarm rate of the verdict rule on simulated A/A data."""

import numpy as np
import pytest
from scipy import stats

from compress.bench.compare import compare_rounds


def _rounds(level: float, n: int = 10, noise: float = 0.02, seed: int = 0) -> np.ndarray:
    return level * (1 + noise * np.random.default_rng(seed).standard_normal(n))


@pytest.mark.parametrize("paired", [True, False])
def test_fifteen_percent_slower_is_slower_and_faster_is_faster(paired):
    reference = _rounds(1.0, seed=1)
    slower = compare_rounds(_rounds(1.15, seed=2), reference, paired=paired)
    assert slower.verdict(0.10) == "slower" and slower.ci_low > 1.05 and slower.ratio == pytest.approx(1.15, abs=0.04)
    faster = compare_rounds(_rounds(0.85, seed=3), reference, paired=paired)
    assert faster.verdict(0.10) == "faster" and faster.ci_high < 1


def test_a_significant_difference_below_the_tolerance_is_unchanged():
    comparison = compare_rounds(_rounds(1.05, noise=0.005, seed=4), _rounds(1.0, noise=0.005, seed=5), paired=True)
    assert comparison.p_value < 0.01 and comparison.ci_low > 1
    assert comparison.verdict(0.0) == "slower" and comparison.verdict(0.10) == "unchanged"


def test_p_values_come_from_scipy_rank_tests():
    c, r = _rounds(1.1, seed=6), _rounds(1.0, seed=7)
    paired = compare_rounds(c, r, paired=True)
    assert paired.test == "Wilcoxon signed-rank" and paired.p_value == pytest.approx(stats.wilcoxon(np.log(c) - np.log(r)).pvalue)
    unpaired = compare_rounds(c, r, paired=False)
    assert unpaired.test == "Mann-Whitney U" and unpaired.p_value == pytest.approx(stats.mannwhitneyu(c, r).pvalue)


def test_identical_rounds_are_unchanged_with_a_degenerate_interval():
    same = compare_rounds([2.0] * 8, [2.0] * 8, paired=True)
    assert same.ratio == 1.0 and (same.ci_low, same.ci_high) == (1.0, 1.0) and same.p_value == 1.0
    assert same.verdict(0.0) == "unchanged"


def test_bad_round_counts_are_errors():
    with pytest.raises(ValueError, match="at least 2 rounds"):
        compare_rounds([1.0], [1.0, 1.1], paired=False)
    with pytest.raises(ValueError, match="same count"):
        compare_rounds([1.0, 1.1, 1.2], [1.0, 1.1], paired=True)


def test_simulated_a_a_comparisons_rarely_call_a_regression():
    false_alarms = sum(
        compare_rounds(_rounds(1.0, noise=0.05, seed=2 * i), _rounds(1.0, noise=0.05, seed=2 * i + 1), paired=False).verdict(0.10)
        == "slower"
        for i in range(200)
    )
    assert false_alarms <= 10  # <= 5%; a rule that ignored the tolerance would flag about 2.5% here too, one ignoring the test far more
