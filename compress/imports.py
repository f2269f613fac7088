"""The one place where a recipe's `module:function` strings become Python callables."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from compress.errors import RecipeError
from compress.registry import did_you_mean

__all__ = ["resolve_callable", "check_callable_spec"]


def check_callable_spec(spec: str) -> str:
    """Validate the form `package.module:function` without importing anything."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr or not all(p.isidentifier() for p in module.split(".")):
        raise ValueError(f"{spec!r} is not of the form 'package.module:function'")
    return spec


def resolve_callable(spec: str) -> Callable[..., Any]:
    """Import `package.module:function`, looking in the working directory first like `python -m`."""
    check_callable_spec(spec)
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise RecipeError(
            f"cannot import {module_name!r} named in {spec!r}: {err}",
            fix="run from the folder that holds the module, or install it",
        ) from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = [name for name in dir(obj) if not name.startswith("_")]
            raise RecipeError(
                f"module {module_name!r} has no attribute {attr!r} (from {spec!r}); {did_you_mean(part, public)}".rstrip("; ")
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise RecipeError(f"{spec!r} is not callable")
    return obj
