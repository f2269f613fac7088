"""Is a candidate faster or slower than a reference? Both are timed in rounds; each round gives one
median per model. The ratio of medians (candidate / reference, above 1 = slower) gets a bootstrap
confidence interval, and a rank test gives a p-value: Wilcoxon signed-rank on the per-round log ratios
when the rounds are paired (interleaved in one process), Mann-Whitney U when they are not (a stored
baseline). A verdict needs both, plus a practical size (`tolerance`), so that two loads of the same
model that differ by 1% are not called a regression."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from compress.bench.runners import Sessions
from compress.bench.timing import TimingConfig, sample_round, warm_up

__all__ = ["Comparison", "compare_rounds", "compare_interleaved", "MIN_PAIRED_ROUNDS"]

Verdict = Literal["faster", "slower", "unchanged"]
MIN_PAIRED_ROUNDS = 6
"""Below this, Wilcoxon's smallest two-sided p-value (2 / 2**n) cannot reach 0.05."""


@dataclass(frozen=True)
class Comparison:
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    paired: bool
    confidence: float
    candidate_ms: list[float]
    reference_ms: list[float]

    def verdict(self, tolerance: float = 0.0, alpha: float = 0.05) -> Verdict:
        """'slower' when the rank test is significant, the whole interval is above 1 and the ratio
        exceeds 1 + tolerance; 'faster' symmetrically; otherwise 'unchanged'."""
        significant = self.p_value < alpha
        if significant and self.ci_low > 1 and self.ratio > 1 + tolerance:
            return "slower"
        if significant and self.ci_high < 1 and self.ratio < 1 / (1 + tolerance):
            return "faster"
        return "unchanged"

    def describe(self) -> str:
        return (
            f"{self.ratio:.3f}x [{self.ci_low:.3f}, {self.ci_high:.3f}] ({100 * self.confidence:.0f}% CI), "
            f"{self.test} p={self.p_value:.3g}, {len(self.candidate_ms)} vs {len(self.reference_ms)} rounds"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio_of_medians(candidate: np.ndarray, reference: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(candidate, axis=axis) / np.median(reference, axis=axis)


def _rank_test(candidate: np.ndarray, reference: np.ndarray, paired: bool) -> tuple[float, str]:
    from scipy import stats

    if paired:
        diffs = np.log(candidate) - np.log(reference)
        if not np.any(diffs):
            return 1.0, "Wilcoxon signed-rank"
        return float(stats.wilcoxon(diffs).pvalue), "Wilcoxon signed-rank"
    if np.all(candidate == candidate[0]) and np.array_equal(np.unique(candidate), np.unique(reference)):
        return 1.0, "Mann-Whitney U"
    return float(stats.mannwhitneyu(candidate, reference, alternative="two-sided").pvalue), "Mann-Whitney U"


def compare_rounds(
    candidate: Sequence[float], reference: Sequence[float], *, paired: bool, confidence: float = 0.95, seed: int = 0
) -> Comparison:
    """Compare per-round medians (milliseconds). Paired rounds must have equal length and order."""
    from scipy import stats

    c, r = np.asarray(candidate, dtype=float), np.asarray(reference, dtype=float)
    if len(c) < 2 or len(r) < 2:
        raise ValueError("a comparison needs at least 2 rounds on each side")
    if paired and len(c) != len(r):
        raise ValueError("paired rounds need the same count on both sides")
    if np.all(c == c[0]) and np.all(r == r[0]):  # no spread: the bootstrap has nothing to resample
        low = high = float(c[0] / r[0])
    else:
        boot = stats.bootstrap(
            (c, r),
            _ratio_of_medians,
            paired=paired,
            vectorized=True,
            n_resamples=2000,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        low, high = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    p_value, test = _rank_test(c, r, paired)
    return Comparison(
        ratio=float(_ratio_of_medians(c, r)),
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        test=test,
        paired=paired,
        confidence=confidence,
        candidate_ms=c.tolist(),
        reference_ms=r.tolist(),
    )


def compare_interleaved(candidate: Sessions, reference: Sessions, x: np.ndarray, cfg: TimingConfig) -> Comparison:
    """Time both in the same process, round by round (each round on fresh loads when the sessions are
    fresh), alternating which goes first, so both see the same machine state; rounds are paired."""
    medians: dict[str, list[float]] = {"candidate": [], "reference": []}
    sessions = {"candidate": candidate, "reference": reference}
    for i in range(cfg.rounds):
        loaded = {name: s.next() for name, s in sessions.items()}
        calls = {name: m.prepare(x) for name, m in loaded.items()}
        for call in calls.values():
            warm_up(call, cfg)
        for name in ("candidate", "reference") if i % 2 == 0 else ("reference", "candidate"):
            medians[name].append(float(np.median(sample_round(calls[name], cfg, loaded[name].clock))))
    return compare_rounds(medians["candidate"], medians["reference"], paired=True)
