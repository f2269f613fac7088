"""The Stage protocol: a name, a hand-written config class, and `run(ctx, cfg) -> ctx`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from compress.config import StageConfig
from compress.context import RunContext
from compress.data.task import TaskData
from compress.errors import RecipeError
from compress.records import ModelKind
from compress.registry import Registry, did_you_mean

__all__ = ["Stage", "StageConfig", "STAGES", "register_stage", "Planned", "need"]


@dataclass
class Planned:
    """What `validate` knows of a model before anything runs: what it is and whether it has an ONNX file."""

    kind: ModelKind = "fp32"
    onnx: bool = False
    torch: bool = True  # False: brought as an ONNX file, no PyTorch module


def need(
    models: dict[str, Planned],
    name: str,
    *,
    kind: Literal["fp32"] | None = None,
    onnx: bool = False,
    torch: bool | None = None,
    role: str = "model",
) -> Planned:
    """The planned model `name`, checked to exist (and to be FP32, exported, a PyTorch model, where asked).
    `torch` defaults to what `kind="fp32"` without `onnx` means: the stage works on the PyTorch model."""
    if name not in models:
        known = ", ".join(models) or "none"
        raise RecipeError(
            f"{role} {name!r} is not made by an earlier stage ({did_you_mean(name, models)}made so far: {known})",
            fix="add a train or load stage for it first, or fix the name",
        )
    found = models[name]
    if kind == "fp32" and found.kind == "int8":
        raise RecipeError(
            f"{role} {name!r} is INT8 (an ONNX file); this stage works on an FP32 PyTorch model", fix="name the FP32 model it was made from"
        )
    if onnx and not found.onnx:
        raise RecipeError(f"{role} {name!r} has no ONNX file at this point", fix="add an export stage for it before this one")
    if (torch if torch is not None else kind == "fp32" and not onnx) and not found.torch:
        raise RecipeError(
            f"{role} {name!r} was brought as an ONNX file; this stage needs its PyTorch model",
            fix="load the PyTorch model (arch or factory plus checkpoint); an ONNX file goes to quantize, benchmark and report",
        )
    return found


class Stage:
    """A stage object: `Train(name="teacher", model={...})` validates its config at construction.

    Subclasses set `name` and `Config`, and implement `run`. A stage writes only through
    `ctx.out(...)`; the pipeline owns folders, timing, the manifest and resume.
    """

    name: ClassVar[str]
    Config: ClassVar[type[StageConfig]]
    every_rank: ClassVar[bool] = False
    """Under torchrun, True for stages that every rank runs (training, and whatever makes the models
    training needs); the others run on rank 0 only while the rest wait."""
    cpu_dependent: ClassVar[bool] = False
    """True for stages whose result depends on the deployment CPU and this host's kind (INT8 formats and
    checks): `target.cpu: auto` on another kind of machine then runs them again instead of reusing them."""
    shows_verdict: ClassVar[bool] = False
    """True for a stage whose output shows the verdict: a changed acceptance section re-runs it on resume."""

    def __init__(self, cfg: StageConfig | None = None, /, **kwargs: Any) -> None:
        if cfg is not None and kwargs:
            raise TypeError("give a config object or keyword arguments, not both")
        self.cfg = cfg if cfg is not None else self.Config(**kwargs)
        if not isinstance(self.cfg, self.Config):
            raise TypeError(f"{type(self).__name__} needs a {self.Config.__name__}, got {type(self.cfg).__name__}")

    def requires(self) -> list[str]:
        """Names of models that must exist before this stage runs."""
        return []

    def provides(self) -> list[str]:
        """Names of models this stage adds."""
        return []

    def targets(self) -> list[str]:
        """Benchmark targets this stage runs models on besides the run's own (checked before anything runs)."""
        return []

    def input_files(self) -> list[tuple[str, str]]:
        """Files of the user's this stage reads, as (what, path): checked to exist before anything runs.
        By default the checkpoint of every model the config names."""
        from compress.models.spec import ModelSpec

        specs = [v for v in dict(self.cfg).values() if isinstance(v, ModelSpec)]
        return [(what, path) for s in specs for what, path in (("checkpoint", s.checkpoint), ("ONNX file", s.onnx)) if path]

    def check_inputs(self, task: TaskData) -> None:
        """Check the user's files against the loaded task (shapes), before any stage of the run starts."""

    def plan(self, models: dict[str, Planned]) -> None:
        """Check this stage against the models earlier stages make (`validate` runs it for every stage,
        in order, before anything trains) and add or change what this one makes. By default: every
        required model exists and each provided one is a new FP32 PyTorch model."""
        for name in self.requires():
            need(models, name)
        for name in self.provides():
            if name in models:
                raise RecipeError(f"model name {name!r} is already used by an earlier stage", fix="give it another name")
            models[name] = Planned()

    def run(self, ctx: RunContext, cfg: Any) -> RunContext:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cfg!r})"


STAGES: Registry[type[Stage]] = Registry("stage")


def register_stage(cls: type[Stage]) -> type[Stage]:
    return STAGES.register(cls.name)(cls)
