"""`ModelSpec`: how a recipe names a model, and how it becomes an `nn.Module` checked against the task."""

from __future__ import annotations

import inspect
import io
import warnings
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from compress.data.task import TaskData
from compress.errors import DataError, ModelError, first_line
from compress.fsio import atomic_path
from compress.imports import check_callable_spec, resolve_callable
from compress.models.structure import describe, reshape
from compress.models.zoo import MODELS

__all__ = ["ModelSpec", "build_model", "load_checkpoint", "save_checkpoint"]

_INJECTED = ("in_shape", "num_outputs")


class ModelSpec(BaseModel):
    """`arch` (a zoo name) or `factory` (`module:function`), plus the builder's own keyword arguments;
    or `onnx`, an ONNX file brought as it is (no PyTorch module: quantize, benchmark and report only).

    Example: `{arch: resnet_cnn, width: 32, blocks: [2, 2]}`. `in_shape` and `num_outputs` come
    from the task. `checkpoint` (a state dict file) is loaded with `weights_only=True`.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    arch: str | None = None
    factory: str | None = None
    checkpoint: str | None = None
    # left out of dumps when unset: specs (and so the resume keys of runs made before it existed) stay the same
    onnx: str | None = Field(None, exclude_if=lambda value: value is None)

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if sum(v is not None for v in (self.arch, self.factory, self.onnx)) != 1:
            raise ValueError("give exactly one of 'arch' (a zoo model), 'factory' ('module:function') or 'onnx' (a file)")
        if self.onnx is not None:
            if self.checkpoint is not None or self.kwargs:
                raise ValueError("an 'onnx' model takes no other keys: its weights and sizes are in the file")
            return self
        if self.factory is not None:
            check_callable_spec(self.factory)
            return self
        if self.arch not in MODELS and "." in self.arch:
            raise ValueError(f"{MODELS.unknown_message(self.arch)}; for your own model write module:function, with a colon")
        MODELS.check(self.arch)
        params = inspect.signature(MODELS.get(self.arch)).parameters
        allowed = [p for p in params if p not in _INJECTED]
        for key, value in self.kwargs.items():
            if key not in allowed:
                raise ValueError(f"unknown argument {key!r} for arch {self.arch!r}; valid: {', '.join(allowed)}")
            _check_sizes(key, value, params[key].default)
        return self

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def label(self) -> str:
        return self.arch or self.factory or (f"onnx: {Path(self.onnx).name}" if self.onnx else "?")


MAX_SIZE = 1 << 20


def _check_sizes(key: str, value: Any, default: Any) -> None:
    """Every whole number a zoo model takes (widths, depths, heads, kernel and patch sizes) is a size, 1 to
    MAX_SIZE, written as the default is: a number, or a list of numbers."""

    def is_size(n: Any) -> bool:
        return isinstance(n, int) and not isinstance(n, bool)

    listed = isinstance(default, list | tuple) and all(is_size(d) for d in default)
    if not (listed or is_size(default)):
        return  # not a size (dropout, activation)
    numbers = value if listed and isinstance(value, list | tuple) else None if listed else [value]
    if numbers is None or not all(is_size(n) and 1 <= n <= MAX_SIZE for n in numbers):
        form = "a list of whole numbers" if listed else "a whole number"
        raise ValueError(f"{key}: give {form} from 1 to {MAX_SIZE}, like {list(default) if listed else default}; got {value!r}")


def build_model(spec: ModelSpec, task: TaskData, *, load_weights: bool = True) -> nn.Module:
    """Build the model, load its checkpoint, and check it maps one task input to `num_outputs` values."""
    builder = MODELS.get(spec.arch) if spec.arch else resolve_callable(spec.factory or "")
    kwargs = spec.kwargs
    accepted = inspect.signature(builder).parameters
    for key, value in (("in_shape", task.input_shape), ("num_outputs", task.num_outputs)):
        if key in accepted:
            kwargs[key] = value
    try:
        model = builder(**kwargs)
    except (TypeError, ValueError) as err:
        raise ModelError(f"cannot build model {spec.label!r}: {first_line(err)}", fix="check the keys under model: in the recipe") from err
    except Exception as err:
        if spec.arch and isinstance(err, RuntimeError):  # sizes that do not fit each other or the input
            raise ModelError(
                f"cannot build model {spec.label!r} with {spec.kwargs}: {first_line(err)}", fix="check its sizes against the task's inputs"
            ) from err
        if spec.arch:
            raise  # a zoo model that fails to build is our bug: its traceback is the report
        raise ModelError(
            f"model factory {spec.factory!r} failed: {type(err).__name__}: {first_line(err)}",
            fix="fix the factory or its arguments; run with --debug to see its traceback",
        ) from err
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"model factory {spec.label!r} returned {type(model).__name__}, not a torch.nn.Module", fix="return the nn.Module it builds"
        )
    if spec.checkpoint and load_weights:
        load_checkpoint(model, spec.checkpoint)
    check_fits_task(model, spec.label, task)
    return model


def check_fits_task(model: nn.Module, label: str, task: TaskData) -> None:
    example = task.example_input(2)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(example)
    except RuntimeError as err:
        first = first_line(err)
        raise DataError(
            f"model {label!r} cannot take task {task.name!r} samples of shape {tuple(example.shape[1:])} "
            f"(tried a batch of {example.shape[0]}): {first}",
            fix="change the model's input size or the task",
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise DataError(
            f"model {label!r} returns a {type(out).__name__}, not a tensor of outputs",
            fix="make forward() return one tensor of shape (batch, outputs), e.g. wrap the model and return its logits",
        )
    expected = (example.shape[0], task.num_outputs)
    if out.ndim == 0 or out.shape[0] != example.shape[0]:
        rows = "a scalar" if out.ndim == 0 else f"{out.shape[0]} rows"
        raise DataError(
            f"model {label!r} returns {rows} for a batch of {example.shape[0]}",
            fix="its output must keep the batch axis: one row per input",
        )
    if not out.is_floating_point():
        raise DataError(f"model {label!r} outputs {out.dtype} values, not scores", fix="return the logits (before any argmax)")
    if tuple(out.shape) != expected:
        raise DataError(
            f"model {label!r} outputs shape {tuple(out.shape)} but task {task.name!r} needs {expected}",
            fix=f"give the model {task.num_outputs} outputs",
        )


_CHECKPOINT_FIX = "save the model's weights with torch.save(model.state_dict(), path)"


def _why_unreadable(path: Path, err: Exception) -> str:
    """Why torch could not load `path` safely, in our words: torch's own advice for a file that needs more
    than tensors (retry with weights_only=False) would run whatever code the file holds."""
    if path.stat().st_size == 0:
        return "the file is empty"
    if "Unsupported global" in str(err):  # a pickled object, class or function: only code could rebuild it
        return "it holds more than tensors (loading it would run code from the file, which edge-compress never does)"
    if "Weights only load failed" in str(err):
        return "not a PyTorch checkpoint (its bytes are not a saved state dict)"
    return f"not a PyTorch checkpoint ({first_line(err)})"


def load_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Load a state dict (or `{"state_dict": ...}`) saved by `torch.save`, never unpickling code."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"checkpoint {str(path)!r} is a folder, not a checkpoint file", fix="give the .pt file inside it")
    if not path.is_file():
        raise ModelError(f"checkpoint {str(path)!r} does not exist", fix="check the path in the recipe")
    try:
        with warnings.catch_warnings():  # torch's warnings about a foreign pickle protocol add nothing to our one line
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe files
        raise ModelError(f"cannot read checkpoint {str(path)!r}: {_why_unreadable(path, err)}", fix=_CHECKPOINT_FIX) from None
    structure = state.get("structure") if isinstance(state, dict) else None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    _check_not_wrapped(model, path, state)
    try:
        if structure is not None:
            reshape(model, structure, state)  # a pruned model: sizes first, then weights
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0]
        detail = detail if len(detail) <= 200 else detail[:197] + "..."
        raise ModelError(
            f"checkpoint {str(path)!r} does not fit the model: {detail}",
            fix="give model: the architecture and sizes the checkpoint was trained with",
        ) from None


def _check_not_wrapped(model: nn.Module, path: Path, state: Any) -> None:
    """A training checkpoint such as `{"model": state_dict, "epoch": 3}`: none of the model's weight names at
    the top, a dict of tensors under some key. Name the keys, instead of listing every missing weight."""
    if not isinstance(state, dict) or set(state) & set(model.state_dict()):
        return
    inner = [k for k, v in state.items() if isinstance(v, dict) and v and all(isinstance(t, torch.Tensor) for t in v.values())]
    if inner:
        keys = ", ".join(repr(k) for k in list(state)[:6])
        raise ModelError(
            f"checkpoint {str(path)!r} holds the weights under {inner[0]!r} (its top-level keys: {keys}), not at its top",
            fix=f"save that part alone: torch.save(checkpoint[{inner[0]!r}], path), or torch.save(model.state_dict(), path)",
        )


def save_checkpoint(model: nn.Module, path: str | Path, *, structure: bool = False) -> None:
    """Atomic and byte-reproducible: torch.save names its zip archive after the file, so the state is
    serialised in memory (fixed archive name) and the bytes are written through a temporary file.
    `structure=True` (pruned models) saves `{"structure": layer sizes, "state_dict": ...}`, which
    `load_checkpoint` applies to the unpruned architecture; still no pickled code."""
    buffer = io.BytesIO()
    torch.save({"structure": describe(model), "state_dict": model.state_dict()} if structure else model.state_dict(), buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
