"""One generic registry for stages, losses, models and tasks: duplicates and unknown names fail loudly."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from compress.errors import RecipeError

__all__ = ["Registry", "did_you_mean"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object. `kind` names what is registered ("stage", "loss") in error messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise RecipeError(self.unknown_message(name)) from None

    def check(self, name: str) -> str:
        """For config validators: `name` if registered, else ValueError with close matches."""
        if name not in self._items:
            raise ValueError(self.unknown_message(name))
        return name

    def unknown_message(self, name: str) -> str:
        return f"unknown {self.kind} {name!r}; {did_you_mean(name, self._items)}known: {', '.join(sorted(self._items))}"

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """'did you mean 'a' or 'b'? ' for the names in `known` closest to `name`, or '' when none is close."""
    close = difflib.get_close_matches(name, [k for k in known if k], n=3, cutoff=0.5)
    return f"did you mean {' or '.join(map(repr, close))}? " if close else ""
