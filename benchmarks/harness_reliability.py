"""Can the latency regression test be trusted? On a real model and target:

- A/A: the same ONNX file compared with itself (two independent loads per round) `--repeats` times;
  the share of "slower" verdicts at the regress threshold is the false-regression rate (target <= 5%).
- Injected slowdown: the candidate is the same model with every call made 15% longer (the call is
  timed and a busy-wait adds 15% of its own duration, so the true slowdown is exactly 15% whatever the
  machine does); the share of "slower" verdicts is the detection rate (target >= 95%).
- Stability: the coefficient of variation, across repeats, of the reference's median latency.

Both modes of `edge-compress regress` are measured: `reference` (interleaved, paired rounds in one
process) and `baseline` (the reference measured on its own first, then the candidate: unpaired, as
with a stored baseline, but in one process). With --target a GPU target, the same figures for it.

    python benchmarks/harness_reliability.py --repeats 40 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._results import save
from compress.bench.compare import compare_interleaved, compare_rounds
from compress.bench.model_bench import measure_sessions
from compress.bench.runners import Loaded, Sessions, TargetSpec, make_runner
from compress.bench.timing import TimingConfig
from compress.deploy import export_onnx
from compress.models.zoo import resnet_cnn


class Slowed(Loaded):
    """`inner` with every timed call stretched by `factor` of its own duration (busy-wait, so the CPU
    stays as busy as real work would keep it)."""

    def __init__(self, inner: Loaded, factor: float) -> None:
        super().__init__(inner.predict_fn)
        self.inner, self.factor, self.clock = inner, factor, inner.clock

    def prepare(self, x: np.ndarray):
        call = self.inner.prepare(x)

        def slowed() -> None:
            start = time.perf_counter_ns()
            call()
            until = time.perf_counter_ns() + self.factor * (time.perf_counter_ns() - start)
            while time.perf_counter_ns() < until:
                pass

        return slowed


class SlowedRunner:
    def __init__(self, runner, factor: float) -> None:
        self.runner, self.factor, self.target = runner, factor, runner.target

    def load(self, model) -> Loaded:
        return Slowed(self.runner.load(model), self.factor)


def _model(folder: Path, width: int) -> Path:
    torch.manual_seed(0)
    path = folder / f"resnet_cnn_w{width}.onnx"
    export_onnx(resnet_cnn((1, 8, 8), 10, width=width).eval(), torch.randn(2, 1, 8, 8), path, opset=17, exporter="legacy")
    return path


def _one(mode: str, runner, candidate_runner, path: Path, x: np.ndarray, timing: TimingConfig):
    reference = Sessions(runner, path)
    candidate = Sessions(candidate_runner, path)
    if mode == "reference":
        return compare_interleaved(candidate, reference, x, timing)
    ref = measure_sessions(reference, x, timing)["round_p50"]
    cand = measure_sessions(candidate, x, timing)["round_p50"]
    return compare_rounds(cand, ref, paired=False)


def _series(mode: str, runner, candidate_runner, path, x, timing, repeats: int, tolerance: float) -> dict:
    verdicts, ratios, medians = [], [], []
    for _ in range(repeats):
        c = _one(mode, runner, candidate_runner, path, x, timing)
        verdicts.append(c.verdict(tolerance))
        ratios.append(c.ratio)
        medians.append(statistics.median(c.reference_ms))
    return {
        "slower": verdicts.count("slower") / repeats,
        "faster": verdicts.count("faster") / repeats,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "reference_median_ms": statistics.median(medians),
        "reference_median_cv": statistics.stdev(medians) / statistics.mean(medians),
        "verdicts": verdicts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds of timed calls per round and model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--target", default="ort-cpu")
    parser.add_argument("--width", type=int, default=16, help="resnet_cnn width (16: ~0.03 ms per call at batch 1)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--slowdown", type=float, default=0.15)
    parser.add_argument("--tolerance", type=float, default=0.10, help="regress --max-slowdown")
    parser.add_argument("--modes", nargs="+", default=["reference", "baseline"])
    parser.add_argument("--stem", default="harness_reliability")
    args = parser.parse_args()

    timing = TimingConfig(warmup=20, warmup_time_s=0.05, rounds=args.rounds, min_iters=20, min_time_s=args.min_time)
    runner = make_runner(TargetSpec(name=args.target, threads=args.threads))
    x = np.random.default_rng(0).standard_normal((args.batch, 1, 8, 8)).astype(np.float32)
    rows, data = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        path = _model(Path(tmp), args.width)
        for mode in args.modes:
            for case, factor in (("A/A", 0.0), (f"+{100 * args.slowdown:.0f}%", args.slowdown)):
                start = time.perf_counter()
                candidate = SlowedRunner(runner, factor) if factor else runner  # A/A: the very same code path on both sides
                series = _series(mode, runner, candidate, path, x, timing, args.repeats, args.tolerance)
                series["seconds"] = time.perf_counter() - start
                data[f"{mode} {case}"] = series
                rate = series["slower"]
                goal = "<= 5%" if factor == 0 else ">= 95%"
                ok = rate <= 0.05 if factor == 0 else rate >= 0.95
                rows.append(
                    [
                        mode,
                        case,
                        f"{100 * rate:.1f}% ({goal}: {'met' if ok else 'NOT met'})",
                        f"{series['ratio_median']:.3f} [{series['ratio_min']:.3f}, {series['ratio_max']:.3f}]",
                        f"{series['reference_median_ms']:.4f}",
                        f"{100 * series['reference_median_cv']:.2f}%",
                        f"{series['seconds']:.0f}",
                    ]
                )
                print(rows[-1], flush=True)
    notes = (
        f"Model: resnet_cnn width {args.width} (random weights), batch {args.batch}, target {args.target} with {args.threads} thread(s). "
        f"Each comparison: {args.rounds} rounds, {args.min_time} s of timed calls per round and model, a fresh load of each model per round. "
        f"'slower' = regress's failing verdict at --max-slowdown {100 * args.tolerance:.0f}%: bootstrap 95% CI of the ratio of medians "
        "above 1, rank test p < 0.05 (Wilcoxon signed-rank paired, Mann-Whitney U unpaired) and ratio above the limit. "
        "The injected slowdown stretches every call by a busy-wait proportional to its own duration. "
        "CV of the median: spread across repeats of the reference's median latency."
    )
    header = ["mode", "case", "'slower' verdicts", "ratio median [min, max]", "reference p50 (ms)", "CV of the median", "seconds"]
    print(save(args.stem, "Latency regression test: false alarms and detection", header, rows, data, notes))


if __name__ == "__main__":
    main()
