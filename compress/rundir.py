"""A run folder on disk: who may work in it (a lock), what in it is ours (recorded outputs, scratch,
temporary files), how a finished stage is recorded (in the manifest and in its own folder, so a damaged
manifest can be rebuilt), and what --overwrite may delete. The pipeline decides when; this module how."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from compress.context import WORK, RunContext
from compress.errors import ArtifactError, RecipeError
from compress.fsio import write_json, write_text
from compress.manifest import MANIFEST, Manifest, StageRecord, now

__all__ = [
    "ATTEMPT",
    "LOCK",
    "STAGE_RECORD",
    "SUMMARY",
    "clear_scratch",
    "discard_unfinished",
    "enter_stage",
    "locked",
    "outputs",
    "prepare_run_dir",
    "record_stage",
    "remove_run",
    "save_manifest",
]

log = logging.getLogger("compress")
SUMMARY = "summary.json"
LOCK = ".lock"  # in a run folder while a process works in it (see locked)
ATTEMPT = ".attempt"  # in a stage folder while the stage runs: its key, so --resume can continue its epochs
STAGE_RECORD = ".stage.json"  # in a finished stage's folder: its record, to rebuild a damaged manifest


def enter_stage(ctx: RunContext, sid: str, key: str, *, keep_attempt: bool) -> None:
    """Make `sid` the running stage. Its folder starts empty, except on resume when it holds an
    unfinished attempt with the same key (its epoch checkpoint lets training continue)."""
    ctx.stage_id, ctx.stage_dir, ctx.metrics = sid, ctx.run_dir / sid, {}
    attempt = ctx.stage_dir / ATTEMPT
    same = keep_attempt and attempt.is_file() and attempt.read_text(encoding="utf-8") == key
    if ctx.stage_dir.exists() and not same:
        shutil.rmtree(ctx.stage_dir)  # leftovers of an unfinished or outdated attempt
    ctx.stage_dir.mkdir(parents=True, exist_ok=True)
    write_text(attempt, key)


def prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> Manifest | None:
    """Make `run_dir` ready for a run and return the run to continue (on resume), or None."""
    manifest_path = run_dir / MANIFEST
    if resume and overwrite:
        raise RecipeError("--resume and --overwrite exclude each other", fix="pick one")
    if resume and (manifest_path.exists() or _stage_records(run_dir)):
        return _previous(run_dir)
    if manifest_path.exists():
        if not overwrite:
            raise ArtifactError(
                f"{run_dir} already holds a run", fix="pass --resume to continue it, --overwrite to start again, or --out DIR"
            )
        remove_run(run_dir)
    elif run_dir.exists() and any(p.name != LOCK for p in run_dir.iterdir()):
        raise ArtifactError(f"{run_dir} exists and is not an edge-compress run folder", fix="choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    return None


def record_stage(run_dir: Path, record: StageRecord) -> None:
    """Keep a finished stage's record in its own folder too (before the manifest is saved): a stop in
    between, or a manifest damaged later, then loses nothing that --resume could reuse."""
    write_json(run_dir / record.id / STAGE_RECORD, record.model_dump(mode="json"))


def _previous(run_dir: Path) -> Manifest:
    """The run to continue: its manifest, completed by the records of stages that finished after it was
    last saved; a damaged or missing manifest is rebuilt from the stage folders' records alone."""
    records = _stage_records(run_dir)
    try:
        manifest = Manifest.load(run_dir / MANIFEST)
    except ArtifactError as err:
        if not records:
            raise
        log.warning("%s; rebuilt it from the records of %s", err.message, ", ".join(r.id for r in records))
        created = min(r.started for r in records)
        return Manifest(name=run_dir.name, recipe={}, created=created, updated=now(), environment={}, stages=records)
    newer = {r.id: r for r in records}  # a stage folder's record is what its files are now
    return manifest.model_copy(update={"stages": [newer.pop(s.id, s) for s in manifest.stages] + list(newer.values())})


def _stage_records(run_dir: Path) -> list[StageRecord]:
    """The readable records in the stage folders of `run_dir` (each in the folder of its own id), in run order."""
    found = []
    for path in sorted(run_dir.glob(f"*/{STAGE_RECORD}")) if run_dir.is_dir() else []:
        with contextlib.suppress(OSError, ValidationError, ValueError):  # a damaged record is not trusted: that stage reruns
            record = StageRecord.model_validate_json(path.read_bytes())
            if record.id == path.parent.name:
                found.append(record)
    return _in_run_order(found)


def _in_run_order(records: list[StageRecord]) -> list[StageRecord]:
    """Records in the order their stages ran: each names the stage before it as `parent`; what does
    not link up (a stage between them reran) follows, oldest first."""
    by_parent = {r.parent: r for r in records}
    ordered, current = [], by_parent.get(None)
    while current is not None and current not in ordered:
        ordered.append(current)
        current = by_parent.get(current.id)
    return ordered + sorted((r for r in records if r not in ordered), key=lambda r: r.started)


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the run folder for this process: a second run, resume or overwrite of it is refused with one
    line naming the holder, instead of two processes writing the same files."""
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


def remove_run(run_dir: Path) -> None:
    """--overwrite: delete an earlier run of ours, and only that. The folder's manifest must be one we wrote;
    every file in it must be one the run wrote (its manifest, summary, the stages' recorded outputs, an
    unfinished stage's folder). Anything else makes it refuse, before anything is deleted."""
    try:
        manifest = Manifest.load(run_dir / MANIFEST)
    except ArtifactError:
        fix = "pass --resume to rebuild it from the stage folders" if _stage_records(run_dir) else "choose another --out"
        raise ArtifactError(f"--overwrite: {run_dir / MANIFEST} is not an edge-compress manifest; nothing was deleted", fix=fix) from None
    recorded = {run_dir / s.id / STAGE_RECORD for s in manifest.stages}
    ours = {run_dir / MANIFEST, run_dir / SUMMARY, *recorded} | {run_dir / p for stage in manifest.stages for p in stage.outputs}
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


def discard_unfinished(run_dir: Path) -> None:
    """A new run that failed (bad input, or a bug) before finishing a stage leaves nothing behind (its next
    try then needs no --overwrite); once a stage is finished, the folder stays for --resume."""
    with contextlib.suppress(ArtifactError):  # the error being raised is the one to report
        if not Manifest.load(run_dir / MANIFEST).stages:
            remove_run(run_dir)


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


def outputs(stage_dir: Path) -> list[Path]:
    """A stage's recorded files: everything in its folder but its scratch, its attempt marker, its own
    record and the temporary files of writes that never finished."""
    record = stage_dir / STAGE_RECORD
    return [p for p in sorted(stage_dir.rglob("*")) if p.is_file() and p != record and not _is_scratch(p, stage_dir)]


def clear_scratch(stage_dir: Path) -> None:
    """Remove what only an unfinished stage needs, once it is recorded (also after a reuse: leftovers)."""
    shutil.rmtree(stage_dir / WORK, ignore_errors=True)
    (stage_dir / ATTEMPT).unlink(missing_ok=True)
    for tmp in stage_dir.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def save_manifest(manifest: Manifest, previous: Manifest | None, run_dir: Path) -> None:
    """Write the manifest. While a resume goes through the stages, the previous run's stages not reached
    yet stay in it, so a stop during the sweep forgets no finished stage."""
    manifest.updated = now()
    done = {s.id for s in manifest.stages}
    pending = [s for s in (previous.stages if previous else []) if s.id not in done]
    manifest.model_copy(update={"stages": [*manifest.stages, *pending]}).save(run_dir / MANIFEST)
