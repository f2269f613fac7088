"""The whole chain over seeds: the model each run recommends against its FP32 teacher, timed again
interleaved with it in one process (ONNX Runtime CPU, 1 thread), at batch 1 and 32. The goal (issue 19):
>= 10x lower latency at batch 32, >= 4x at batch 1, >= 10x fewer parameters, test metric within 0.5
points, as means over the seeds.

    python benchmarks/chain_seeds.py --recipe digits_edge --seeds 0 1 2 3 4
    python benchmarks/chain_seeds.py --recipe mnist1d_edge --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _interleave import interleaved
from _results import save

from compress.pipeline import Pipeline
from compress.records import Summary

GOAL = {"b32": 10.0, "b1": 4.0, "params": 10.0, "points": 0.5}


def run_seed(recipe: str, seed: int, workdir: Path, rounds: int, max_drop: float | None) -> dict[str, Any]:
    """One run of the recipe at `seed` (1 thread), then its recommended model and teacher timed interleaved.
    With `max_drop`, the recipe's acceptance tolerance is replaced by it, so the recommendation is the fastest
    model within it; when none is, the model closest to it (the one its gates were checked on) is reported."""
    pipeline = Pipeline.from_recipe(recipe)
    pipeline.seed = seed
    pipeline.target = pipeline.target.model_copy(update={"threads": 1})
    if max_drop is not None and pipeline.acceptance is not None:
        pipeline.acceptance = pipeline.acceptance.model_copy(update={"max_metric_drop": max_drop})
    run = workdir / f"seed{seed}"
    manifest = pipeline.run(run, quiet=True)
    summary = Summary.model_validate_json((run / "summary.json").read_text())
    verdict = summary.verdict
    name = verdict.recommended or verdict.checked if verdict is not None else None
    if verdict is None or name is None:
        return {"seed": seed, "recommended": None, "why": verdict.why if verdict else "no verdict"}
    teacher, chosen = summary.model(verdict.reference), summary.model(name)
    paths = {"teacher": run / teacher.onnx, "chosen": run / chosen.onnx}
    timed = {}
    for batch in (1, 32):
        x = pipeline.task.load().full_batch(batch).numpy()
        timed[f"b{batch}"] = interleaved(paths, x, baseline="teacher", rounds=rounds, threads=1)
    return {
        "seed": seed,
        "recommended": chosen.name if verdict.recommended else f"none within tolerance; closest: {chosen.name}",
        "format": chosen.format,
        "teacher_metric": summary.value(teacher),
        "metric": summary.value(chosen),
        "params": [teacher.params, chosen.params],
        "ms": {b: [t["teacher"]["p50_ms"], t["chosen"]["p50_ms"]] for b, t in timed.items()},
        "speedup": {b: t["chosen"]["speedup"] for b, t in timed.items()},
        "speedup_min": {b: t["chosen"]["speedup_min"] for b, t in timed.items()},
        "stage_seconds": {s.id: round(s.duration_s or 0.0, 1) for s in manifest.stages},
    }


def _row(r: dict[str, Any]) -> list[Any]:
    if r["recommended"] is None:
        return [r["seed"], "none", r["why"], "", "", "", "", "", ""]
    change = 100 * (r["metric"] - r["teacher_metric"])
    return [
        r["seed"],
        f"{r['recommended']} ({r['format']})",
        f"{r['teacher_metric']:.4f} → {r['metric']:.4f} ({change:+.2f})",
        f"{r['params'][0] / r['params'][1]:.1f}x",
        f"{r['ms']['b1'][0]:.4f} / {r['ms']['b1'][1]:.4f}",
        f"{r['speedup']['b1']:.2f}x (min {r['speedup_min']['b1']:.2f})",
        f"{r['ms']['b32'][0]:.3f} / {r['ms']['b32'][1]:.3f}",
        f"{r['speedup']['b32']:.2f}x (min {r['speedup_min']['b32']:.2f})",
        f"{sum(r['stage_seconds'].values()):.0f} s",
    ]


def _means(runs: list[dict[str, Any]]) -> tuple[list[Any], dict[str, float]]:
    done = [r for r in runs if r["recommended"] is not None]
    mean = {
        "points": statistics.mean(100 * (r["metric"] - r["teacher_metric"]) for r in done),
        "params": statistics.mean(r["params"][0] / r["params"][1] for r in done),
        "b1": statistics.mean(r["speedup"]["b1"] for r in done),
        "b32": statistics.mean(r["speedup"]["b32"] for r in done),
    }
    sd = statistics.stdev(100 * (r["metric"] - r["teacher_metric"]) for r in done) if len(done) > 1 else 0.0
    met = mean["points"] >= -GOAL["points"] and all(mean[k] >= GOAL[k] for k in ("params", "b1", "b32"))
    within = sum(not r["recommended"].startswith("none") for r in done)
    row = ["mean", f"{within} of {len(runs)} within the tolerance", f"{mean['points']:+.2f} ± {sd:.2f} points", f"{mean['params']:.1f}x"]
    row += ["", f"{mean['b1']:.2f}x", "", f"{mean['b32']:.2f}x", "goal met" if met else "**goal not met**"]
    return row, mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="digits_edge", help="a recipe file or a packaged recipe's name")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds per batch size")
    parser.add_argument("--tag", help="results file suffix: chain_seeds_<recipe>_<tag> (e.g. held-out seeds)")
    parser.add_argument(
        "--max-drop", type=float, default=GOAL["points"] / 100, help="the recommendation's tolerance (default: the goal's %(default)s)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_seed(args.recipe, seed, Path(tmp), args.rounds, args.max_drop) for seed in args.seeds]
    header = ["seed", "recommended", "test metric teacher → it (points)", "fewer params", "b1 p50 ms teacher / it"]
    header += ["faster b1", "b32 p50 ms teacher / it", "faster b32", "run time"]
    mean_row, mean = _means(runs)
    notes = (
        "Latencies: ONNX Runtime CPU, 1 thread, the two files timed interleaved in one process (15 rounds, median of the "
        "per-round ratios; min = the worst round). The goal: >= 10x at b32, >= 4x at b1, >= 10x fewer parameters, "
        "within 0.5 points (means over seeds). The recommendation's tolerance was "
        f"{100 * args.max_drop:g} points (`--max-drop`), replacing the recipe's acceptance tolerance."
    )
    stem = f"chain_seeds_{Path(args.recipe).stem}" + (f"_{args.tag}" if args.tag else "")
    data = {"runs": runs, "mean": mean, "goal": GOAL}
    md = save(stem, f"The whole chain over seeds: {args.recipe}", header, [*map(_row, runs), mean_row], data, notes)
    print(md.read_text())


if __name__ == "__main__":
    main()
