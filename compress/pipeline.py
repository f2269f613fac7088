"""`Pipeline`: runs stage objects in order inside one run folder, records each in the manifest,
and on `resume` reuses every stage whose config, run settings and input files are unchanged."""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compress import distributed, rundir
from compress.bench.runners import TargetSpec
from compress.config import Acceptance, as_recorded
from compress.context import RunContext
from compress.data.spec import TaskSpec
from compress.errors import ArtifactError, RecipeError
from compress.fsio import check_writable, sha256_file, write_json, write_text
from compress.manifest import MANIFEST, Manifest, StageRecord, config_hash, environment, now
from compress.progress import show_lines
from compress.records import Summary
from compress.registry import did_you_mean
from compress.report.summary import build_summary, metric_info
from compress.report.verdict import junit_xml
from compress.stages.base import Planned, Stage

__all__ = ["Pipeline"]

log = logging.getLogger("compress")


class Pipeline:
    """Stage objects plus run settings. `Pipeline([...], task="digits").run()` returns the manifest.

    It takes what a recipe takes: stages as objects, names or `{name: {config}}`; the task as a
    `TaskSpec`, a built-in name or the recipe's mapping; the target as a `TargetSpec`, a name or a mapping."""

    def __init__(
        self,
        stages: Sequence[Stage | str | dict[str, Any]],
        *,
        task: TaskSpec | str | dict[str, Any],
        name: str = "run",
        seed: int = 0,
        target: TargetSpec | dict[str, Any] | str | None = None,
        acceptance: Acceptance | dict[str, Any] | None = None,
    ) -> None:
        from compress.recipe import acceptance_of, stage_of, task_of

        self.stages = [stage_of(entry, i) for i, entry in enumerate(stages)]
        self.task = task_of(task)
        self.name, self.seed = _checked_name_and_seed(name, seed)
        self.target = _target(target)
        self.acceptance = acceptance_of(acceptance)
        self.ids = _stage_ids(self.stages)
        self.train_threads: int | None = None  # PyTorch threads while training; None: the target's threads
        self.check()

    @classmethod
    def from_recipe(cls, path: str | Path) -> Pipeline:
        from compress.recipe import load_recipe

        recipe, stages = load_recipe(path)
        try:
            return cls(stages, task=recipe.task, name=recipe.name, seed=recipe.seed, target=recipe.target, acceptance=recipe.acceptance)
        except RecipeError as err:
            raise RecipeError(f"{path}: {err.message}", fix=err.fix) from None

    def check(self) -> None:
        """Every stage order that passes runs correctly: each stage's `plan` checks what it needs against
        what the earlier ones make (names, FP32 or INT8, exported or not)."""
        if not self.stages:
            raise RecipeError("a pipeline needs at least one stage")
        planned: dict[str, Planned] = {}
        for i, (sid, stage) in enumerate(zip(self.ids, self.stages, strict=True)):
            try:
                stage.plan(planned)
            except RecipeError as err:
                raise RecipeError(f"stages[{i}] ({sid}): {err.message}", fix=err.fix) from None
        self._check_acceptance(planned)

    def _check_acceptance(self, planned: dict[str, Planned]) -> None:
        """The acceptance section names models the run makes, and a benchmark stage measures them."""
        if self.acceptance is None:
            return
        for key in ("reference", "model"):
            name = getattr(self.acceptance, key)
            if name is not None and name not in planned:
                raise RecipeError(
                    f"acceptance.{key}: no model {name!r} is made by the stages; {did_you_mean(name, planned)}models: {', '.join(planned)}",
                    fix="name one of those models",
                )
        benchmarks = [stage for stage in self.stages if stage.name == "benchmark"]
        if not benchmarks:
            raise RecipeError("acceptance needs a benchmark stage: its gates are checked on measured latencies", fix="add - benchmark: {}")
        if len(planned) < 2 and self.acceptance.model is None:
            raise RecipeError(
                f"acceptance: the stages make only {', '.join(planned) or 'no model'}: nothing to compare with the reference",
                fix="add the stages that make the model to ship (distill, prune, quantize), or remove the acceptance section",
            )
        measured = {str(b) for stage in benchmarks for b in stage.cfg.batch_sizes}
        unmeasured = sorted(set(self.acceptance.speedup_wanted(sorted(measured))) - measured, key=int)
        if unmeasured:
            raise RecipeError(
                f"acceptance.min_speedup: batch {', '.join(unmeasured)} is not timed (the benchmark times {', '.join(sorted(measured, key=int))})",
                fix="add it to the benchmark's batch_sizes, or gate a batch size it times",
            )

    def check_code(self) -> None:
        """Import every factory the run names (task and models) and check each is a callable: `validate`
        then fails on a factory that does not exist, without building or training anything."""
        from compress.imports import resolve_callable
        from compress.models.spec import ModelSpec

        specs = [value for stage in self.stages for value in dict(stage.cfg).values() if isinstance(value, ModelSpec)]
        for where, factory in [("task", self.task.factory), *((f"model {s.label!r}", s.factory) for s in specs)]:
            if factory is not None:
                try:
                    resolve_callable(factory)
                except RecipeError as err:
                    raise RecipeError(f"{where}: {err.message}", fix=err.fix) from None

    def check_files(self) -> None:
        """Every file of the user's that a stage reads (checkpoints, calibration inputs) is there: a typo in a
        path fails now, not after the stages before it have trained."""
        for i, (sid, stage) in enumerate(zip(self.ids, self.stages, strict=True)):
            for what, name in stage.input_files():
                path = Path(name).expanduser()
                if not path.is_file():
                    state = "is a folder, not a file" if path.is_dir() else "does not exist"
                    raise ArtifactError(f"stages[{i}] ({sid}): {what} {name!r} {state}", fix="check the path (relative to where you run)")

    def _check_targets(self) -> None:
        """Every target the run will time or run models on exists on this machine: before training, not after."""
        from compress.bench.runners import make_runner

        for name in dict.fromkeys([self.target.name, *(t for stage in self.stages for t in stage.targets())]):
            make_runner(self.target.model_copy(update={"name": name}))

    def settings(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seed": self.seed,
            "task": self.task.model_dump(mode="json"),
            "target": self.target.model_dump(mode="json"),
            "stages": [{sid: s.cfg.model_dump(mode="json")} for sid, s in zip(self.ids, self.stages, strict=True)],
            **({"acceptance": self.acceptance.model_dump(mode="json", exclude_none=True)} if self.acceptance else {}),
        }

    def run(
        self,
        out: str | Path | None = None,
        *,
        resume: bool = False,
        overwrite: bool = False,
        quiet: bool = False,
        train_threads: int | None = None,
    ) -> Manifest:
        """Run the stages into `out` (default runs/<name>). `train_threads`: PyTorch threads for training and
        the other PyTorch work (default: the target's threads); latency is measured with the target's."""
        run_dir = Path(out) if out is not None else Path("runs") / self.name
        if train_threads is not None and train_threads < 1:
            raise RecipeError(f"train_threads must be at least 1, got {train_threads}", fix="give a positive thread count")
        self.train_threads = train_threads
        if not distributed.is_main():
            return self._follow(run_dir)
        show_lines(quiet=quiet)
        self.check_files()
        self._check_targets()
        check_writable(run_dir, "run folder", folder=True)
        if resume and overwrite:
            raise RecipeError("--resume and --overwrite exclude each other", fix="pick one")
        created = [d for d in (run_dir, *run_dir.parents) if not d.exists()]
        try:
            with rundir.locked(run_dir):
                fresh = not (run_dir / MANIFEST).exists()
                try:
                    return self._run(run_dir, resume=resume, overwrite=overwrite, quiet=quiet)
                except Exception:  # bad input or a bug, not a stop (Ctrl-C keeps its epochs for --resume)
                    if fresh:
                        rundir.discard_unfinished(run_dir)
                    raise
        except Exception:
            for folder in created:  # bottom-up: only the folders this run made, and only if empty
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            raise

    def _run(self, run_dir: Path, *, resume: bool, overwrite: bool, quiet: bool) -> Manifest:
        previous = rundir.prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
        created = previous.created if previous else now()
        ctx = self._context(run_dir, quiet)
        for stage in self.stages:
            stage.check_inputs(ctx.task)
        manifest = Manifest(
            name=self.name,
            recipe=self.settings(),
            created=created,
            updated=now(),
            environment=environment(self.target.deploy_cpu().as_dict()),
            metric=metric_info(ctx.task),
        )
        manifest._run_dir = run_dir
        rundir.save_manifest(manifest, previous, run_dir)  # from now on the folder is a run that --resume can continue
        hashes: dict[str, str] = {}
        parent = None
        for index, (sid, stage) in enumerate(zip(self.ids, self.stages, strict=True)):
            record = self._run_stage(ctx, index, sid, stage, parent, previous, hashes)
            hashes.update(record.outputs)
            manifest.stages.append(record)
            rundir.save_manifest(manifest, previous, run_dir)
            rundir.clear_scratch(run_dir / sid)  # only now: a stop before this line still finds the stage's work
            summary = _write_summary(ctx)
            parent = sid
            distributed.barrier()
        _conclude(summary, run_dir, self.name)
        return manifest

    def _context(self, run_dir: Path, quiet: bool) -> RunContext:
        torch.set_num_threads(max(1, (self.train_threads or self.target.num_threads) // distributed.local_world_size()))
        task = self.task.load()
        return RunContext(run_dir=run_dir, task=task, target=self.target, seed=self.seed, quiet=quiet, acceptance=self.acceptance)

    def _follow(self, run_dir: Path) -> Manifest:
        """A rank other than 0 under torchrun: take part in every `every_rank` stage that rank 0 runs,
        writing only to a private scratch folder; copy what rank 0 reused; wait while it runs the rest."""
        with tempfile.TemporaryDirectory(prefix=f"edge-compress-rank{distributed.world()[0]}-") as scratch:
            ctx = self._context(Path(scratch), quiet=True)
            for index, (sid, stage) in enumerate(zip(self.ids, self.stages, strict=True)):
                reused = distributed.broadcast_object()
                if reused is not None:
                    shutil.copytree(run_dir / sid, ctx.run_dir / sid, dirs_exist_ok=True)
                    ctx.apply(reused)
                elif stage.every_rank:
                    rundir.enter_stage(ctx, sid, "", keep_attempt=False)
                    _seed_everything(self.seed + index)
                    ctx = stage.run(ctx, stage.cfg)
                distributed.barrier()
        return Manifest(
            name=self.name,
            recipe=self.settings(),
            created=now(),
            updated=now(),
            environment=environment(self.target.deploy_cpu().as_dict()),
        )

    def _run_stage(
        self, ctx: RunContext, index: int, sid: str, stage: Stage, parent: str | None, previous: Manifest | None, hashes: dict[str, str]
    ) -> StageRecord:
        old = previous.find(sid) if previous else None
        cfg = as_recorded(stage.cfg, stage.cfg.model_dump(mode="json"), old.config if old else None)
        inputs = {p: hashes.get(p) or sha256_file(ctx.path(p)) for rec in ctx.models.values() for p in rec.files()}
        settings = {k: v for k, v in self.settings().items() if k in ("seed", "task", "target")}
        if stage.shows_verdict and self.acceptance is not None:
            settings["acceptance"] = self.acceptance.model_dump(mode="json")
        if stage.cpu_dependent:
            cpu = self.target.deploy_cpu()
            settings["cpu"] = {"target": cpu.kind.name, "host": cpu.host.name}
        key = config_hash({"type": stage.name, "config": cfg, "settings": settings, "inputs": inputs})
        reuse = old is not None and old.key == key and old.outputs_intact(ctx.run_dir)
        distributed.broadcast_object(old.models if reuse else None)  # the other ranks follow (see _follow)
        if reuse:
            ctx.apply(old.models)
            log.info("[%d/%d] %s: reused (config and inputs unchanged)", index + 1, len(self.stages), sid)
            return old.model_copy(update={"status": "reused", "parent": parent})
        log.info("[%d/%d] %s: running", index + 1, len(self.stages), sid)
        rundir.enter_stage(ctx, sid, key, keep_attempt=previous is not None)
        _seed_everything(self.seed + index)
        before, started, t0 = ctx.snapshot(), now(), time.perf_counter()
        ctx = stage.run(ctx, stage.cfg)
        duration = time.perf_counter() - t0
        outputs = {ctx.relative(p): sha256_file(p) for p in rundir.outputs(ctx.stage_dir)}
        log.info("[%d/%d] %s: done in %.1f s", index + 1, len(self.stages), sid, duration)
        record = StageRecord(
            id=sid,
            type=stage.name,
            status="done",
            parent=parent,
            key=key,
            config=cfg,
            config_sha256=config_hash(cfg),
            inputs=inputs,
            outputs=outputs,
            models=ctx.changed_since(before),
            metrics=ctx.metrics,
            started=started,
            duration_s=round(duration, 3),
        )
        rundir.record_stage(ctx.run_dir, record)
        return record


def _target(target: TargetSpec | dict[str, Any] | str | None) -> TargetSpec:
    """The run's target from the API's forms: a spec, the recipe's mapping, or a target name."""
    if isinstance(target, TargetSpec):
        return target
    from pydantic import ValidationError

    from compress.recipe import format_validation_error

    try:
        return TargetSpec.model_validate({"name": target} if isinstance(target, str) else target or {})
    except ValidationError as err:
        raise RecipeError(
            f"target: {format_validation_error(err.errors()[0], TargetSpec)}", fix="see the recipe's target section"
        ) from None


def _checked_name_and_seed(name: str, seed: int) -> tuple[str, int]:
    """The API's name and seed held to the recipe's rules (one schema: the recipe's fields)."""
    from pydantic import ValidationError

    from compress.recipe import Recipe, format_validation_error

    for key, value in (("name", name), ("seed", seed)):
        try:
            Recipe.__pydantic_validator__.validate_assignment(Recipe.model_construct(), key, value)
        except ValidationError as err:
            raise RecipeError(f"{key}: {format_validation_error(err.errors()[0], Recipe)}") from None
    return name, seed


def _stage_ids(stages: Sequence[Stage]) -> list[str]:
    """Folder names: the stage type, numbered from the second use on (distill, distill-2)."""
    ids, seen = [], {}
    for stage in stages:
        seen[stage.name] = seen.get(stage.name, 0) + 1
        ids.append(stage.name if seen[stage.name] == 1 else f"{stage.name}-{seen[stage.name]}")
    return ids


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _write_summary(ctx: RunContext) -> Summary:
    summary = build_summary(ctx)
    write_json(ctx.run_dir / rundir.SUMMARY, summary.model_dump(mode="json"))
    return summary


ACCEPTANCE_XML = "acceptance.xml"


def _conclude(summary: Summary, run_dir: Path, name: str) -> None:
    """With an acceptance section: `acceptance.xml` (JUnit), one test case per gate (the CLI prints them)."""
    if summary.verdict is not None and summary.verdict.gates:
        write_text(run_dir / ACCEPTANCE_XML, junit_xml(summary.verdict, name))
