"""Run an ONNX file through the integer kernels of a CPU this machine is not: x86 without VNNI, under
QEMU's user-mode emulator (`qemu-x86_64 -cpu Haswell-v4`, from Debian's `qemu-user` package).

QEMU executes each AVX2 instruction with its exact semantics, VPMADDUBSW's saturating 16-bit pair sums
included, and reports a CPU without AVX-512 or VNNI, so ONNX Runtime picks the kernels an AVX2 machine
runs. The outputs are that machine's outputs; the time it takes says nothing about its speed. AVX-512
without VNNI saturates the same way (the same instruction on wider registers), so the AVX2 kernels
stand for both x86 kinds that saturate. QEMU does not emulate VNNI; targets that do not saturate are
checked in exact arithmetic instead (see `verify`)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["EMULATED_CPU", "emulator", "emulated_outputs"]

EMULATED_CPU = "Haswell-v4"
_SCRIPT = """
import json, sys
import numpy as np
features = np._core._multiarray_umath.__cpu_features__
if not features.get("AVX2") or features.get("AVX512F") or features.get("AVX512VNNI"):
    print(json.dumps({"error": "the emulated CPU is not AVX2-only"})); sys.exit(0)
import onnxruntime as ort
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.log_severity_level = 4
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
x = np.load(sys.argv[2])
np.save(sys.argv[3], session.run(None, {session.get_inputs()[0].name: x})[0])
print(json.dumps({"ok": True}))
"""


def emulator() -> str | None:
    """The QEMU user-mode binary that can run this Python as an x86 CPU without AVX-512, if installed."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    return shutil.which("qemu-x86_64") or shutil.which("qemu-x86_64-static")


def emulated_outputs(model: Path, x: np.ndarray, *, timeout: float = 600) -> tuple[np.ndarray | None, str]:
    """The model's outputs for `x` through ONNX Runtime's AVX2 integer kernels, or None and why not."""
    qemu = emulator()
    if qemu is None:
        return None, "no emulator: install QEMU user mode (apt-get install qemu-user) to run x86-avx2 kernels here"
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
        np.save(inputs, np.ascontiguousarray(x, dtype=np.float32))
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        command = [qemu, "-cpu", EMULATED_CPU, sys.executable, "-c", _SCRIPT, str(model), str(inputs), str(outputs)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired:
            return None, f"the emulated run took over {timeout:.0f} s"
        status = next((json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")), None)
        if done.returncode != 0 or not status or "error" in status:
            why = (status or {}).get("error") or (done.stderr.strip().splitlines() or ["no output"])[-1]
            return None, f"the emulated run failed ({why})"
        return np.load(outputs), f"ONNX Runtime under qemu-x86_64 -cpu {EMULATED_CPU} (AVX2 kernels, no VNNI)"
