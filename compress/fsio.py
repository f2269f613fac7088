"""Atomic writes and hashing: a file either has its full new content or its old one, never half."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "write_text", "write_json", "sha256_file", "check_writable", "check_replaceable"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the result should read like any file the user writes
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def check_writable(path: str | os.PathLike[str], what: str, *, folder: bool = False) -> None:
    """Refuse, before any work, an output location that cannot be written: a file where a folder is
    needed (or the reverse), a file on the way to it, or a place this user may not write in."""
    from compress.errors import ArtifactError

    dest = Path(path)
    long = next((part for part in dest.parts if len(os.fsencode(part)) > 255), None)
    if long is not None:  # checked first: the file system refuses even to look such a name up
        raise ArtifactError(f"{what} {str(dest)[:40]}...: the name {long[:20]}... is longer than 255 bytes", fix="choose a shorter name")
    if dest.is_symlink() and not dest.exists():
        raise ArtifactError(f"{what} {dest} is a broken symbolic link (to {os.readlink(dest)})", fix="remove it or give another path")
    if dest.exists() and dest.is_dir() != folder:
        kind = "a file, not a folder" if folder else "a folder, not a file"
        raise ArtifactError(f"{what} {dest} is {kind}", fix=f"give a {'folder' if folder else 'file'} path")
    existing = next(p for p in (dest, *dest.parents) if p.exists() or p == Path(p.anchor or "."))
    if existing != dest and not existing.is_dir():
        raise ArtifactError(f"{what} {dest}: {existing} is a file, not a folder", fix="choose another path")
    writable_in = dest if dest.is_dir() else existing if existing != dest else dest.parent
    if not os.access(writable_in, os.W_OK | os.X_OK):
        raise ArtifactError(f"{what} {dest}: cannot write in {writable_in} (permission denied)", fix="choose a writable path")


def check_replaceable(path: str | os.PathLike[str], what: str, kind: str) -> None:
    """An output file may replace an earlier one of its `kind` (a JSON object whose "kind" is it), never
    another file that happens to have the name (a recipe, someone's notes)."""
    from compress.errors import ArtifactError

    dest = Path(path)
    if not dest.is_file() or dest.stat().st_size == 0:
        return
    try:
        ours = json.loads(dest.read_text(encoding="utf-8")).get("kind") == kind
    except (ValueError, UnicodeDecodeError, AttributeError):
        ours = False
    if not ours:
        raise ArtifactError(f"{what} {dest} exists and is not an earlier {kind} file; it was left as it was", fix="give a new file name")


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
