"""One-line commands on your own model, built on the stages (no second code path): each fills in a
recipe from its flags, runs it like `edge-compress run`, and can write that recipe out as YAML instead."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

__all__ = ["add_quick_commands", "quantize_recipe"]

QUANTIZE_EPILOG = """\
examples:
  edge-compress quantize model.onnx --task digits                       INT8 for this machine's CPU
  edge-compress quantize model.onnx --task mydata:make_task --calibration calib.npy --cpu x86-avx2
  edge-compress quantize model.onnx --task digits --write-recipe int8.yaml   the recipe, to edit and run later

The run folder (default runs/<model>_int8) holds the INT8 file, the benchmark of both files and the report.
"""


def add_quick_commands(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser(
        "quantize",
        help="one line: an ONNX file to INT8 for a target CPU, checked, benchmarked and reported",
        description="Quantize an ONNX file to INT8 for the CPU it will run on: load -> quantize -> benchmark -> report.",
        epilog=QUANTIZE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("model", type=Path, help="the FP32 ONNX file")
    q.add_argument("--task", required=True, help="its data: a built-in task (digits, mnist1d, diabetes) or module:function")
    q.add_argument("--calibration", type=Path, help="calibration inputs, .npy (N, *input shape) or .npz; default: the task's train samples")
    q.add_argument("--mode", choices=["static", "dynamic"], default="static", help="static (calibrated, CNNs) or dynamic")
    q.add_argument("--cpu", default="auto", help="the CPU it will run on: auto (this one), x86-avx2, x86-avx512, x86-vnni, arm64")
    q.add_argument("--threads", type=int, help="threads for the benchmark (default: the CPUs this process may use)")
    q.add_argument("--out", type=Path, help="run folder (default: runs/<model>_int8)")
    q.add_argument("--write-recipe", type=Path, metavar="FILE", help="write the recipe these flags make to FILE and stop")
    mode = q.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="reuse finished stages")
    mode.add_argument("--overwrite", action="store_true", help="replace an earlier run in the folder")


def quantize_recipe(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe the `quantize` command's flags stand for."""
    task = {"factory": args.task} if ":" in args.task else {"name": args.task}
    target: dict[str, Any] = {"cpu": args.cpu, **({"threads": args.threads} if args.threads else {})}
    calibration = {"file": str(args.calibration.resolve())} if args.calibration else {}
    return {
        "name": _name(args.model.stem, "_int8"),
        "task": task,
        "target": target,
        "stages": [
            {"load": {"name": "model", "model": {"onnx": str(args.model.resolve())}}},
            {"quantize": {"mode": args.mode, **({"calibration": calibration} if calibration else {})}},
            {"benchmark": {"batch_sizes": [1, 32]}},
            {"report": {}},
        ],
    }


def _name(stem: str, suffix: str) -> str:
    """A run name from a file name: the characters a run name allows, at most 64 of them."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip("_.-") or "model"
    return base[: 64 - len(suffix)] + suffix
