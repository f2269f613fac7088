"""INT8 against FP32 for the digits and mnist1d students: every post-training calibration method, tuned
PTQ, quantization-aware distillation (QAD) and neural-compressor (`inc`); test accuracy through ONNX
Runtime, file size, and ORT CPU latency at batch 1 and 32 measured interleaved (round by round, every
model, in this process, so FP32 and INT8 see the same machine state).

Also the case where PTQ loses accuracy: calibration from only `--low-calibration` samples, against QAD
starting from the same few samples (its ranges then follow the training batches).

Students are dense convolution nets: on ORT CPU, INT8 pays off for convolutions with enough channels
(depthwise and 1-channel convolutions gain little; see README "Quantization").

    python benchmarks/quant_matrix.py --tasks digits mnist1d --threads 1

With `--cpu auto` the INT8 formats are this machine's (u8s8 on x86-vnni, 7-bit weights on x86-avx2);
the results file names the machine's CPU kind and features. `quant_formats.py` compares the formats.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _interleave import interleaved
from _results import save

from compress.bench import make_runner
from compress.bench.runners import TargetSpec
from compress.data.builtin import TASKS
from compress.pipeline import Pipeline
from compress.stages import Distill, Export, Qad, Quantize, Train

TEACHER = {"arch": "resnet_cnn", "width": 32, "blocks": [2, 2]}
STUDENTS = {
    "digits": {"arch": "resnet_cnn", "width": 48, "blocks": [1]},
    "mnist1d": {"arch": "cnn1d", "width": 32, "depth": 3, "kernel": 5},
}


def stages(task: str, args: argparse.Namespace) -> list:
    low = {"samples": args.low_calibration}
    return [
        Train(name="teacher", model=TEACHER, epochs=args.teacher_epochs),
        Distill(teacher="teacher", name="student", model=STUDENTS[task], epochs=args.student_epochs),
        Export(models=["student"]),
        *[Quantize(models=["student"], calibration={"method": m}, suffix=f"_ptq_{m}") for m in ("minmax", "entropy", "percentile")],
        Quantize(models=["student"], suffix="_ptq_tuned", tune={"tolerable_loss": 0.003}),
        Qad(model="student", teacher="teacher", name="student_qad", epochs=args.qad_epochs),
        Quantize(models=["student"], backend="inc", suffix="_inc"),
        Quantize(models=["student"], calibration=low, suffix=f"_ptq_minmax_{args.low_calibration}"),
        Qad(
            model="student",
            teacher="teacher",
            name=f"student_qad_{args.low_calibration}",
            calibration_samples=args.low_calibration,
            epochs=args.qad_epochs,
        ),
    ]


def run_task(task: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    run_dir = workdir / task
    target = TargetSpec(threads=args.threads, cpu=args.cpu)
    pipeline = Pipeline(stages(task, args), task=task, name=task, seed=args.seed, target=target)
    manifest = pipeline.run(run_dir, quiet=True)
    records = manifest.records()
    data = TASKS.get(task)()
    runner = make_runner("ort-cpu", args.threads)
    names = ["student"] + [n for n in records if n.startswith("student_")]
    models: dict[str, Any] = {}
    for name in names:
        path = run_dir / records[name].onnx
        quant = records[name].quant
        tuning = quant.tuning if quant else None
        models[name] = {
            "test_accuracy_ort": data.evaluate(runner.load(path), "test")["accuracy"],
            "size_bytes": path.stat().st_size,
            "float_ops": dict(quant.float_ops) if quant else {},
            "tuning": {"met": tuning.met, "chosen": tuning.chosen.model_dump(mode="json") if tuning.chosen else None} if tuning else None,
        }
    models["teacher"] = {"test_accuracy_torch": records["teacher"].score("accuracy", runtime="torch").value}
    paths = {n: run_dir / records[n].onnx for n in names}
    latency = {
        str(b): interleaved(paths, data.full_batch(b).numpy(), baseline="student", rounds=args.rounds, threads=args.threads)
        for b in (1, 32)
    }
    print(
        f"{task}: "
        + ", ".join(f"{n} {m['test_accuracy_ort']:.4f} {latency['32'][n]['speedup']:.2f}x" for n, m in models.items() if n != "teacher"),
        flush=True,
    )
    return {"student": STUDENTS[task], "models": models, "latency": latency}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["digits", "mnist1d"])
    parser.add_argument("--teacher-epochs", type=int, default=40)
    parser.add_argument("--student-epochs", type=int, default=60)
    parser.add_argument("--qad-epochs", type=int, default=10)
    parser.add_argument("--low-calibration", type=int, default=4, help="calibration samples of the lossy PTQ case")
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads (the target's)")
    parser.add_argument("--cpu", default="auto", help="the target's deployment CPU (auto: this machine), which sets the INT8 format")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stem", default="quant_matrix", help="results file name (without extension)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {task: run_task(task, args, Path(tmp)) for task in args.tasks}
    rows = []
    for task, r in results.items():
        fp32 = r["models"]["student"]["test_accuracy_ort"]
        for name, m in r["models"].items():
            if name == "teacher":
                rows.append([task, "teacher (FP32, PyTorch)", f"{100 * m['test_accuracy_torch']:.2f}", "", "", "", "", "", ""])
                continue
            b1, b32 = r["latency"]["1"][name], r["latency"]["32"][name]
            left = ", ".join(f"{op} x{c}" for op, c in m["float_ops"].items()) or "none"
            rows.append(
                [
                    task,
                    name,
                    f"{100 * m['test_accuracy_ort']:.2f}",
                    f"{100 * (m['test_accuracy_ort'] - fp32):+.2f}",
                    f"{m['size_bytes'] / 1024:.1f}",
                    f"{b1['p50_ms']:.4f} ({b1['speedup']:.2f}x)",
                    f"{b32['p50_ms']:.4f}",
                    f"{b32['speedup']:.2f}x (min {b32['speedup_min']:.2f}x)",
                    left if name != "student" else "(FP32)",
                ]
            )
    header = [
        "task",
        "model",
        "test acc % (ORT)",
        "vs FP32 (points)",
        "size KiB",
        "b1 p50 ms (speedup)",
        "b32 p50 ms",
        "b32 speedup vs FP32",
        "float ops ORT runs",
    ]
    notes = (
        f"Latency: ONNX Runtime CPU, {args.threads} intra-op thread(s), {args.rounds} interleaved rounds; speedup = median of per-round "
        "FP32/INT8 p50 ratios (min = the worst round). `_ptq_<method>`: onnxruntime static QDQ, per-channel int8 weights, uint8 "
        f"activations, 256 calibration samples; `_ptq_tuned`: accuracy-driven tuning, tolerable loss 0.3 points on val; `_qad`: "
        f"quantization-aware distillation from the teacher, {args.qad_epochs} epochs; `_inc`: neural-compressor PT2E static, exported "
        f"with the dynamo exporter; `_{args.low_calibration}` suffixes: only {args.low_calibration} calibration samples."
    )
    print(save(args.stem, "INT8 quantization matrix (ORT CPU)", header, rows, {"args": vars(args), **results}, notes))


if __name__ == "__main__":
    main()
