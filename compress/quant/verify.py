"""Is an INT8 file right on the CPU it will run on? The verdict from the agreements with the model the
file stands for (FP32, or the fake-quantized twin): through this host's optimized integer kernels,
through the file's exact arithmetic (`arithmetic.exact_model`), and, for an x86 target without VNNI
on a host that is not one, through that target's kernels under emulation (`emulate`).

Which of them is what the target computes:
- the host's kernels, when host and target saturate alike (both VNNI/Arm, or both x86 without VNNI);
- the emulated target kernels, when the target saturates and the host does not;
- the exact arithmetic, when the target does not saturate, or (no emulator) its weights cannot
  saturate (|w| <= 64 or uint8);
- none, when an x86 target without VNNI would run 8-bit int8 weights that nothing here can run the
  way it would: then the file is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from compress.cpu import DeployCpu
from compress.quant.arithmetic import WeightRange

__all__ = ["Verdict", "judge", "saturation_fix", "portability_note"]
_LOST = 0.005  # the host's kernels 'lose' agreement when they fall this far below the exact arithmetic


@dataclass(frozen=True)
class Verdict:
    deployed: float | None
    basis: str  # host kernels | emulated <cpu> kernels | exact arithmetic | unproven
    cause: str | None
    fix: str | None
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(
    cpu: DeployCpu,
    weights: WeightRange,
    *,
    host: float | None,
    exact: float | None,
    emulated: float | None = None,
    min_agreement: float,
    what: str = "FP32",
) -> Verdict:
    """`host`/`exact`/`emulated`: top-1 agreement with the reference through the host's kernels, the
    exact arithmetic and the emulated target kernels (None when not measured: regression tasks, no
    exact form, no emulator)."""
    if cpu.is_host:
        deployed, basis = host, "host kernels"
    elif emulated is not None:
        deployed, basis = emulated, f"emulated {cpu.kind.name} kernels"
    elif not cpu.kind.saturates or weights.saturation_safe:
        deployed, basis = (exact if exact is not None else host), "exact arithmetic"
    else:
        return Verdict(
            None,
            "unproven",
            f"int8 weights up to |{weights.max_abs}| can saturate on {cpu.kind.name}, and this {cpu.host.name} host cannot run"
            " its kernels (no emulator)",
            "leave weights and reduce_range to the target (7-bit weights), set weights: uint8, or install qemu-user",
            min_agreement <= 0,  # min_agreement: 0 accepts what cannot be checked here
        )
    cause, fix = _saturation(cpu, host, exact, emulated)
    if deployed is None or deployed >= min_agreement:
        return Verdict(deployed, basis, cause, fix, True)
    if cause is None and exact is not None and exact < min_agreement:
        cause = f"the INT8 arithmetic itself agrees with {what} on only {exact:.4f}"
        fix = "try tune: {tolerable_loss: ...}, the qad stage, or exclude_nodes for the most sensitive layers"
    elif cause is None:
        cause, fix = "the deployed kernels", "check the model on the target, or lower min_agreement"
    return Verdict(deployed, basis, cause, fix, False)


def saturation_fix(cpu: DeployCpu) -> str:
    """What to change when u8s8 kernels of a saturating target lose agreement: its default format has
    7-bit weights, so 8-bit ones mean the recipe forced them."""
    return f"drop reduce_range: false so that {cpu.kind.name} gets its 7-bit weights, or use weights: uint8"


def portability_note(cpu: DeployCpu, weights: WeightRange) -> str | None:
    """For a target that does not saturate: the file's 8-bit weights can on x86 CPUs without VNNI."""
    if cpu.kind.saturates or weights.saturation_safe or weights.layers == 0:
        return None
    return (
        f"made for {cpu.kind.name}: its int8 weights (up to |{weights.max_abs}|) can saturate on x86 CPUs without VNNI; "
        "for those, quantize with target.cpu: x86-avx2"
    )


def _saturation(cpu: DeployCpu, host: float | None, exact: float | None, emulated: float | None) -> tuple[str | None, str | None]:
    """(cause, fix) when saturating kernels measured here lose agreement that the exact arithmetic keeps."""
    seen = host if cpu.host.saturates else emulated
    if seen is None or exact is None or seen >= exact - _LOST:
        return None, None
    if not cpu.host.saturates:
        return f"saturation on the target's kernels (emulated {cpu.kind.name}: u8s8 without VNNI adds 16-bit pair sums)", saturation_fix(
            cpu
        )
    if not cpu.kind.saturates:
        return f"saturation on this {cpu.host.name} host's kernels only; the {cpu.kind.name} target sums in 32 bits", None
    return f"saturation on this CPU's kernels ({cpu.host.name}: u8s8 without VNNI adds 16-bit pair sums)", saturation_fix(cpu)
