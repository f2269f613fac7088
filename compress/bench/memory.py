"""Peak resident memory of this process over a window of work. On Linux the kernel's high-water mark
(VmHWM) is reset at the start of the window, so the peak belongs to that window; elsewhere the
process-lifetime peak is reported and labelled so."""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PeakRss", "peak_rss"]

_STATUS = Path("/proc/self/status")


@dataclass
class PeakRss:
    start_mb: float = 0.0
    peak_mb: float = 0.0
    scope: str = "window"

    @property
    def growth_mb(self) -> float:
        return max(self.peak_mb - self.start_mb, 0.0)


def _status_mb(key: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _reset_high_water_mark() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # "5" resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        return False
    return True


def _lifetime_peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB on Linux


@contextmanager
def peak_rss() -> Iterator[PeakRss]:
    """`with peak_rss() as m: ...` then `m.peak_mb`, `m.growth_mb` (peak minus RSS at the start)."""
    result = PeakRss(start_mb=_status_mb("VmRSS") or 0.0)
    windowed = _reset_high_water_mark()
    try:
        yield result
    finally:
        hwm = _status_mb("VmHWM") if windowed else None
        result.peak_mb, result.scope = (hwm, "window") if hwm is not None else (_lifetime_peak_mb(), "process lifetime")
