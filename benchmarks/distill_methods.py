"""Knowledge-transfer methods against training the same student from scratch, at an equal budget.

For each task and seed one pipeline trains the teacher (and a second teacher for the ensemble), then
the same student architecture, for the same epochs, batch size and learning rate, by each method:

    scratch      hard labels only (the `train` stage)
    kd           soft targets, T=4, alpha=0.9
    hints        kd + FitNets hint between the last feature stages (learned 1x1 projector)
    attention    kd + attention transfer on the first feature stages
    relational   kd + RKD distance and angle on the pooled embeddings
    multi        kd from the mean of two teachers' probabilities
    assistant    teacher -> mid-size assistant -> student (two distill stages; the assistant's
                 training is extra budget, the student's is equal)
    self-ema     no teacher: self-distillation from an EMA of the student itself
    born-again   a second generation of the student, distilled from the kd student (twice the budget)

Test accuracy is the PyTorch model's on the task's fixed test split; mean and std over seeds.

    python benchmarks/distill_methods.py --tasks mnist1d digits --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import save

from compress.bench.runners import TargetSpec
from compress.pipeline import Pipeline
from compress.stages.distill import Distill
from compress.stages.train import Train

# Per task: teacher, second teacher, assistant, student, and the layer pairs for the feature methods.
SETUPS: dict[str, dict[str, Any]] = {
    "mnist1d": {
        "teacher": {"arch": "resnet_cnn", "width": 32, "blocks": [2, 2]},
        "teacher_b": {"arch": "resnet_cnn", "width": 24, "blocks": [1, 1, 1]},
        "assistant": {"arch": "cnn1d", "width": 48, "depth": 3, "kernel": 5},
        "student": {"arch": "cnn1d", "width": 22, "depth": 3, "kernel": 5},
        "teacher_epochs": 40,
        "hint": ("layer2", "layer2"),
        "attention": ("layer1", "layer1"),
    },
    "digits": {
        "teacher": {"arch": "resnet_cnn", "width": 32, "blocks": [2, 2]},
        "teacher_b": {"arch": "resnet_cnn", "width": 24, "blocks": [1, 1, 1]},
        "assistant": {"arch": "mobilenet_v2", "width": 24, "expand": 4, "blocks": [1, 2], "head_channels": 96},
        "student": {"arch": "mobilenet_v2", "width": 12, "expand": 4, "blocks": [1, 2], "head_channels": 48},
        "teacher_epochs": 40,
        "hint": ("layer2", "layer2"),
        "attention": ("layer1", "layer1"),
    },
}
METHODS = ["scratch", "kd", "hints", "attention", "relational", "multi", "assistant", "self-ema", "born-again"]
KD = {"temperature": 4.0, "alpha": 0.9}


def stages_for(setup: dict[str, Any], methods: list[str], epochs: int) -> list:
    student, fit = setup["student"], {"epochs": epochs}
    stages: list = [Train(name="teacher", model=setup["teacher"], epochs=setup["teacher_epochs"])]
    if "multi" in methods:
        stages.append(Train(name="teacher_b", model=setup["teacher_b"], epochs=setup["teacher_epochs"]))
    embed = ("head.1", "head.1")
    recipes: dict[str, list] = {
        "scratch": [Train(name="scratch", model=student, **fit)],
        "kd": [Distill(name="kd", teacher="teacher", model=student, **KD, **fit)],
        "hints": [Distill(name="hints", model=student, features=[_pair(setup["hint"], "hint")], **KD, **fit)],
        "attention": [Distill(name="attention", model=student, features=[_pair(setup["attention"], "attention", 10.0)], **KD, **fit)],
        "relational": [
            Distill(name="relational", model=student, features=[_pair(embed, "rkd_distance"), _pair(embed, "rkd_angle", 2.0)], **KD, **fit)
        ],
        "multi": [Distill(name="multi", teacher=["teacher", "teacher_b"], model=student, **KD, **fit)],
        "assistant": [
            Distill(name="ta", teacher="teacher", model=setup["assistant"], **KD, **fit),
            Distill(name="assistant", teacher="ta", model=student, **KD, **fit),
        ],
        "self-ema": [Distill(name="self-ema", teacher="ema", model=student, temperature=2.0, alpha=0.5, **fit)],
        "born-again": [Distill(name="born-again", teacher="kd", model=student, **KD, **fit)],
    }
    for method in methods:
        if method == "born-again" and "kd" not in methods:
            stages += recipes["kd"]
        stages += recipes[method]
    return stages


def _pair(layers: tuple[str, str], loss: str, weight: float = 1.0) -> dict[str, Any]:
    return {"student": layers[0], "teacher": layers[1], "loss": loss, "weight": weight}


def run(task: str, seed: int, methods: list[str], epochs: int, threads: int, workdir: Path) -> dict[str, dict[str, float]]:
    pipeline = Pipeline(
        stages_for(SETUPS[task], methods, epochs), task=task, name=f"{task}-{seed}", seed=seed, target=TargetSpec(threads=threads)
    )
    t0 = time.perf_counter()
    manifest = pipeline.run(workdir / f"{task}-{seed}", quiet=True)
    out: dict[str, dict[str, float]] = {}
    for name, rec in manifest.records().items():  # test accuracy in PyTorch; seconds: the stage that made the model
        out[name] = {
            "accuracy": rec.score("accuracy", runtime="torch").value,
            "params": rec.params,
            "seconds": manifest.find(rec.stage).duration_s,
        }
    print(
        f"{task} seed {seed}: {time.perf_counter() - t0:.0f} s " + " ".join(f"{k}={v['accuracy']:.4f}" for k, v in out.items()), flush=True
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--epochs", type=int, default=60, help="student training epochs, the same for every method")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stem", default="distill_methods", help="results file name (without extension)")
    args = parser.parse_args()
    results: dict[str, dict[int, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            results[task] = {seed: run(task, seed, args.methods, args.epochs, args.threads, Path(tmp)) for seed in args.seeds}
    rows = []
    for task, runs in results.items():
        teacher = _stats([r["teacher"]["accuracy"] for r in runs.values()])
        scratch = _stats([r["scratch"]["accuracy"] for r in runs.values()]) if "scratch" in args.methods else None
        for name in ["teacher", "teacher_b", "ta", *args.methods]:
            if name not in next(iter(runs.values())):
                continue
            accs = [r[name]["accuracy"] for r in runs.values()]
            mean, std = _stats(accs)
            params = next(iter(runs.values()))[name]["params"]
            teacher_params = next(iter(runs.values()))["teacher"]["params"]
            vs_scratch = f"{100 * (mean - scratch[0]):+.2f}" if scratch and name in args.methods else ""
            rows.append(
                [
                    task,
                    name,
                    f"{params:,} (1/{teacher_params / params:.1f})",
                    f"{100 * mean:.2f} ± {100 * std:.2f}",
                    f"{100 * min(accs):.2f}",
                    vs_scratch,
                    f"{100 * (mean - teacher[0]):+.2f}",
                ]
            )
    header = [
        "task",
        "model / method",
        "params (vs teacher)",
        "test acc % (mean ± std)",
        "min %",
        "vs scratch (points)",
        "vs teacher (points)",
    ]
    notes = (
        f"Seeds {args.seeds}; every student trained {args.epochs} epochs (batch 64, AdamW 3e-3, cosine), best validation epoch kept. "
        "`ta` is the assistant model itself; `born-again` is a second 60-epoch generation after `kd`. "
        "Accuracy is PyTorch's on the fixed test split."
    )
    data = {task: {str(s): r for s, r in runs.items()} for task, runs in results.items()}
    md = save(args.stem, "Distillation methods vs training from scratch (equal student budget)", header, rows, data, notes)
    print(md.read_text())


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


if __name__ == "__main__":
    main()
