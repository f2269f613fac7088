"""Latency regression checks inside your own pytest suite (the same checks as `edge-compress regress`).

    from compress.testing import assert_no_regression

    def test_student_is_not_slower():
        assert_no_regression("build/student.onnx", baseline="perf/student.json", max_slowdown="10%")

or, with the `latency_regression` fixture (registered as a pytest plugin when edge-compress is
installed), which also records each check as a property in pytest's own JUnit XML:

    def test_student_vs_last_release(latency_regression):
        latency_regression("build/student.onnx", reference="release/student.onnx", max_slowdown=0.05)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["check_regression", "assert_no_regression", "latency_regression"]


def check_regression(
    model: str | Path,
    *,
    baseline: str | Path | None = None,
    reference: str | Path | None = None,
    max_slowdown: float | str = 0.10,
    max_metric_drop: float | None = None,
    alpha: float = 0.05,
    settings: Any = None,
) -> Any:
    """The `RegressResult` of `model` against a stored `baseline` file or a `reference` model (one of
    the two). `settings` (a `BenchSettings`) applies to reference mode; a baseline brings its own."""
    from compress.bench.baseline import load_baseline
    from compress.bench.model_bench import BenchSettings
    from compress.bench.regress import against_baseline, against_reference, parse_fraction

    if (baseline is None) == (reference is None):
        raise ValueError("give exactly one of baseline= or reference=")
    slowdown = parse_fraction(max_slowdown) if isinstance(max_slowdown, str) else float(max_slowdown)
    if baseline is not None:
        return against_baseline(
            model, load_baseline(baseline), baseline_path=str(baseline), max_slowdown=slowdown, max_metric_drop=max_metric_drop, alpha=alpha
        )
    return against_reference(
        model, reference, settings or BenchSettings(), max_slowdown=slowdown, max_metric_drop=max_metric_drop, alpha=alpha
    )


def assert_no_regression(model: str | Path, **kwargs: Any) -> Any:
    """`check_regression`, raising AssertionError with every check's line when one fails."""
    result = check_regression(model, **kwargs)
    if not result.passed:
        raise AssertionError("latency regression:\n" + "\n".join(result.lines()))
    return result


try:
    import pytest
except ImportError:  # only the helpers above without pytest
    pytest = None

if pytest is not None:

    @pytest.fixture
    def latency_regression(request) -> Callable[..., Any]:
        """`latency_regression(model, baseline=... | reference=..., max_slowdown=...)`: asserts, and
        records every check line in the test's JUnit properties."""

        def check(model: str | Path, **kwargs: Any) -> Any:
            result = check_regression(model, **kwargs)
            for c in result.checks:
                request.node.user_properties.append((f"edge-compress {c.name}", c.message))
            if not result.passed:
                raise AssertionError("latency regression:\n" + "\n".join(result.lines()))
            return result

        return check
