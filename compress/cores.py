"""How many CPUs this process may really use: `os.cpu_count()` counts the host's, which ignores the CPU
affinity mask (`taskset`, Kubernetes CPU sets) and the cgroup CPU quota (`docker run --cpus 2` on a
64-core host). Threads default to the smallest of the three, and the fingerprint says which one it was."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Cores", "available_cores"]

CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Cores:
    count: int
    why: str

    def as_dict(self) -> dict[str, int | str]:
        return {"cores_available": self.count, "cores_why": self.why}


def available_cores(cgroup: Path = CGROUP) -> Cores:
    """The CPUs this process may use: host CPUs, narrowed by the affinity mask, then by the cgroup quota."""
    host = os.cpu_count() or 1
    found = Cores(host, f"all {host} logical CPUs of the host")
    affinity = _affinity()
    if affinity is not None and affinity < found.count:
        found = Cores(affinity, f"CPU affinity allows {affinity} of the host's {host} CPUs (taskset, cpuset)")
    quota = _cgroup_quota(cgroup)
    if quota is not None and max(1, math.floor(quota)) < found.count:
        found = Cores(max(1, math.floor(quota)), f"the cgroup CPU quota is {quota:g} CPUs (a container limit such as docker --cpus)")
    return found


def _affinity() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return None


def _cgroup_quota(root: Path) -> float | None:
    """CPUs allowed by the cgroup (v2 `cpu.max`, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`); None: no limit."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None
