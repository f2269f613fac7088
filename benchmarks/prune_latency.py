"""Accuracy against measured latency when pruning, per importance criterion, with fine-tuning.

For each task: train the residual CNN, then prune it with each criterion to the same channel ratio in
`--steps` steps (distillation fine-tuning from the unpruned model after each step, and a final
fine-tune), export everything, and measure test accuracy through ONNX Runtime. The latency of every
pruned model against the unpruned one is then measured interleaved, round by round, in this process
(ORT CPU, `--threads` threads), so both see the same machine state.

    python benchmarks/prune_latency.py --tasks digits mnist1d --ratio 0.5
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

from compress.bench.runners import TargetSpec
from compress.data.builtin import TASKS
from compress.pipeline import Pipeline
from compress.records import PrunePoint
from compress.stages import Benchmark, Export, Prune, Train

MODEL = {"arch": "resnet_cnn", "width": 32, "blocks": [2, 2]}
CRITERIA = ["l1", "l2", "bn_scale", "taylor", "lamp", "random"]


def run_task(task: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    stages: list = [Train(name="unpruned", model=MODEL, epochs=args.teacher_epochs)]
    for crit in args.criteria:
        stages.append(
            Prune(
                model="unpruned",
                name=f"pruned_{crit}",
                importance=crit,
                target={"kind": "ratio", "value": args.ratio, "batch_size": 32},
                steps=args.steps,
                round_to=args.round_to,
                finetune={
                    "epochs": args.step_epochs,
                    "final_epochs": args.final_epochs,
                    "lr": args.finetune_lr,
                    "alpha": args.finetune_alpha,
                },
            )
        )
    stages += [Export(), Benchmark(batch_sizes=[1, 32])]
    run_dir = workdir / task
    manifest = Pipeline(stages, task=task, name=task, seed=args.seed, target=TargetSpec(threads=args.threads)).run(run_dir, quiet=True)
    records = manifest.find("benchmark").models  # every exported model, as the benchmark left it
    metric = manifest.metric.name
    out: dict[str, Any] = {"models": {}}
    for name, rec in records.items():
        curve = [_point(p, metric) for p in rec.prune.curve] if rec.prune else None
        out["models"][name] = {"test_accuracy_ort": rec.score(metric).value, "params": rec.params, "macs": rec.macs, "curve": curve}
    x = TASKS.get(task)().example_input(32).numpy()
    paths = {n: run_dir / rec.onnx for n, rec in records.items()}
    out["interleaved_b32"] = interleaved(paths, x, baseline="unpruned", rounds=args.rounds, threads=args.threads)
    print(f"{task}: " + ", ".join(f"{n} {v['test_accuracy_ort']:.4f}" for n, v in out["models"].items()), flush=True)
    return out


def _point(point: PrunePoint, metric: str) -> dict[str, Any]:
    """A pruning curve point as these results store it: the validation figure as `val_<metric>`, `final` only when set."""
    data = point.model_dump(mode="json")
    data.pop("final")
    out = {k if k != "val" else f"val_{metric}": v for k, v in data.items()}
    return {**out, "final": True} if point.final else out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["digits", "mnist1d"])
    parser.add_argument("--criteria", nargs="+", default=CRITERIA)
    parser.add_argument("--ratio", type=float, default=0.5, help="fraction of channels removed")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--step-epochs", type=int, default=3)
    parser.add_argument("--final-epochs", type=int, default=15)
    parser.add_argument("--finetune-lr", type=float, default=3e-3, help="peak learning rate of each fine-tune")
    parser.add_argument("--finetune-alpha", type=float, default=0.9, help="distillation weight while fine-tuning")
    parser.add_argument("--teacher-epochs", type=int, default=40)
    parser.add_argument("--round-to", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stem", default="prune_latency", help="results file name (without extension)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {task: run_task(task, args, Path(tmp)) for task in args.tasks}
    rows = []
    for task, r in results.items():
        base = r["models"]["unpruned"]
        for name, m in r["models"].items():
            lat = r["interleaved_b32"][name]
            curve = m["curve"] or []
            steps = " → ".join(f"{p['latency_ms']['p50']:.2f}ms/{100 * p['val_accuracy']:.1f}%" for p in curve)
            rows.append(
                [
                    task,
                    name,
                    f"{100 * m['test_accuracy_ort']:.2f}",
                    f"{100 * (m['test_accuracy_ort'] - base['test_accuracy_ort']):+.2f}",
                    f"{m['params']:,}",
                    f"{base['macs'] / m['macs']:.2f}x",
                    f"{lat['p50_ms']:.3f}",
                    f"{lat['speedup']:.2f}x (min {lat['speedup_min']:.2f}x)",
                    steps,
                ]
            )
    header = [
        "task",
        "model",
        "test acc % (ORT)",
        "vs unpruned (points)",
        "params",
        "MAC reduction",
        "b32 p50 ms",
        "b32 speedup, interleaved",
        "curve: step latency / val acc",
    ]
    notes = (
        f"Channel ratio {args.ratio} in {args.steps} steps, {args.step_epochs} fine-tuning epochs per step and {args.final_epochs} "
        f"at the end (distillation from the unpruned model, T=4, alpha={args.finetune_alpha}, peak lr {args.finetune_lr}, round_to {args.round_to}); seed {args.seed}. Speedup: median over {args.rounds} "
        f"interleaved rounds of the per-round p50 ratio, ORT CPU with {args.threads} threads. Curve latencies were measured inside "
        "the stage with its quick timing (20 calls), so they are noisier than the interleaved column."
    )
    md = save(args.stem, "Pruning: accuracy vs measured latency per importance criterion", header, rows, results, notes)
    print(md.read_text())


if __name__ == "__main__":
    main()
