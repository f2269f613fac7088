"""Errors a user can cause. The CLI catches `CompressError` once and prints one line."""

from __future__ import annotations

__all__ = ["CompressError", "RecipeError", "DataError", "ModelError", "ArtifactError", "TargetError", "first_line"]


class CompressError(Exception):
    """Base for every error caused by input (recipe, data, model, files), not by a bug.

    `str(err)` is a single line: where the problem is, what it is, and how to fix it.
    """

    exit_code = 2

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message}; {fix}" if fix else message)


class RecipeError(CompressError):
    """The recipe (YAML or Python stage configs) is invalid. `problems`: every problem found, one line
    each (`edge-compress validate` prints them all; the message names the first and counts the rest)."""

    def __init__(self, message: str, *, fix: str | None = None, problems: list[str] | None = None) -> None:
        super().__init__(message, fix=fix)
        self.problems = problems or [str(self)]

    @classmethod
    def combined(cls, errors: list[RecipeError]) -> RecipeError:
        """One error for several: the first one's line, with how many more there are, and all of them."""
        problems = [p for err in errors for p in err.problems]
        first = errors[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return cls(first.problems[0] + more, problems=problems)


class DataError(CompressError):
    """The task's data cannot be loaded or does not fit the model."""


class ModelError(CompressError):
    """A model cannot be built, loaded or run."""


class ArtifactError(CompressError):
    """A run folder, checkpoint or exported file is missing, corrupt or fails its check."""


class TargetError(CompressError):
    """A benchmark target (runtime and device) is not available on this machine."""


def first_line(err: BaseException) -> str:
    """An exception's message in one line for an error we raise in its place: its first non-empty line,
    or its type's name when it has no message (an EOFError from an empty file has none)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
