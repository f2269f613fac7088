"""The demo recipe over several seeds: is the acceptance bar (teacher >= 98%, student >= 97% test
accuracy through ONNX Runtime, student <= 1/10 of the teacher's parameters) met by more than luck?

    python benchmarks/demo_seeds.py --recipe pipelines/digits_edge.yaml --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import save

from compress.pipeline import Pipeline
from compress.records import Summary, SummaryEntry


def entry(model: SummaryEntry) -> dict[str, Any]:
    """A model of the run's summary.json, in the shape this benchmark's results have always had: the headline
    metric (test split through the first benchmark target), sizes, p50/p90 latency per target and batch."""
    return {
        "name": model.name,
        "stage": model.stage,
        "arch": model.spec.label,
        "checkpoint": model.checkpoint,
        "onnx": model.onnx,
        "metric": {"name": model.metric.metric, "value": model.metric.value, "split": model.metric.split} if model.metric else None,
        "params": model.params,
        "macs": model.macs,
        "size_bytes": model.size_bytes,
        "latency_ms": {
            target: {batch: {"p50": s.p50, "p90": s.p90} for batch, s in bench.latency_ms.items()}
            for target, bench in model.bench.items()
            if bench.latency_ms
        },
        "parity": model.parity.model_dump() if model.parity else None,
    }


def run_seed(recipe: Path, seed: int, workdir: Path) -> dict[str, dict[str, Any]]:
    pipeline = Pipeline.from_recipe(recipe)
    pipeline.seed = seed
    pipeline.run(workdir / f"seed{seed}", quiet=True)
    summary = Summary.model_validate_json((workdir / f"seed{seed}" / "summary.json").read_text())
    return {m.name: entry(m) for m in summary.models}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=Path("pipelines/digits_edge.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {seed: run_seed(args.recipe, seed, Path(tmp)) for seed in args.seeds}
    names = list(next(iter(runs.values())))
    header = ["model", "seed", "test metric (ORT)", "params", "MACs", "size (bytes)", "b1 p50 ms", "b32 p50 ms"]
    rows = []
    for seed, models in runs.items():
        for name in names:
            m = models[name]
            lat = m["latency_ms"]["ort-cpu"]
            rows.append(
                [
                    name,
                    seed,
                    f"{m['metric']['value']:.4f}",
                    m["params"],
                    m["macs"],
                    m["size_bytes"],
                    f"{lat['1']['p50']:.3f}",
                    f"{lat['32']['p50']:.3f}",
                ]
            )
    for name in names:
        values = [runs[s][name]["metric"]["value"] for s in args.seeds]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append([name, "mean ± std", f"{statistics.mean(values):.4f} ± {spread:.4f}", "", "", "", "", ""])
    stem = f"demo_seeds_{args.recipe.stem}"
    md = save(stem, f"Demo recipe over seeds: {args.recipe.name}", header, rows, {str(s): r for s, r in runs.items()})
    print(md.read_text())


if __name__ == "__main__":
    main()
