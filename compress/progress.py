"""Progress on long work: a tqdm bar in a terminal; outside one (a CI log, a pipe, a file) plain lines
through `logging`, a few per task, so that a log has no carriage returns and no line of bar redraws."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["progress", "PlainProgress", "show_lines"]

log = logging.getLogger("compress")
LINES = 5
"""Plain lines per task (besides the last one)."""


_handler: logging.Handler | None = None


def show_lines(*, quiet: bool = False) -> None:
    """From Python, with logging not configured by the application: the run's lines go to stderr as the
    command line prints them (warnings only when `quiet`). An application's own logging setup is left alone."""
    global _handler
    ours = logging.getLogger("compress")
    if _handler is None:
        if logging.getLogger().handlers or ours.handlers:
            return
        _handler = logging.StreamHandler()
        _handler.setFormatter(logging.Formatter("%(message)s"))
        ours.addHandler(_handler)
        if ours.level == logging.NOTSET:
            ours.setLevel(logging.INFO)
    _handler.setLevel(logging.WARNING if quiet else logging.INFO)


def progress(
    iterable: Iterable[Any] | None = None, *, desc: str, unit: str, total: int | None = None, disable: bool = False, **tqdm_args: Any
):
    """A tqdm bar when stderr is a terminal, else a `PlainProgress`; either way with `update`,
    `set_postfix` and `close`, and iterable when given an iterable."""
    if disable or not _is_terminal():
        return PlainProgress(iterable, desc=desc, unit=unit, total=total, quiet=disable)
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit=unit, total=total, leave=False, **tqdm_args)


def _is_terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class PlainProgress:
    """One log line about every `total / LINES` units, and one at the end: `desc: 12/40 epoch, loss 0.1234`."""

    def __init__(self, iterable: Iterable[Any] | None, *, desc: str, unit: str, total: int | None, quiet: bool) -> None:
        self.iterable, self.desc, self.unit, self.quiet = iterable, desc, unit, quiet
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)  # type: ignore[arg-type]
        self.done, self.postfix, self.shown = 0, "", 0
        self.every = max(1, (self.total or 0) // LINES) if self.total else None

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update(1)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.every and (self.done // self.every > self.shown // self.every or self.done == self.total):
            self._line()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def close(self) -> None:
        if self.done != self.shown:
            self._line()

    def _line(self) -> None:
        self.shown = self.done
        if not self.quiet:
            of = f"/{self.total}" if self.total else ""
            unit = self.unit if (self.total or self.done) == 1 else f"{self.unit}s"
            log.info("  %s: %d%s %s%s", self.desc, self.done, of, unit, f", {self.postfix}" if self.postfix else "")
