"""`Pipeline`: runs stage objects in order inside one run folder, records each in the manifest,
and on `resume` reuses every stage whose config, run settings and input files are unchanged."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compress import distributed
from compress.bench.runners import TargetSpec
from compress.context import WORK, RunContext
from compress.data.spec import TaskSpec
from compress.errors import ArtifactError, RecipeError
from compress.fsio import sha256_file, write_json, write_text
from compress.manifest import MANIFEST, Manifest, StageRecord, config_hash, environment, now
from compress.records import MetricInfo
from compress.stages.base import Planned, Stage

__all__ = ["Pipeline"]

log = logging.getLogger("compress")
SUMMARY = "summary.json"
LOCK = ".lock"  # in a run folder while a process works in it (see _locked)
ATTEMPT = ".attempt"  # in a stage folder while the stage runs: its key, so --resume can continue its epochs


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
    ) -> None:
        from compress.recipe import stage_of, task_of

        self.stages = [stage_of(entry, i) for i, entry in enumerate(stages)]
        self.task = task_of(task)
        self.name = name
        self.seed = seed
        self.target = _target(target)
        self.ids = _stage_ids(self.stages)
        self.check()

    @classmethod
    def from_recipe(cls, path: str | Path) -> Pipeline:
        from compress.recipe import load_recipe

        recipe, stages = load_recipe(path)
        try:
            return cls(stages, task=recipe.task, name=recipe.name, seed=recipe.seed, target=recipe.target)
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
        }

    def run(self, out: str | Path | None = None, *, resume: bool = False, overwrite: bool = False, quiet: bool = False) -> Manifest:
        run_dir = Path(out) if out is not None else Path("runs") / self.name
        if not distributed.is_main():
            return self._follow(run_dir)
        self._check_targets()
        if resume and overwrite:
            raise RecipeError("--resume and --overwrite exclude each other", fix="pick one")
        with _locked(run_dir):
            return self._run(run_dir, resume=resume, overwrite=overwrite, quiet=quiet)

    def _run(self, run_dir: Path, *, resume: bool, overwrite: bool, quiet: bool) -> Manifest:
        previous = _prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
        created = previous.created if previous else now()
        ctx = self._context(run_dir, quiet)
        manifest = Manifest(
            name=self.name,
            recipe=self.settings(),
            created=created,
            updated=now(),
            environment=environment(self.target.deploy_cpu().as_dict()),
            metric=MetricInfo(name=ctx.task.metric.name, higher_is_better=ctx.task.metric.higher_is_better),
        )
        _save(manifest, previous, run_dir)  # from now on the folder is a run that --resume can continue
        hashes: dict[str, str] = {}
        parent = None
        for index, (sid, stage) in enumerate(zip(self.ids, self.stages, strict=True)):
            record = self._run_stage(ctx, index, sid, stage, parent, previous, hashes)
            hashes.update(record.outputs)
            manifest.stages.append(record)
            _save(manifest, previous, run_dir)
            _clear_scratch(run_dir / sid)  # only now: a stop before this line still finds the stage's work
            _write_summary(ctx)
            parent = sid
            distributed.barrier()
        return manifest

    def _context(self, run_dir: Path, quiet: bool) -> RunContext:
        torch.set_num_threads(max(1, self.target.num_threads // distributed.local_world_size()))
        return RunContext(run_dir=run_dir, task=self.task.load(), target=self.target, seed=self.seed, quiet=quiet)

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
                    _enter_stage(ctx, sid, "", keep_attempt=False)
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
        cfg = stage.cfg.model_dump(mode="json")
        inputs = {p: hashes.get(p) or sha256_file(ctx.path(p)) for rec in ctx.models.values() for p in rec.files()}
        settings = {k: v for k, v in self.settings().items() if k in ("seed", "task", "target")}
        if stage.cpu_dependent:
            cpu = self.target.deploy_cpu()
            settings["cpu"] = {"target": cpu.kind.name, "host": cpu.host.name}
        key = config_hash({"type": stage.name, "config": cfg, "settings": settings, "inputs": inputs})
        old = previous.find(sid) if previous else None
        reuse = old is not None and old.key == key and old.outputs_intact(ctx.run_dir)
        distributed.broadcast_object(old.models if reuse else None)  # the other ranks follow (see _follow)
        if reuse:
            ctx.apply(old.models)
            log.info("[%d/%d] %s: reused (config and inputs unchanged)", index + 1, len(self.stages), sid)
            return old.model_copy(update={"status": "reused", "parent": parent})
        log.info("[%d/%d] %s: running", index + 1, len(self.stages), sid)
        _enter_stage(ctx, sid, key, keep_attempt=previous is not None)
        _seed_everything(self.seed + index)
        before, started, t0 = ctx.snapshot(), now(), time.perf_counter()
        ctx = stage.run(ctx, stage.cfg)
        duration = time.perf_counter() - t0
        outputs = {ctx.relative(p): sha256_file(p) for p in _outputs(ctx.stage_dir)}
        log.info("[%d/%d] %s: done in %.1f s", index + 1, len(self.stages), sid, duration)
        return StageRecord(
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


def _enter_stage(ctx: RunContext, sid: str, key: str, *, keep_attempt: bool) -> None:
    """Make `sid` the running stage. Its folder starts empty, except on resume when it holds an
    unfinished attempt with the same key (its epoch checkpoint lets training continue)."""
    ctx.stage_id, ctx.stage_dir, ctx.metrics = sid, ctx.run_dir / sid, {}
    attempt = ctx.stage_dir / ATTEMPT
    same = keep_attempt and attempt.is_file() and attempt.read_text(encoding="utf-8") == key
    if ctx.stage_dir.exists() and not same:
        shutil.rmtree(ctx.stage_dir)  # leftovers of an unfinished or outdated attempt
    ctx.stage_dir.mkdir(parents=True, exist_ok=True)
    write_text(attempt, key)


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


def _stage_ids(stages: Sequence[Stage]) -> list[str]:
    """Folder names: the stage type, numbered from the second use on (distill, distill-2)."""
    ids, seen = [], {}
    for stage in stages:
        seen[stage.name] = seen.get(stage.name, 0) + 1
        ids.append(stage.name if seen[stage.name] == 1 else f"{stage.name}-{seen[stage.name]}")
    return ids


def _prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> Manifest | None:
    manifest_path = run_dir / MANIFEST
    if resume and overwrite:
        raise RecipeError("--resume and --overwrite exclude each other", fix="pick one")
    if manifest_path.exists():
        if resume:
            return Manifest.load(manifest_path)
        if not overwrite:
            raise ArtifactError(
                f"{run_dir} already holds a run", fix="pass --resume to continue it, --overwrite to start again, or --out DIR"
            )
        _remove_run(run_dir)
    elif run_dir.exists() and any(p.name != LOCK for p in run_dir.iterdir()):
        raise ArtifactError(f"{run_dir} exists and is not an edge-compress run folder", fix="choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    return None


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """Hold the run folder for this process: a second run, resume or overwrite of it is refused with one
    line naming the holder, instead of two processes writing the same files."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ArtifactError(f"--out {run_dir} is a file, not a folder", fix="choose another --out")
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = path.read_text(encoding="utf-8").strip() or "another process"
        raise ArtifactError(f"{run_dir} is in use by {holder}", fix="wait for it to finish, or choose another --out") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"edge-compress (process {os.getpid()} on {socket.gethostname()}, since {now()})".encode())
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)  # closing releases the lock


def _remove_run(run_dir: Path) -> None:
    """--overwrite: delete an earlier run of ours, and only that. The folder's manifest must be one we wrote;
    every file in it must be one the run wrote (its manifest, summary, the stages' recorded outputs, an
    unfinished stage's folder). Anything else makes it refuse, before anything is deleted."""
    try:
        manifest = Manifest.load(run_dir / MANIFEST)
    except ArtifactError:
        raise ArtifactError(
            f"--overwrite: {run_dir / MANIFEST} is not an edge-compress manifest; nothing was deleted", fix="choose another --out"
        ) from None
    ours = {run_dir / MANIFEST, run_dir / SUMMARY} | {run_dir / p for stage in manifest.stages for p in stage.outputs}
    unfinished = [d for d in run_dir.iterdir() if (d / ATTEMPT).is_file()]  # stage folders of a stopped stage
    foreign = [
        p
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
        and p not in ours
        and p != run_dir / LOCK  # ours, and held by this process
        and not any(d in p.parents for d in unfinished)
        and not _scratch_of_ours(run_dir, p, manifest)
    ]
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise ArtifactError(
            f"--overwrite: {run_dir} holds files edge-compress did not write: {foreign[0].relative_to(run_dir)}{more}; nothing was deleted",
            fix="move them out of the run folder, or choose another --out",
        )
    for path in ours:
        path.unlink(missing_ok=True)
    for folder in unfinished:
        shutil.rmtree(folder)
    for folder in sorted((d for d in run_dir.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def _scratch_of_ours(run_dir: Path, path: Path, manifest: Manifest) -> bool:
    """A recorded stage's leftover scratch (a stop before it was cleared) or an unfinished write's temp file."""
    rel = path.relative_to(run_dir).parts
    stage = run_dir / rel[0] if len(rel) > 1 and rel[0] in {s.id for s in manifest.stages} else None
    return _is_scratch(path, stage)


def _is_scratch(path: Path, stage_dir: Path | None) -> bool:
    """What only an unfinished stage needs: its `.work/` scratch and attempt marker (for files inside
    `stage_dir`), and anywhere the temporary file of a write that never finished."""
    unfinished_write = path.name.startswith(".") and path.name.endswith(".tmp")
    return unfinished_write or (stage_dir is not None and path.relative_to(stage_dir).parts[0] in (WORK, ATTEMPT))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _outputs(stage_dir: Path) -> list[Path]:
    """A stage's recorded files: everything in its folder but its scratch, its attempt marker and the
    temporary files of writes that never finished."""
    return [p for p in sorted(stage_dir.rglob("*")) if p.is_file() and not _is_scratch(p, stage_dir)]


def _clear_scratch(stage_dir: Path) -> None:
    """Remove what only an unfinished stage needs, once it is recorded (also after a reuse: leftovers)."""
    shutil.rmtree(stage_dir / WORK, ignore_errors=True)
    (stage_dir / ATTEMPT).unlink(missing_ok=True)
    for tmp in stage_dir.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def _save(manifest: Manifest, previous: Manifest | None, run_dir: Path) -> None:
    """Write the manifest. While a resume goes through the stages, the previous run's stages not reached
    yet stay in it, so a stop during the sweep forgets no finished stage."""
    manifest.updated = now()
    done = {s.id for s in manifest.stages}
    pending = [s for s in (previous.stages if previous else []) if s.id not in done]
    manifest.model_copy(update={"stages": [*manifest.stages, *pending]}).save(run_dir / MANIFEST)


def _write_summary(ctx: RunContext) -> None:
    from compress.report.summary import build_summary

    write_json(ctx.run_dir / SUMMARY, build_summary(ctx).model_dump(mode="json"))
