"""What every report figure shares: matplotlib set up without a display, PNG bytes out, the measured
latencies of a summary, short number labels and log axes whose ticks read as plain numbers."""

from __future__ import annotations

import io

from compress.records import LatencyStats, ModelRecord, Summary

__all__ = [
    "GOOD",
    "BAD",
    "NEUTRAL",
    "NOISY",
    "INK",
    "plt",
    "png",
    "stats",
    "p50",
    "short",
    "log_axis",
    "latency_keys",
    "main_target",
]

GOOD, BAD, NEUTRAL, NOISY, INK = "#2a9d8f", "#e76f51", "#8d99ae", "#e9a23b", "#264653"


def plt():
    import matplotlib

    matplotlib.use("Agg")  # no display; set before pyplot is imported
    import matplotlib.pyplot as pyplot

    return pyplot


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt().close(fig)
    return buf.getvalue()


def stats(model: ModelRecord, target: str, batch: str) -> LatencyStats | None:
    return model.latency(batch, target=target)


def p50(model: ModelRecord, target: str, batch: str) -> float | None:
    found = stats(model, target, batch)
    return found.p50 if found else None


def short(v: float) -> str:
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def log_axis(ax, axis: str = "x") -> None:
    """Log scale with plain tick labels (0.03, not 3x10^-2), minor ticks labelled at 2 and 5 (all of them
    when the axis spans less than a decade)."""
    from matplotlib.ticker import FuncFormatter

    getattr(ax, f"set_{axis}scale")("log")
    target = ax.xaxis if axis == "x" else ax.yaxis

    def minor(v: float, _) -> str:
        low, high = sorted(target.get_view_interval())
        shown = "25" if high > 8 * low else "2345678"  # a narrow range: label every minor tick, or it reads unlabelled
        return f"{v:g}" if f"{v:.1e}"[0] in shown else ""

    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(FuncFormatter(minor))
    ax.tick_params(axis=axis, which="both", labelsize=7)


def latency_keys(models: list[ModelRecord]) -> list[tuple[str, str]]:
    """Every measured (target, batch size), in the order measured."""
    keys: list[tuple[str, str]] = []
    for m in models:
        for target, bench in m.bench.items():
            keys += [(target, b) for b in bench.latency_ms if (target, b) not in keys]
    return keys


def main_target(summary: Summary) -> str:
    """The target the report's figures compare on: the verdict's, else the run's when measured, else the first measured."""
    measured = [t for t, _ in latency_keys(summary.models)]
    if summary.verdict is not None and summary.verdict.target in measured:
        return summary.verdict.target
    return summary.target if summary.target in measured or not measured else measured[0]
