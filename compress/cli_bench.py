"""`edge-compress bench` and `edge-compress regress`: measure a model file, save a baseline, and fail
CI on a latency (or metric) regression. Parsing and printing only; the work is in compress.bench."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from compress.errors import RecipeError

__all__ = ["add_commands"]

BENCH_EPILOG = """\
targets: ort-cpu, ort-cuda, ort-tensorrt, openvino-cpu (ONNX files); torch-cpu, torch-compile, torch-cuda,
torch-cuda-compile (torch.export .pt2 files). A target this machine cannot run is an error naming what to install.

examples:
  edge-compress bench student.onnx                              latency at batch 1 on ONNX Runtime CPU
  edge-compress bench student.onnx --task digits --batch-sizes 1 32 --save-baseline perf/student.json
  edge-compress bench student.onnx --target openvino-cpu --threads 1
  edge-compress bench silero_vad.onnx --input-shape input=1x512 --input-value sr=16000 --batch-sizes 1 8

inputs without --task: each graph input is made from its declared shape and type (floats: seeded random normals,
integers: zeros); dimensions the file leaves open come from --input-shape NAME=<shape at batch 1>; the batch
axes (axis 0 of the first input, and every axis sharing its symbolic name) take each --batch-sizes value.

statistics: each of --rounds rounds times calls until --min-time and 20 calls; p50/p90/p99 are over all calls;
a result is flagged noisy when the round medians vary by more than 5%.
"""

REGRESS_EPILOG = """\
examples:
  edge-compress regress student.onnx --baseline perf/student.json --max-slowdown 10% --junit regress.xml
  edge-compress regress new.onnx --reference old.onnx --max-slowdown 5% --task digits --max-metric-drop 0.005

A check fails when the model is slower with statistical support (bootstrap confidence interval of the
ratio of medians entirely above 1, rank test p < --alpha) AND by more than --max-slowdown. --reference times
both models interleaved in one process, so machine noise hits both alike; it needs no stored baseline.

exit codes: 0 no regression, 1 regression, 2 bad input (missing or corrupt baseline, unknown target).
"""


def _settings_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("how to measure")
    g.add_argument("--target", default="ort-cpu", help="runtime and device (default: ort-cpu)")
    g.add_argument("--threads", type=int, help="intra-op CPU threads (default: all cores)")
    g.add_argument("--optimization", default="all", help="ONNX Runtime graph optimization: all, extended, basic, disabled")
    g.add_argument("--precision", default="f32", help="OpenVINO inference precision hint: f32, bf16, f16")
    g.add_argument(
        "--cpu",
        default="auto",
        help="the deployment CPU: auto (this machine), x86-avx2, x86-avx512, x86-vnni, arm64; "
        "a machine of another kind is a warning (an error for regress --strict-environment)",
    )
    g.add_argument("--batch-sizes", type=int, nargs="+", default=[1], metavar="N", help="batch sizes to time (default: 1)")
    g.add_argument("--rounds", type=int, default=15, help="measuring rounds, each on a fresh load (default: 15; comparisons need >= 6)")
    g.add_argument("--min-time", type=float, default=0.1, metavar="S", help="seconds of timed calls per round (default: 0.1)")
    g.add_argument("--warmup", type=int, default=20, help="untimed calls first (default: 20)")
    g.add_argument(
        "--task",
        help="built-in task (digits, mnist1d, diabetes), a gymnasium id (CartPole-v1: the metric is the return), or 'module:function'",
    )
    g.add_argument("--split", default="test", help="split for inputs and metric: test or val (default: test)")
    g.add_argument(
        "--input-shape",
        action="append",
        metavar="[NAME=]SHAPE",
        help="input shape without a task, where the ONNX file leaves it open: per sample for the only input (1,8,8), or "
        "NAME=1x3x48x192 for a named input at batch 1; repeat for several inputs (default: from the ONNX file)",
    )
    g.add_argument(
        "--input-value",
        action="append",
        metavar="NAME=V",
        help="fill a named input with one value instead of random normals or zeros, e.g. sr=16000; repeatable",
    )


def _settings(args: argparse.Namespace):
    from compress.bench.model_bench import BenchSettings
    from compress.recipe import format_validation_error

    shape, shapes = _input_shapes(args.input_shape or [])
    task = None
    if args.task:
        kind = "factory" if ":" in args.task else "env" if re.fullmatch(r"[A-Za-z][\w/]*-v\d+", args.task) else "name"
        task = {kind: args.task}
    data: dict[str, Any] = {
        "target": {
            "name": args.target,
            "threads": args.threads,
            "optimization": args.optimization,
            "precision": args.precision,
            "cpu": args.cpu,
        },
        "batch_sizes": args.batch_sizes,
        "timing": {"warmup": args.warmup, "rounds": args.rounds, "min_time_s": args.min_time},
        "task": task,
        "split": args.split,
        "input_shape": shape,
        "input_shapes": shapes,
        "input_values": _input_values(args.input_value or []),
    }
    try:
        return BenchSettings.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        option = _OPTIONS.get(first["loc"][-1] if first["loc"][-1] in _OPTIONS else first["loc"][0], "an option")
        raise RecipeError(
            f"{option}: {format_validation_error(first, BenchSettings)}", fix=f"see edge-compress {args.command} --help"
        ) from None


MEASUREMENT = "edge-compress-measurement"
"""The "kind" of a `bench --json` file (so a later --json may replace it, and nothing else)."""

_OPTIONS = {
    "name": "--target",
    "threads": "--threads",
    "optimization": "--optimization",
    "precision": "--precision",
    "cpu": "--cpu",
    "batch_sizes": "--batch-sizes",
    "rounds": "--rounds",
    "min_time_s": "--min-time",
    "warmup": "--warmup",
    "task": "--task",
    "factory": "--task",
    "env": "--task",
    "split": "--split",
    "input_shape": "--input-shape",
    "input_shapes": "--input-shape",
    "input_values": "--input-value",
}


def _input_shapes(texts: list[str]) -> tuple[tuple[int, ...] | None, dict[str, tuple[int, ...]]]:
    """--input-shape values: (the per-sample shape of the only input, or None; shapes at batch 1 by input name)."""
    per_sample, named = None, {}
    for text in texts:
        name, _, dims = text.rpartition("=")
        try:
            shape = tuple(int(d) for d in re.split(r"[x,]", dims.strip()))
        except ValueError:
            raise RecipeError(
                f"--input-shape {text!r} is not a list of integers",
                fix="write it like 1,8,8 (per sample) or NAME=1x3x48x192 (an input at batch 1)",
            ) from None
        if name in named or (not name and per_sample is not None):
            raise RecipeError(f"--input-shape gives {name or 'the per-sample shape'} twice", fix="give each input's shape once")
        if name:
            named[name] = shape
        else:
            per_sample = shape
    return per_sample, named


def _input_values(texts: list[str]) -> dict[str, float]:
    """--input-value values: the number each named input is filled with."""
    values = {}
    for text in texts:
        name, _, value = text.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not name.strip() or not math.isfinite(number):
            raise RecipeError(f"--input-value {text!r} is not NAME=NUMBER", fix="write it like sr=16000")
        values[name.strip()] = number
    return values


def non_negative_number(text: str) -> float:
    value = float(text)  # argparse turns the ValueError into "invalid value"
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of 0 or more")
    return value


def probability(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1 (e.g. 0.05)")
    return value


def add_commands(sub: argparse._SubParsersAction) -> dict[str, Any]:
    bench = sub.add_parser(
        "bench",
        help="measure a model's latency (and metric); save a baseline",
        description="Measure latency (p50/p90/p99, throughput, memory) of an ONNX or .pt2 file on a target.",
        epilog=BENCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("model", type=Path, help="model file: .onnx, or .pt2 for torch-* targets")
    _settings_args(bench)
    bench.add_argument("--save-baseline", type=Path, metavar="FILE", help="write the measurement as a baseline for 'regress'")
    bench.add_argument(
        "--json", type=Path, metavar="FILE", help="write the full measurement as JSON ('-': to stdout, the summary then goes to stderr)"
    )

    regress = sub.add_parser(
        "regress",
        help="fail (exit 1) when a model got slower than a baseline or reference",
        description="Latency regression test against a stored baseline or a reference model.",
        epilog=REGRESS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    regress.add_argument("model", type=Path, help="model file to test")
    against = regress.add_mutually_exclusive_group(required=True)
    against.add_argument("--baseline", type=Path, metavar="FILE", help="baseline from 'bench --save-baseline' (its settings are reused)")
    against.add_argument("--reference", type=Path, metavar="MODEL", help="model to compare with, timed interleaved now")
    regress.add_argument("--max-slowdown", required=True, metavar="PCT", help="tolerated slowdown, e.g. 10%% or 0.1")
    regress.add_argument(
        "--max-metric-drop", type=non_negative_number, metavar="X", help="tolerated metric drop in its units (0.01 = 1 accuracy point)"
    )
    regress.add_argument("--alpha", type=probability, default=0.05, help="significance level of the rank test (default: 0.05)")
    regress.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML for CI")
    regress.add_argument("--strict-environment", action="store_true", help="a machine unlike the baseline's is an error, not a warning")
    _settings_args(regress)
    return {"bench": _bench, "regress": _regress}


def _fmt(stats: dict[str, Any]) -> str:
    noisy = "  NOISY" if stats["noisy"] else ""
    return (
        f"p50 {stats['p50']:.4g}  p90 {stats['p90']:.4g}  p99 {stats['p99']:.4g}  mean {stats['mean']:.4g} ± {stats['std']:.2g} ms  "
        f"cv {stats['cv']:.2f}  {stats['throughput']:,.0f}/s  (n={stats['n']}, rounds vary {100 * stats['round_cv']:.1f}%){noisy}"
    )


def _bench(args: argparse.Namespace) -> int:
    from compress.bench.baseline import KIND, save_baseline
    from compress.bench.model_bench import bench_model
    from compress.fsio import check_replaceable, check_writable, write_json

    to_stdout = args.json == Path("-")  # `--json -`: the JSON on stdout, the human lines on stderr
    for option, path, kind in (("--json", None if to_stdout else args.json, MEASUREMENT), ("--save-baseline", args.save_baseline, KIND)):
        if path is not None:
            check_writable(path, option)
            check_replaceable(path, option, kind)
    result = bench_model(args.model, _settings(args))
    with contextlib.redirect_stdout(sys.stderr) if to_stdout else contextlib.nullcontext():
        _show(args, result)
    if to_stdout:
        print(json.dumps({"kind": MEASUREMENT, **result}, indent=2))
    elif args.json:
        write_json(args.json, {"kind": MEASUREMENT, **result})
    if args.save_baseline:
        save_baseline(result, args.save_baseline, command=shlex.join(["edge-compress", *sys.argv[1:]]))
        print(f"baseline: {args.save_baseline}", file=sys.stderr if to_stdout else sys.stdout)
    return 0


def _show(args: argparse.Namespace, result: dict) -> None:
    """The human-readable measurement, on stdout (stderr when stdout carries the JSON)."""
    r = result["runner"]
    print(f"{args.model}  on {r['target']} ({r['runtime']}, {r['provider']}, {r['threads']} threads)")
    made = result["model"].get("inputs") or {}
    if made:
        print(
            "  inputs at batch 1: "
            + ", ".join(f"{n} {'x'.join(map(str, i['shape'])) or 'scalar'} {i['dtype']} ({i['values']})" for n, i in made.items())
        )
    for batch, stats in result["latency"].items():
        print(f"  batch {batch:>4}: {_fmt(stats)}")
    mem = result["memory"]
    print(f"  memory: peak RSS {mem['peak_rss_mb']:.0f} MiB ({mem['scope']}), +{mem['rss_growth_mb']:.1f} MiB while loading and running")
    if result["metric"]:
        m = result["metric"]
        print(f"  {m['name']} ({m['split']}): {m['value']:.4f}")
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if any(s["noisy"] for s in result["latency"].values()):
        print("warning: noisy measurement; close other work, pin --threads, or raise --rounds/--min-time", file=sys.stderr)


def _regress(args: argparse.Namespace) -> int:
    from compress.bench.baseline import load_baseline
    from compress.bench.junit import write_junit
    from compress.bench.regress import against_baseline, against_reference, parse_fraction
    from compress.fsio import check_writable

    slowdown = parse_fraction(args.max_slowdown, "--max-slowdown")
    if args.junit is not None:
        check_writable(args.junit, "--junit")
    if args.baseline:
        baseline = load_baseline(args.baseline)
        result = against_baseline(
            args.model,
            baseline,
            baseline_path=str(args.baseline),
            max_slowdown=slowdown,
            max_metric_drop=args.max_metric_drop,
            alpha=args.alpha,
            strict_environment=args.strict_environment,
        )
    else:
        result = against_reference(
            args.model, args.reference, _settings(args), max_slowdown=slowdown, max_metric_drop=args.max_metric_drop, alpha=args.alpha
        )
    for line in result.lines():
        print(line)
    if args.junit:
        write_junit(result, args.junit)
        print(f"junit: {args.junit}")
    print(f"{'no regression' if result.passed else 'REGRESSION'}: {args.model} vs {result.against}")
    return result.exit_code
