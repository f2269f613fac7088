"""Words the report's Markdown shares: ratios a reader does not have to invert ('14.2x fewer', '1.49x larger',
never '0.07x') and notes that stay apart."""

from __future__ import annotations

__all__ = ["ratio_words", "speed_words", "blockquotes"]


def _times(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"


def ratio_words(ratio: float, better: str, worse: str) -> str:
    """`ratio` is reference / model (above 1: the model is better): '14.2x fewer' or '1.49x more'; 'same' at 1."""
    if round(ratio, 2) == 1:
        return "same"
    return f"{_times(ratio)} {better}" if ratio > 1 else f"{_times(1 / ratio)} {worse}"


def speed_words(value: float, low: float, high: float) -> str:
    """A speedup (reference p50 / model p50) and its interval: '2.30x faster [1.80, 2.40]', '1.25x slower [1.10, 1.40]'."""
    if value >= 1:
        return f"{value:.2f}x faster [{low:.2f}, {high:.2f}]" if value < 10 else f"{value:.1f}x faster [{low:.1f}, {high:.1f}]"
    return f"{1 / value:.2f}x slower [{1 / high:.2f}, {1 / low:.2f}]"


def blockquotes(notes: list[str]) -> list[str]:
    """Each note a blockquote of its own: consecutive '>' lines would run together into one paragraph."""
    return [line for note in notes for line in ("", note)]
