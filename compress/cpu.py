"""The CPU a model is deployed on, as far as INT8 arithmetic is concerned.

x86 CPUs without VNNI multiply uint8 activations by int8 weights with VPMADDUBSW, which adds pairs of
products into *16-bit* sums that saturate at 32767 (ONNX Runtime documents it; measured here:
agreement with FP32 fell to 0.83 on a transformer). VNNI CPUs (VPDPBUSD, AVX-512 VNNI or AVX-VNNI, and
AMX) and Arm's dot-product kernels sum in 32 bits and do not saturate. So the same INT8 file can be
right on the machine that built it and wrong where it runs; the kinds below name that difference.

`auto` is this machine. Detection reads the features the process can execute (numpy's runtime CPU
dispatch, i.e. CPUID plus OS support), not /proc/cpuinfo, which lists the host's flags even under an
emulator or a virtual machine that masks them; AVX-VNNI and AMX, which numpy does not report, come
from /proc/cpuinfo."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["CPU_KINDS", "CpuKind", "CpuName", "DeployCpu", "host_features", "kind_of", "resolve_cpu"]

CpuName = Literal["auto", "x86-avx2", "x86-avx512", "x86-vnni", "arm64"]


@dataclass(frozen=True)
class CpuKind:
    name: str
    saturates: bool
    """Whether u8 x s8 integer kernels add products in saturating 16-bit pairs (VPMADDUBSW)."""
    description: str


CPU_KINDS: dict[str, CpuKind] = {
    k.name: k
    for k in (
        CpuKind("x86-avx2", True, "x86 with AVX2, no VNNI (e.g. AMD Zen 2/3, Intel Haswell to Comet Lake): u8s8 kernels saturate"),
        CpuKind("x86-avx512", True, "x86 with AVX-512, no VNNI (e.g. Intel Skylake-SP): u8s8 kernels saturate"),
        CpuKind("x86-vnni", False, "x86 with AVX-512 VNNI, AVX-VNNI or AMX (e.g. AMD Zen 4, Intel Ice Lake and later): 32-bit sums"),
        CpuKind("arm64", False, "64-bit Arm (NEON dot product): 32-bit sums"),
    )
}


@dataclass(frozen=True)
class DeployCpu:
    """The target CPU a run quantizes for, and the host it is checked on."""

    kind: CpuKind
    requested: str
    host: CpuKind
    host_features: tuple[str, ...] = field(default=())

    @property
    def is_host(self) -> bool:
        """Whether this host's integer kernels compute what the target's compute (same saturation)."""
        return self.kind.saturates == self.host.saturates

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.kind.name,
            "requested": self.requested,
            "saturating_u8s8": self.kind.saturates,
            "host": self.host.name,
            "host_features": list(self.host_features),
        }


def _cpuinfo_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def host_features() -> frozenset[str]:
    """Lower-case names of the SIMD features this process can use (avx2, avx512bw, avx512vnni, asimddp, ...)."""
    import numpy as np

    try:
        found = {name.lower() for name, on in np._core._multiarray_umath.__cpu_features__.items() if on}
    except AttributeError:  # numpy < 2
        found = {name.lower() for name, on in np.core._multiarray_umath.__cpu_features__.items() if on}
    flags = _cpuinfo_flags()
    if "avx2" in found:
        found |= flags & {"avx_vnni", "amx_int8"}
    return frozenset(found)


def kind_of(features: frozenset[str] | set[str], machine: str | None = None) -> CpuKind:
    """The kind of a CPU with these features (`machine` as `platform.machine()` says it)."""
    machine = (machine or platform.machine()).lower()
    if machine in ("aarch64", "arm64"):
        return CPU_KINDS["arm64"]
    if features & {"avx512vnni", "avx512_vnni", "avx_vnni", "amx_int8"}:
        return CPU_KINDS["x86-vnni"]
    if "avx512bw" in features:
        return CPU_KINDS["x86-avx512"]
    return CPU_KINDS["x86-avx2"]  # AVX2, and older x86 (SSSE3 PMADDUBSW saturates the same way)


def resolve_cpu(requested: str = "auto", features: frozenset[str] | None = None, machine: str | None = None) -> DeployCpu:
    """The target kind for `requested` (a name of CPU_KINDS, or auto: this machine), with the host's."""
    features = host_features() if features is None else features
    host = kind_of(features, machine)
    kind = host if requested == "auto" else CPU_KINDS[requested]
    shown = sorted(f for f in features if f.startswith(("avx", "amx", "asimd", "sve", "i8mm", "fma")))
    return DeployCpu(kind=kind, requested=requested, host=host, host_features=tuple(shown))
