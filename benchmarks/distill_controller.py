"""Who should set the distillation knobs? Four ways, at an equal training budget.

For each task and seed one pipeline trains the teacher, then the same student four times, each for the
same number of epochs in total, with the same two feature pairs on offer (a FitNets hint between the
last feature stages, attention transfer between the first):

    fixed       T=4, alpha=0.9, both feature terms on, all the time
    linear      T from 8 down to 1 (linear schedule), alpha=0.9, both feature terms on
    search      Optuna TPE over constant (T in [0.5, 8], alpha in [0, 1], one of the two pairs):
                `trials` trials of epochs // trials epochs each; the best validated student is kept
    controller  the learned controller (actor-critic, online): per epoch it picks T, alpha and one
                pair; rewarded with the gain in validation accuracy; it starts at T=4, alpha=0.9

Test accuracy is the PyTorch model's on the task's fixed test split; mean and std over seeds, and the
paired difference to `fixed` (same seed, same teacher).

    python benchmarks/distill_controller.py --tasks digits --seeds 0 1 2 3 4 --stem distill_controller_digits
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
from distill_methods import SETUPS

from compress.bench.runners import TargetSpec
from compress.pipeline import Pipeline
from compress.stages.distill import Distill
from compress.stages.train import Train

METHODS = ["fixed", "linear", "search", "controller"]


def stages_for(setup: dict[str, Any], epochs: int, teacher_epochs: int, trials: int) -> list:
    pairs = [
        {"student": setup["hint"][0], "teacher": setup["hint"][1], "loss": "hint"},
        {"student": setup["attention"][0], "teacher": setup["attention"][1], "loss": "attention", "weight": 10.0},
    ]
    common = {"model": setup["student"], "epochs": epochs, "features": pairs, "alpha": 0.9}
    return [
        Train(name="teacher", model=setup["teacher"], epochs=teacher_epochs),
        Distill(name="fixed", temperature=4.0, **common),
        Distill(name="linear", temperature={"kind": "linear", "start": 8.0, "end": 1.0}, **common),
        Distill(name="search", temperature=4.0, controller={"kind": "search", "trials": trials}, **common),
        Distill(name="controller", temperature=4.0, controller={"kind": "learned"}, **common),
    ]


def run(task: str, seed: int, args: argparse.Namespace, workdir: Path) -> dict[str, dict[str, Any]]:
    stages = stages_for(SETUPS[task], args.epochs, args.teacher_epochs, args.trials)
    pipeline = Pipeline(stages, task=task, name=f"{task}-{seed}", seed=seed, target=TargetSpec(threads=args.threads))
    manifest = pipeline.run(workdir / f"{task}-{seed}", quiet=True)
    out: dict[str, dict[str, Any]] = {}
    for name, rec in manifest.records().items():  # test accuracy in PyTorch; seconds: the stage that made the model
        out[name] = {
            "accuracy": rec.score("accuracy", runtime="torch").value,
            "params": rec.params,
            "seconds": manifest.find(rec.stage).duration_s,
        }
        controller = rec.training.controller if rec.training else None
        if controller is not None:  # as the results have stored it: the fields its kind sets
            out[name]["controller"] = {k: v for k, v in controller.model_dump(mode="json").items() if v is not None}
    return out


def _row(task: str, method: str, runs: dict[int, dict[str, dict[str, Any]]]) -> list[Any]:
    acc = [100 * r[method]["accuracy"] for r in runs.values()]
    diff = [100 * (r[method]["accuracy"] - r["fixed"]["accuracy"]) for r in runs.values()]
    better = sum(d > 0 for d in diff)
    worse = sum(d < 0 for d in diff)
    secs = statistics.mean(r[method]["seconds"] for r in runs.values())
    spread = statistics.stdev(acc) if len(acc) > 1 else 0.0
    vs_fixed = "" if method == "fixed" else f"{statistics.mean(diff):+.2f} ± {statistics.stdev(diff) if len(diff) > 1 else 0:.2f}"
    wins = "" if method == "fixed" else f"{better} / {worse}"
    return [task, method, f"{statistics.mean(acc):.2f} ± {spread:.2f}", f"{min(acc):.2f}", vs_fixed, wins, f"{secs:.0f}"]


def _choices(runs: dict[int, dict[str, dict[str, Any]]]) -> str:
    """What the controller and the search ended up choosing, averaged over seeds."""
    temps, alphas, pairs, searched = [], [], [], []
    for r in runs.values():
        decisions = r["controller"]["controller"]["decisions"]
        temps += [d["temperature"] for d in decisions]
        alphas += [d["alpha"] for d in decisions]
        pairs += [d["feature_pair"] for d in decisions]
        trials = r["search"]["controller"]["trials"]
        searched.append(trials[r["search"]["controller"]["best_trial"]]["params"])
    hint_share = pairs.count(0) / max(len(pairs), 1)
    best = "; ".join(f"T={p['temperature']:.2f}, alpha={p['alpha']:.2f}, pair {p.get('feature_pair', '-')}" for p in searched)
    return (
        f"controller decisions over all seeds and epochs: T median {statistics.median(temps):.2f} "
        f"(range {min(temps):.2f}-{max(temps):.2f}), alpha median {statistics.median(alphas):.2f}, hint chosen in {hint_share:.0%} of epochs. "
        f"Search's best trial per seed: {best}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["digits", "mnist1d"], choices=sorted(SETUPS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=40, help="student training epochs per method (search: in total over its trials)")
    parser.add_argument("--teacher-epochs", type=int, default=30)
    parser.add_argument("--trials", type=int, default=4, help="search trials (each gets epochs // trials epochs)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--stem", default="distill_controller")
    args = parser.parse_args()
    results: dict[str, dict[int, Any]] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            results[task] = {}
            for seed in args.seeds:
                results[task][seed] = run(task, seed, args, Path(tmp))
                print(f"{task} seed {seed}: " + ", ".join(f"{m} {results[task][seed][m]['accuracy']:.4f}" for m in METHODS), flush=True)
    rows = [_row(task, method, runs) for task, runs in results.items() for method in METHODS]
    notes = [
        f"Seeds {args.seeds}; every student {args.epochs} epochs in total (search: {args.trials} trials of {args.epochs // args.trials}), "
    ]
    notes[0] += f"batch 64, AdamW 3e-3, cosine; teacher {args.teacher_epochs} epochs. 'vs fixed' is the paired difference in points "
    notes[0] += f"(mean ± std over seeds); 'better / worse' counts seeds. Wall time {time.perf_counter() - t0:.0f} s."
    notes += [f"{task}: {_choices(runs)}" for task, runs in results.items()]
    header = ["task", "method", "test acc % (mean ± std)", "min %", "vs fixed (points)", "better / worse than fixed", "s per run"]
    path = save(
        args.stem,
        "Distillation knobs: fixed vs schedule vs search vs learned controller (equal budget)",
        header,
        rows,
        results,
        "\n\n".join(notes),
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
