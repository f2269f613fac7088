"""INT8 formats per deployment CPU: FP32 against u8s8, u8s8 with 7-bit weights, u8u8 and s8s8 (static,
and dynamic for the Linear-heavy transformer), on the digits and mnist1d students and a mnist1d
transformer. For every file: test accuracy, top-1 agreement with FP32 through this host's kernels,
through the exact arithmetic (graph optimizations off), and through ONNX Runtime's x86-avx2 kernels
under QEMU (`qemu-x86_64 -cpu Haswell-v4`: the exact instruction semantics of an AVX2 CPU without
VNNI, saturation included); latency at batch 1 and 32 against FP32 on this host, interleaved; and,
with --avx2-instructions, the instructions one inference executes on the AVX2 code path (valgrind,
which presents an AVX2 CPU without AVX-512): a proxy for AVX2 speed where no AVX2 machine is at hand,
not a time.

    python benchmarks/quant_formats.py --threads 1 --avx2-instructions
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _interleave import interleaved
from _results import save

from compress.bench.runners import TargetSpec
from compress.bench.runners.ort import OrtCpuRunner
from compress.cpu import CPU_KINDS
from compress.data.builtin import TASKS
from compress.deploy import agreement as top1
from compress.deploy import exact_outputs
from compress.pipeline import Pipeline
from compress.quant import Int8Format, choose_format, quantize_onnx
from compress.quant.arithmetic import weight_range
from compress.quant.emulate import emulated_outputs
from compress.stages import Distill, Export, Train

TEACHER = {"arch": "resnet_cnn", "width": 32, "blocks": [2, 2]}
MODELS = {
    "digits student": ("digits", {"arch": "resnet_cnn", "width": 48, "blocks": [1]}, True),
    "mnist1d student": ("mnist1d", {"arch": "cnn1d", "width": 32, "depth": 3, "kernel": 5}, True),
    "mnist1d transformer": ("mnist1d", {"arch": "transformer", "dim": 32, "heads": 2, "depth": 2}, False),
}
FORMATS = {
    "u8s8": Int8Format(),
    "u8s8+7bit": Int8Format(reduce_range=True),
    "u8u8": Int8Format(weights="uint8"),
    "s8s8": Int8Format(activations="int8"),
}
_COUNT = """
import sys, numpy as np, onnxruntime as ort
o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.log_severity_level = 3
s = ort.InferenceSession(sys.argv[1], o, providers=["CPUExecutionProvider"])
x = {s.get_inputs()[0].name: np.load(sys.argv[2])}
for _ in range(int(sys.argv[3]) + 1): s.run(None, x)
"""


def build(name: str, args: argparse.Namespace, workdir: Path) -> Path:
    """The FP32 ONNX file of a model: a student distilled from a resnet teacher, or a transformer trained alone."""
    task, arch, distilled = MODELS[name]
    if distilled:
        stages = [
            Train(name="teacher", model=TEACHER, epochs=args.teacher_epochs),
            Distill(teacher="teacher", name="model", model=arch, epochs=args.student_epochs),
        ]
    else:
        stages = [Train(name="model", model=arch, epochs=args.student_epochs)]
    run = workdir / name.replace(" ", "_")
    Pipeline([*stages, Export(models=["model"])], task=task, seed=args.seed, target=TargetSpec(threads=args.threads)).run(run, quiet=True)
    return run / "export" / "model.onnx"


def predict(path: Path, x: np.ndarray, *, exact: bool = False, threads: int = 1) -> np.ndarray:
    """Outputs through this host's kernels, or (`exact`) through the file's exact arithmetic."""
    import onnx

    if exact:
        return exact_outputs(onnx.load(str(path)), x, threads)[0]
    return OrtCpuRunner(threads).load(path)(x)


def avx2_instructions(path: Path, x: np.ndarray, runs: int, workdir: Path) -> float | None:
    """Instructions per inference of `x` on ONNX Runtime's AVX2 code path: valgrind with `runs` inferences
    minus valgrind with none, divided by `runs` (process start-up cancels out up to ~1%)."""
    if shutil.which("valgrind") is None:
        return None
    inputs = workdir / "count_x.npy"
    np.save(inputs, x)
    totals = []
    for n in (0, runs):
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                "-c",
                _COUNT,
                str(path),
                str(inputs),
                str(n),
            ],
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"},
            check=True,
        )
        line = next(line for line in done.stderr.splitlines() if "Collected" in line)
        totals.append(int(line.split()[-1]))
    return (totals[1] - totals[0]) / runs


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return top1(b, a, classification=True).top1_agreement


def measure_model(name: str, fp32: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    task_name, _, distilled = MODELS[name]
    data = TASKS.get(task_name)()
    x = data.example_input(len(data.test), split="test").numpy()
    labels = np.asarray([int(y) for _, y in data.test])
    calibration = data.example_input(256, split="train").numpy()
    modes = ["static"] if distilled else ["static", "dynamic"]
    files = {"FP32": fp32}
    for mode in modes:
        for label, fmt in FORMATS.items():
            if mode == "dynamic" and fmt.activations == "int8":
                continue  # dynamic mode quantizes activations to uint8 only
            files[f"{mode} {label}"] = workdir / f"{name}_{mode}_{label}.onnx".replace(" ", "_")
            quantize_onnx(fp32, files[f"{mode} {label}"], mode=mode, calibration=calibration, fmt=fmt)
    reference = predict(fp32, x)
    rows: dict[str, Any] = {}
    for label, path in files.items():
        host = predict(path, x, threads=args.threads)
        emulated, how = emulated_outputs(path, x)
        rows[label] = {
            "accuracy": float(np.mean(host.argmax(1) == labels)),
            "agree_host": agreement(host, reference),
            "agree_exact": agreement(predict(path, x, exact=True), reference),
            "agree_avx2": agreement(emulated, reference) if emulated is not None else None,
            "avx2_method": how,
            "weights": weight_range(__import__("onnx").load(str(path))).as_dict(),
            "size_bytes": path.stat().st_size,
        }
        if args.avx2_instructions:
            rows[label]["avx2_instructions"] = avx2_instructions(path, x[:8], args.count_runs, workdir)
    latency = {
        str(b): interleaved(files, data.full_batch(b).numpy(), baseline="FP32", rounds=args.rounds, threads=args.threads) for b in (1, 32)
    }
    for label in rows:
        rows[label]["latency"] = {b: latency[b][label] for b in latency}
    chosen = {cpu: choose_format(CPU_KINDS[cpu])[0].label for cpu in CPU_KINDS}
    return {"task": task_name, "formats": rows, "chosen": chosen}


def weights_cell(weights: dict[str, Any]) -> str:
    if not weights["layers"]:
        return "-"
    return "uint8" if weights["dtypes"] == ["uint8"] else str(weights["max_abs"])


def render(results: dict[str, Any], args: argparse.Namespace) -> tuple[list[str], list[list[str]], str]:
    rows = []
    for name, r in results.items():
        fp32 = r["formats"]["FP32"]
        for label, m in r["formats"].items():
            picked = [cpu for cpu, fmt in r["chosen"].items() if label.endswith(" " + fmt) and label.startswith("static")]
            instr, base = m.get("avx2_instructions"), fp32.get("avx2_instructions")
            rows.append(
                [
                    name,
                    label + (f" (chosen for {', '.join(picked)})" if picked else ""),
                    f"{100 * m['accuracy']:.2f}",
                    f"{m['agree_host']:.4f}",
                    f"{m['agree_exact']:.4f}",
                    "-" if m["agree_avx2"] is None else f"{m['agree_avx2']:.4f}",
                    weights_cell(m["weights"]),
                    f"{m['latency']['1']['speedup']:.2f}x",
                    f"{m['latency']['32']['speedup']:.2f}x (min {m['latency']['32']['speedup_min']:.2f}x)",
                    "-" if not instr or not base else f"{instr / 1e6:.2f}M ({base / instr:.2f}x)",
                ]
            )
    header = [
        "model",
        "format",
        "test acc %",
        "agreement, host kernels",
        "agreement, exact",
        "agreement, x86-avx2 kernels (QEMU)",
        "max abs int8 weight",
        "b1 speedup (host)",
        "b32 speedup (host)",
        "AVX2 instructions / inference of 8 (FP32 / this)",
    ]
    notes = (
        "Agreement: top-1 with the FP32 ONNX file on the whole test split. Host kernels: ONNX Runtime, all graph optimizations, "
        "on the CPU named above. Exact: the same file with graph optimizations disabled (DequantizeLinear -> float -> "
        "QuantizeLinear; integer products computed in float), which no CPU's kernels change. x86-avx2 kernels: ONNX Runtime "
        "under qemu-x86_64 -cpu Haswell-v4 (AVX2, no AVX-512, no VNNI), where u8s8 products are added in saturating 16-bit pairs. "
        f"Speedup: FP32 p50 / INT8 p50 per round, median over {args.rounds} interleaved rounds, {args.threads} thread(s), on this "
        "host only. AVX2 instructions: valgrind (AVX2 code path), per inference of a batch of 8, a proxy for the AVX2 machine's "
        "speed, not a time. Formats: u8s8 = uint8 activations x int8 weights, +7bit = reduce_range (|w| <= 64), u8u8 = uint8 "
        "weights, s8s8 = int8 activations; all per-channel, calibrated with minmax on 256 training samples."
    )
    return header, rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--teacher-epochs", type=int, default=40)
    parser.add_argument("--student-epochs", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--avx2-instructions", action="store_true", help="count instructions on the AVX2 code path (valgrind; slow)")
    parser.add_argument("--count-runs", type=int, default=40, help="inferences (batch 8) per instruction count")
    parser.add_argument("--stem", default="quant_formats")
    parser.add_argument("--render", type=Path, metavar="JSON", help="only rewrite the Markdown table from a results JSON (no measuring)")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(args.render.read_text())
        header, rows, notes = render(
            {k: v for k, v in saved["results"].items() if k != "args"}, argparse.Namespace(**saved["results"]["args"])
        )
        print(rewrite_table(args.render.with_suffix(".md"), header, rows, notes))
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            results[name] = measure_model(name, build(name, args, Path(tmp)), args, Path(tmp))
            print(name, {k: round(v["agree_avx2"] or -1, 4) for k, v in results[name]["formats"].items()}, flush=True)
    header, rows, notes = render(results, args)
    print(save(args.stem, "INT8 formats per deployment CPU", header, rows, {"args": vars(args), **results}, notes))


def rewrite_table(md: Path, header: list[str], rows: list[list[str]], notes: str) -> Path:
    """Replace the table and notes of an existing results Markdown file, keeping its date, machine and command."""
    head = md.read_text().split("\n| ")[0]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]
    md.write_text(head + "\n" + "\n".join(table) + "\n\n" + notes + "\n")
    return md


if __name__ == "__main__":
    main()
