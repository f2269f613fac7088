"""Which INT8 format to write for a deployment CPU, and why (the figures are in
benchmarks/results/quant_formats*.md and the README's quantization section).

- x86 with VNNI, and Arm: uint8 activations x int8 weights (u8s8), per channel. The integer kernels sum
  in 32 bits, and uint8 activations let ONNX Runtime fuse every convolution and residual add.
- x86 without VNNI (AVX2, AVX-512 before VNNI): the u8s8 kernel (VPMADDUBSW) adds pairs of products in
  16 bits, which saturate. 7-bit weights (`reduce_range`, |w| <= 64) keep every pair sum below 2**15
  (2 x 255 x 64 = 32640) and keep that kernel. uint8 weights (u8u8) are also exact there, through a
  kernel that executes more instructions per product (measured with valgrind on the AVX2 path).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from compress.cpu import CpuKind

__all__ = ["Int8Format", "choose_format", "SAFE_INT8_WEIGHT"]

SAFE_INT8_WEIGHT = 64
"""The largest |int8 weight| whose u8s8 pair sums cannot saturate 16 bits: 2 x 255 x 64 = 32640 <= 32767."""


@dataclass(frozen=True)
class Int8Format:
    activations: Literal["uint8", "int8"] = "uint8"
    weights: Literal["int8", "uint8"] = "int8"
    reduce_range: bool = False
    per_channel: bool = True

    @property
    def label(self) -> str:
        short = {"uint8": "u8", "int8": "s8"}
        return f"{short[self.activations]}{short[self.weights]}" + ("+7bit" if self.reduce_range else "")

    @property
    def saturation_safe(self) -> bool:
        """No 16-bit pair sum can saturate on x86 without VNNI."""
        return self.weights == "uint8" or self.reduce_range

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "label": self.label, "saturation_safe": self.saturation_safe}


def choose_format(
    cpu: CpuKind,
    *,
    activations: str | None = None,
    weights: str | None = None,
    reduce_range: bool | None = None,
    per_channel: bool | None = None,
) -> tuple[Int8Format, str]:
    """The format for `cpu`; each argument given (not None) overrides the choice. Returns it with the reason."""
    chosen = Int8Format(
        activations=activations or "uint8",  # type: ignore[arg-type]
        weights=weights or "int8",  # type: ignore[arg-type]
        reduce_range=(cpu.saturates and weights != "uint8") if reduce_range is None else reduce_range,
        per_channel=True if per_channel is None else per_channel,
    )
    if not cpu.saturates:
        return chosen, f"{cpu.name}: integer kernels sum in 32 bits, nothing saturates; u8s8 fuses fully and runs fastest"
    if chosen.reduce_range:
        return chosen, f"{cpu.name}: without VNNI u8s8 kernels saturate 16-bit pair sums; 7-bit weights (|w| <= {SAFE_INT8_WEIGHT}) cannot"
    if chosen.weights == "uint8":
        return chosen, f"{cpu.name}: without VNNI u8s8 kernels saturate; uint8 weights (u8u8) cannot, at more instructions per product"
    return chosen, f"{cpu.name}: the recipe's {chosen.label} can saturate on this CPU's u8s8 kernels (16-bit pair sums without VNNI)"
