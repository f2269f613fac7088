"""The `edge-compress` command: parses arguments, calls the API, maps errors to exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from compress import __version__
from compress.errors import CompressError, RecipeError

__all__ = ["main"]

EPILOG = """\
examples:
  edge-compress recipes                                  the recipes that ship with edge-compress
  edge-compress run digits_edge                          a packaged recipe by name: train, distill, export, benchmark, report
  edge-compress run pipelines/digits_edge.yaml --resume  continue an interrupted run, reusing finished stages
  edge-compress validate pipelines/*.yaml                check recipes without running them
  edge-compress stages                                   list stages and their config keys
  torchrun --nproc_per_node=2 -m compress run RECIPE     the same recipe, training data-parallel on 2 processes
  edge-compress report runs/digits_edge                  report.md + report.html (plots) from a run folder
  edge-compress schema recipe > recipe.schema.json       the JSON Schema of recipes (or: summary, manifest)
  edge-compress bench model.onnx --save-baseline b.json  measure latency, keep it as a baseline
  edge-compress regress model.onnx --baseline b.json --max-slowdown 10% --junit out.xml
                                                         latency regression test for CI (exit 1 on regression)

exit codes: 0 success, 1 internal error (a bug: please report it) or, for regress, a regression,
2 bad input (recipe, data, files, unavailable target), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""


class Parser(argparse.ArgumentParser):
    """argparse with errors in one line (its usage block is what --help is for); sub-commands inherit it."""

    def error(self, message: str):  # type: ignore[override]
        if message.endswith("expected one argument"):  # argparse reads a value like -5% as an option
            message += " (a value that starts with '-' is written --option=-5%)"
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = Parser(
        prog="edge-compress",
        description="Compress a PyTorch model into an edge-ready ONNX student and measure what was gained and lost.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edge-compress {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="with an error caused by your own code (a task or model factory), also print its traceback"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a recipe into runs/<name>/", description="Run a recipe's stages in order.")
    run.add_argument("recipe", type=Path, help="recipe YAML file, or a packaged recipe's name (see: edge-compress recipes)")
    run.add_argument("--out", type=Path, help="run folder (default: runs/<recipe name>)")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="reuse finished stages whose config and inputs are unchanged")
    mode.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run in the folder (it deletes only the files that run wrote; anything else there makes it refuse)",
    )
    run.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars or stage lines; only the final summary of models and paths"
    )
    from compress.cli_quick import add_train_threads

    add_train_threads(run)

    validate = sub.add_parser(
        "validate",
        help="check recipes without running anything",
        description="Validate recipes without running anything: keys, types, stage names, model names, and the stage order "
        "(each stage's models are made earlier, FP32 or INT8 as it needs, exported where it needs a file), and the "
        "task and model factories it names (imported and checked to be callables; nothing is built or trained). "
        "Every recipe is checked; the exit code is 2 if any is bad.",
    )
    validate.add_argument("recipes", type=Path, nargs="+", help="recipe YAML files")

    stages = sub.add_parser(
        "stages", help="list stages and their config keys", description="List registered stages with their config fields."
    )
    stages.add_argument("--json", action="store_true", help="machine-readable output")

    report = sub.add_parser(
        "report",
        help="write report.md and report.html for a run folder",
        description="Build the compression report of a finished (or partly finished) run from its manifest; nothing is re-run.",
    )
    report.add_argument("run_dir", type=Path, help="run folder, e.g. runs/digits_edge")
    report.add_argument("--out", type=Path, help="folder for the report (default: RUN_DIR/report)")
    report.add_argument("--title", help="report title (default: 'Compression report: <task>')")
    report.add_argument("--reference", help="model the others are compared with (default: teacher, if the run has one)")

    init = sub.add_parser(
        "init",
        help="write a commented starter recipe (the whole chain) for your own model and data",
        description="Write a starter recipe that runs as written, with comments on what to change for your data and model.",
    )
    init.add_argument("file", type=Path, help="the recipe to write, e.g. my_recipe.yaml (an existing file is left alone)")
    init.add_argument("--task", help="your task as module:function (default: the built-in digits task)")
    init.add_argument("--teacher", help="your teacher model as module:function (default: a zoo residual CNN trained here)")
    init.add_argument("--checkpoint", help="your teacher's trained weights (a state dict): the recipe loads it instead of training")

    sub.add_parser(
        "recipes",
        help="list the recipes that ship with edge-compress (run one by name: edge-compress run digits_edge)",
        description="The packaged recipes, each with its purpose and file; copy one as a start for your own.",
    )

    schema = sub.add_parser(
        "schema",
        help="print the JSON Schema of a recipe, summary.json or manifest.json",
        description="Print the JSON Schema (draft 2020-12) of a recipe (for your editor's YAML validation) or of a file "
        "edge-compress writes (for validating it in CI or generating types).",
    )
    schema.add_argument(
        "document",
        choices=["recipe", *sorted(SCHEMAS)],
        help="recipe: a recipe YAML; summary: runs/<name>/summary.json; manifest: runs/<name>/manifest.json",
    )

    from compress.cli_bench import add_commands

    more = add_commands(sub)
    from compress.cli_quick import add_quick_commands

    add_quick_commands(sub)
    for command in sub.choices.values():
        _add_logging(command)
    return parser, more


LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _add_logging(command: argparse.ArgumentParser) -> None:
    """Every command takes the same log options (run's -q also drops its progress bars)."""
    group = command.add_argument_group("logging")
    group.add_argument("--log-level", choices=list(LEVELS), help="messages shown on stderr (default: info; -v: debug; -q: warning)")
    group.add_argument("-v", "--verbose", action="store_true", help="also debug messages")
    if not any("--quiet" in action.option_strings for action in command._actions):
        group.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")


def _level(args: argparse.Namespace) -> int:
    if args.log_level:
        return LEVELS[args.log_level]
    return logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO


def main(argv: list[str] | None = None) -> int:
    parser, more = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=_level(args), format="%(message)s", stream=sys.stderr)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # "generated new fontManager" on a fresh machine
    handlers = {"run": _run, "validate": _validate, "stages": _stages, "report": _report, "schema": _schema, "recipes": _recipes}
    handlers |= {"quantize": _quick, "compress": _quick, "init": _init, **more}
    previous = signal.signal(signal.SIGTERM, _terminated)  # a job scheduler's stop is handled like Ctrl-C
    try:
        return handlers[args.command](args)
    except CompressError as err:
        if args.debug and err.__cause__ is not None:
            import traceback

            traceback.print_exception(err.__cause__)
        print(f"edge-compress: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated)
        how = "terminated (SIGTERM)" if terminated else "interrupted"
        resumable = args.command in ("run", "compress", "quantize")
        after = "; finished stages are kept, run again with --resume to continue" if resumable else ""
        print(f"edge-compress: {how}{after}", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:  # `edge-compress recipes | head`: the reader left; nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so it stops the way Ctrl-C does (atomic writes, resumable)."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


def _quick(args: argparse.Namespace) -> int:
    """A one-line command (quantize, compress): the recipe its flags make, written out or run."""
    import yaml

    from compress.fsio import check_writable, write_text
    from compress.pipeline import Pipeline
    from compress.recipe import parse_recipe

    recipe = args.make_recipe(args)
    if args.write_recipe:
        check_writable(args.write_recipe, "--write-recipe")
        heading = f"# written by: edge-compress {args.command}; run it with: edge-compress run {args.write_recipe}\n"
        write_text(args.write_recipe, heading + yaml.safe_dump(recipe, sort_keys=False))
        print(f"recipe: {args.write_recipe}")
        return 0
    spec, stages = parse_recipe(recipe, source=f"edge-compress {args.command}")
    try:
        return _execute(Pipeline(stages, task=spec.task, name=spec.name, seed=spec.seed, target=spec.target), args)
    except CompressError as err:
        if args.command == "compress" and err.message.startswith("quantize:"):  # the recipe keys it names are not flags here
            fix = (
                "add --no-int8 --resume to finish with the FP32 models (finished stages are kept), or --write-recipe FILE to tune quantize"
            )
            raise type(err)(err.message, fix=fix) from err
        raise


def _run(args: argparse.Namespace) -> int:
    from compress.pipeline import Pipeline

    return _execute(Pipeline.from_recipe(args.recipe), args)


def _execute(pipeline, args: argparse.Namespace) -> int:
    """Run `pipeline` into `--out` (default runs/<name>), then print its models and report paths."""
    from compress import distributed

    out = args.out or Path("runs") / pipeline.name
    if distributed.init_from_env() and not distributed.is_main():
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 speaks for the run
        pipeline.run(out, quiet=True, train_threads=args.train_threads)
        return 0
    manifest = pipeline.run(out, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet, train_threads=args.train_threads)
    reused = [s.id for s in manifest.stages if s.status == "reused"]
    print(f"run folder: {out}")
    if reused:
        print(f"reused stages: {', '.join(reused)}")
    from compress.records import Summary

    summary = Summary.model_validate_json((out / "summary.json").read_text())
    for model in summary.models:
        value = summary.value(model)
        score = f"{summary.metric.name} {value:.4f}" if summary.metric and value is not None else "not benchmarked"
        where = out / model.onnx if model.onnx else "not exported"
        width = max(len(m.name) for m in summary.models)
        print(f"  {model.name:<{width}}  {model.format:<10} {score}, {model.params or 0:,} params, ONNX: {where}")
    for stage in manifest.stages:
        if stage.type == "report":
            print(f"report: {out / stage.metrics['report']}")
            if "report_html" in stage.metrics:
                print(f"report (HTML, self-contained): {out / stage.metrics['report_html']}")
    return _print_verdict(summary, out)


def _print_verdict(summary, out: Path) -> int:
    """The model to ship and, with an acceptance section, each gate; 1 when a gate is missed."""
    from compress.report.verdict import change_text

    verdict = summary.verdict
    if verdict is None:
        return 0
    if verdict.recommended:
        standing, entry = verdict.standing(verdict.recommended), summary.model(verdict.recommended)
        speed = ", ".join(f"{x.value:.1f}x faster at b{b}" for b, x in standing.speedup.items())
        fewer = f"{standing.params_ratio:.1f}x fewer parameters, " if standing.params_ratio else ""
        change = f", {summary.metric.name} {change_text(standing, summary.metric)}" if standing.metric_change is not None else ""
        print(f"recommended: {verdict.recommended} ({fewer}{speed} than {verdict.reference}{change})")
        if entry is not None and entry.onnx:
            print(f"  ONNX: {out / entry.onnx}")
    else:
        print(f"recommended: none: {verdict.why}")
    if not verdict.gates:
        return 0
    if any(g.name.startswith("speedup") for g in verdict.gates):
        print("  (a speedup is the p50 ratio [its 95% interval]; a speed gate passes on the interval's lower bound)")
    for gate in verdict.gates:
        print(f"  {'pass' if gate.passed else 'FAIL'}  {gate.name}: wanted {gate.wanted}, measured {gate.measured}")
    print(f"acceptance: {'passed' if verdict.passed else 'FAILED'} (JUnit: {out / 'acceptance.xml'})")
    return 0 if verdict.passed else 1


def _validate(args: argparse.Namespace) -> int:
    """Every recipe is checked (one line each); the exit code is 2 if any is bad."""
    from compress.pipeline import Pipeline

    failed = 0
    for path in args.recipes:
        try:
            pipeline = Pipeline.from_recipe(path)
            _check_code(pipeline, path)
        except CompressError as err:
            failed += 1
            for problem in getattr(err, "problems", None) or [str(err)]:  # every problem of every file, one line each
                print(f"edge-compress: error: {problem}", file=sys.stderr)
            continue
        print(f"{path}: ok ({len(pipeline.stages)} stages: {', '.join(pipeline.ids)})")
    return 2 if failed else 0


def _check_code(pipeline, path: Path) -> None:
    try:
        pipeline.check_code()
        pipeline.check_files()
    except CompressError as err:
        raise type(err)(f"{path}: {err.message}", fix=err.fix) from None


def _init(args: argparse.Namespace) -> int:
    import re

    from compress.fsio import check_writable, write_text
    from compress.starter import starter_recipe

    if args.file.exists() or args.file.is_symlink():
        raise RecipeError(f"init: {args.file} already exists; nothing was written", fix="give another file name, or delete it first")
    check_writable(args.file, "init")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", args.file.stem).lstrip("_.-")[:64] or "my_run"
    write_text(args.file, starter_recipe(name, str(args.file), task=args.task, teacher=args.teacher, checkpoint=args.checkpoint))
    print(f"recipe: {args.file}  (check it: edge-compress validate {args.file}; run it: edge-compress run {args.file})")
    return 0


def _recipes(args: argparse.Namespace) -> int:
    from compress.recipe import packaged_recipes, recipe_purpose

    for name, path in packaged_recipes().items():
        print(f"{name:<22} {recipe_purpose(path)}")
    print(f"\n(files in {next(iter(packaged_recipes().values())).parent}; run one with: edge-compress run <name>)")
    return 0


def _stages(args: argparse.Namespace) -> int:
    from pydantic_core import to_jsonable_python

    from compress.stages import STAGES

    listing = {}
    for name, cls in STAGES.items():
        fields = {}
        for key, field in cls.Config.model_fields.items():
            required = field.is_required()
            default = None if required else to_jsonable_python(field.get_default(call_default_factory=True))
            fields[key] = {"required": required, "default": default, "description": field.description or ""}
        listing[name] = {"doc": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "", "fields": fields}
    if args.json:  # defaults as JSON values (numbers, lists, objects, null), not Python reprs
        print(json.dumps(listing, indent=2))
        return 0
    for name, info in listing.items():
        print(f"{name}: {info['doc']}")
        for key, f in info["fields"].items():
            shown = "required" if f["required"] else json.dumps(f["default"])
            print(f"    {key:<16} {f['description']} (default: {shown})")
    return 0


SCHEMAS = {"summary": "compress.records:Summary", "manifest": "compress.manifest:Manifest"}


def _schema(args: argparse.Namespace) -> int:
    import importlib

    if args.document == "recipe":
        from compress.recipe import recipe_schema

        print(json.dumps(recipe_schema(), indent=2))
        return 0
    module, name = SCHEMAS[args.document].split(":")
    model = getattr(importlib.import_module(module), name)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema(mode="serialization")}
    print(json.dumps(schema, indent=2))
    return 0


def _report(args: argparse.Namespace) -> int:
    from compress.report import write_run_report

    paths = write_run_report(args.run_dir, out=args.out, title=args.title, reference=args.reference)
    for path in paths:
        print(path)
    return 0
