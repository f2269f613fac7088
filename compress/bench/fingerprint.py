"""The environment a latency was measured in: CPU model and instruction-set flags, cores, threads,
runtime and library versions, provider, GPU. Two measurements are comparable when the `COMPARED`
fields agree; `differences` says which do not."""

from __future__ import annotations

import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["fingerprint", "differences", "cpu_model", "cpu_flags", "cpu_mismatch", "COMPARED"]

# instruction sets that change which kernels runtimes pick (x86 and Arm)
_ISA = re.compile(r"^(sse4_2|avx|avx2|fma|f16c|avx512\w*|amx\w*|avx_vnni|asimd\w*|sve\d*|sme\d*|i8mm|bf16|dotprod)$")
_PACKAGES = ("torch", "onnxruntime", "onnxruntime-gpu", "openvino", "numpy")
COMPARED = ("cpu", "cpu_flags", "cores", "machine", "target", "runtime", "provider", "threads", "precision_hint", "gpu", "packages")


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def cpu_model() -> str:
    for line in _cpuinfo():
        if line.startswith(("model name", "Model", "Hardware")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The ISA extensions that matter for inference kernels, from the first CPU's flags."""
    for line in _cpuinfo():
        if line.startswith(("flags", "Features")):
            return sorted(f for f in line.split(":", 1)[1].split() if _ISA.match(f))
    return []


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_mismatch(requested: str) -> str | None:
    """A warning when this machine is not of the deployment CPU kind `requested` (auto: never)."""
    from compress.cpu import resolve_cpu

    cpu = resolve_cpu(requested)
    if cpu.kind == cpu.host:
        return None
    return f"this machine is {cpu.host.name}, the deployment CPU {cpu.kind.name}: latencies here are this machine's, not the target's"


def fingerprint(runner_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """This machine plus what the runner reports (target, runtime, provider, threads, ...)."""
    from compress.cores import available_cores
    from compress.cpu import host_features, kind_of

    info = runner_info or {}
    return {
        "cpu": cpu_model(),
        "cpu_kind": kind_of(host_features()).name,
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        **available_cores().as_dict(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "packages": {name: v for name in _PACKAGES if (v := _version(name))},
        **{k: info.get(k) for k in ("target", "runtime", "provider", "threads", "precision_hint", "gpu")},
    }


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """'field: expected -> actual' for every compared field that differs (missing counts as different)."""
    out = []
    for key in COMPARED:
        a, b = expected.get(key), actual.get(key)
        if key == "packages":
            for name in sorted(set(a or {}) | set(b or {})):
                if (a or {}).get(name) != (b or {}).get(name):
                    out.append(f"{name}: {(a or {}).get(name)} -> {(b or {}).get(name)}")
        elif key == "cpu_flags" and a != b:
            gone, new = sorted(set(a or []) - set(b or [])), sorted(set(b or []) - set(a or []))
            out.append("cpu_flags: " + ", ".join([f"-{f}" for f in gone] + [f"+{f}" for f in new]))
        elif a != b:
            out.append(f"{key}: {a} -> {b}")
    return out
