"""How the fine-tuning after pruning affects the accuracy the pruned model keeps (digits, residual CNN,
half the channels, lamp importance, 3 seeds): distillation as configured by default, with alpha 0.5
(more weight on the labels), and with FitNets hints from the unpruned model at layer1 and layer2.

    python benchmarks/prune_finetune.py --seeds 0 1 2
    python benchmarks/prune_finetune.py --seeds 0 1 2 3 4 --variants "default (alpha 0.9)" "alpha 0.5"
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

from compress.bench.runners import TargetSpec
from compress.pipeline import Pipeline
from compress.stages import Prune, Train

HINTS = [{"student": f"layer{i}", "teacher": f"layer{i}", "loss": "hint"} for i in (1, 2)]
VARIANTS: dict[str, dict[str, Any]] = {"default (alpha 0.9)": {}, "alpha 0.5": {"alpha": 0.5}, "hints": {"features": HINTS}}


def run(seed: int, finetune: dict[str, Any]) -> tuple[float, float]:
    stages = [
        Train(name="unpruned", model={"arch": "resnet_cnn", "width": 32, "blocks": [2, 2]}, epochs=40),
        Prune(
            model="unpruned",
            importance="lamp",
            target={"kind": "ratio", "value": 0.5},
            steps=4,
            finetune={"epochs": 3, "final_epochs": 15, **finetune},
            timing={"warmup": 1, "min_iters": 5, "min_time_s": 0},
        ),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Pipeline(stages, task="digits", seed=seed, target=TargetSpec(threads=2)).run(tmp, quiet=True)
    records = manifest.records()  # test accuracy in PyTorch, before and after pruning
    unpruned, pruned = (records[name].score("accuracy", runtime="torch").value for name in ("unpruned", "unpruned_pruned"))
    return unpruned, pruned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--stem", default="prune_finetune", help="results file name (without extension)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    data, rows = {}, []
    for name in args.variants:
        finetune = VARIANTS[name]
        pairs = {seed: run(seed, finetune) for seed in args.seeds}
        deltas = [100 * (b - a) for a, b in pairs.values()]
        print(name, deltas, flush=True)
        data[name] = {str(s): {"unpruned": a, "pruned": b} for s, (a, b) in pairs.items()}
        spread = statistics.stdev(deltas) if len(deltas) > 1 else 0.0
        rows.append(
            [name, " / ".join(f"{d:+.2f}" for d in deltas), f"{statistics.mean(deltas):+.2f} ± {spread:.2f}", f"{min(deltas):+.2f}"]
        )
    header = ["fine-tuning", f"test accuracy change, seeds {args.seeds} (points)", "mean ± std", "worst"]
    notes = (
        "Residual CNN (169,834 params) pruned to 42,938 by lamp importance in 4 steps, 3 distillation epochs per step and 15 at the "
        "end; accuracy in PyTorch on the 360-image test split (one image = 0.28 points)."
    )
    md = save(args.stem, "Pruning: which fine-tuning keeps accuracy (digits)", header, rows, data, notes)
    print(md.read_text())


if __name__ == "__main__":
    main()
