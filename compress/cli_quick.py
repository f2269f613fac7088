"""One-line commands on your own model, built on the stages (no second code path): each fills in a
recipe from its flags, runs it like `edge-compress run`, and can write that recipe out as YAML instead."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, NamedTuple

from compress.errors import RecipeError
from compress.starter import EPOCHS

__all__ = ["add_quick_commands", "add_train_threads", "compress_recipe", "quantize_recipe"]

QUANTIZE_EPILOG = """\
examples:
  edge-compress quantize model.onnx --task digits                       INT8 for this machine's CPU
  edge-compress quantize model.onnx --task mydata:make_task --calibration calib.npy --cpu x86-avx2
  edge-compress quantize model.onnx --task digits --write-recipe int8.yaml   the recipe, to edit and run later

The run folder (default runs/<model>_int8) holds the INT8 file, the benchmark of both files and the report.
"""

COMPRESS_EPILOG = """\
examples:
  edge-compress compress --model mymodels:make_net --checkpoint net.pt --task mydata:make_task
  edge-compress compress --model mymodels:make_net --checkpoint net.pt --task digits --prune 0 --no-int8
  edge-compress compress --model mymodels:make_net --checkpoint net.pt --task digits --write-recipe chain.yaml

Your model (a function returning an nn.Module; --checkpoint: its state dict, loaded with weights_only=True)
is the teacher. The chain is the one `edge-compress init` writes: a student distilled from it, pruned with
distillation fine-tuning, exported to ONNX (checked against PyTorch), INT8 for --cpu, benchmarked at batch
1 and 32, and reported. The run folder (default runs/<function>_edge) holds every file and the report.
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
    _add_run_options(q, "runs/<model>_int8")

    c = sub.add_parser(
        "compress",
        help="one line: your PyTorch model (module:function + checkpoint) through the whole chain to an INT8 ONNX student",
        description="Compress your trained PyTorch model: distill -> prune -> export -> INT8 -> benchmark -> report.",
        epilog=COMPRESS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("--model", required=True, help="your teacher: module:function returning the nn.Module (or a zoo arch name)")
    c.add_argument("--checkpoint", help="its trained weights (a state dict file); without it, the teacher is trained here first")
    c.add_argument("--task", required=True, help="its data: a built-in task (digits, mnist1d, diabetes) or module:function")
    c.add_argument(
        "--student",
        default="auto",
        help="auto (a MobileNetV2-style CNN for images and sequences, an MLP for feature vectors, the largest with at most "
        "a quarter of the teacher's parameters), a zoo arch, or module:function",
    )
    c.add_argument(
        "--epochs", type=int, default=EPOCHS, help=f"distillation epochs, and the teacher's when it is trained here (default {EPOCHS})"
    )
    c.add_argument("--prune", type=float, default=0.5, metavar="RATIO", help="fraction of the student's channels to remove (0: no pruning)")
    c.add_argument("--int8", action=argparse.BooleanOptionalAction, default=True, help="add the INT8 step (default: yes)")
    _add_run_options(c, "runs/<function>_edge")

    for command in (q, c):
        command.set_defaults(make_recipe=quantize_recipe if command is q else compress_recipe)


def compress_recipe(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe the `compress` command's flags stand for: the whole-chain template (compress.starter)."""
    from compress.starter import chain_recipe, model_entry, student_for, task_entry

    if args.checkpoint and not Path(args.checkpoint).expanduser().is_file():
        raise RecipeError(f"--checkpoint {args.checkpoint!r} is not a file", fix="give the path of your model's saved state dict")
    facts = _task_facts(task_entry(args.task), model_entry(args.model))
    student = student_for(facts.shape, facts.outputs, facts.teacher_params) if args.student == "auto" else model_entry(args.student)
    return chain_recipe(
        _name(args.model.rsplit(":", 1)[-1], "_edge"),
        task=args.task,
        teacher=args.model,
        checkpoint=str(Path(args.checkpoint).expanduser().resolve()) if args.checkpoint else None,
        student=student,
        epochs=args.epochs,
        prune=args.prune,
        int8=args.int8,
        target=_target(args),
        regression=facts.kind == "regression",
    )


class _Facts(NamedTuple):
    shape: tuple[int, ...]
    outputs: int
    kind: str
    teacher_params: int


def _task_facts(task: dict[str, Any], teacher: dict[str, Any]) -> _Facts:
    """One sample's shape, the task's outputs and kind, and the teacher's size (the template's student and
    loss depend on them); the teacher is built untrained only to be counted."""
    from compress.data.spec import TaskSpec
    from compress.models.spec import ModelSpec, build_model

    spec = _flag_value(TaskSpec, task, "--task", fix="give a built-in task (digits, mnist1d, diabetes) or module:function")
    model = _flag_value(ModelSpec, teacher, "--model")
    data = spec.load()
    params = sum(p.numel() for p in build_model(model, data, load_weights=False).parameters())
    return _Facts(data.input_shape, data.num_outputs, data.kind, params)


def _flag_value(cls: Any, value: dict[str, Any], flag: str, fix: str | None = None) -> Any:
    """`cls.model_validate(value)`, its first problem as a one-line error naming `flag`."""
    from pydantic import ValidationError

    try:
        return cls.model_validate(value)
    except ValidationError as err:
        why = err.errors()[0]["msg"].removeprefix("Value error, ")
        raise RecipeError(f"{flag}: {why}", fix=fix) from None


def _target(args: argparse.Namespace) -> dict[str, Any]:
    return {"name": "ort-cpu", "cpu": args.cpu, **({"threads": args.threads} if args.threads else {})}


def quantize_recipe(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe the `quantize` command's flags stand for."""
    task = {"factory": args.task} if ":" in args.task else {"name": args.task}
    target = _target(args)
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


def _add_run_options(command: argparse.ArgumentParser, default_out: str) -> None:
    command.add_argument("--cpu", default="auto", help="the CPU it will run on: auto (this one), x86-avx2, x86-avx512, x86-vnni, arm64")
    command.add_argument("--threads", type=int, help="threads for the benchmark (default: the CPUs this process may use)")
    add_train_threads(command)
    command.add_argument("--out", type=Path, help=f"run folder (default: {default_out})")
    command.add_argument("--write-recipe", type=Path, metavar="FILE", help="write the recipe these flags make to FILE and stop")
    mode = command.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="reuse finished stages")
    mode.add_argument("--overwrite", action="store_true", help="replace an earlier run in the folder")


def add_train_threads(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--train-threads",
        type=int,
        metavar="N",
        help="PyTorch threads for training (default: the target's threads); fewer leave cores to other jobs, latency is "
        "still measured with the target's",
    )


def _name(stem: str, suffix: str) -> str:
    """A run name from a file name: the characters a run name allows, at most 64 of them."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip("_.-") or "model"
    return base[: 64 - len(suffix)] + suffix
