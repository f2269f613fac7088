"""The Stage protocol: a name, a hand-written config class, and `run(ctx, cfg) -> ctx`."""

from __future__ import annotations

from typing import Any, ClassVar

from compress.config import StageConfig
from compress.context import RunContext
from compress.registry import Registry

__all__ = ["Stage", "StageConfig", "STAGES", "register_stage"]


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

    def run(self, ctx: RunContext, cfg: Any) -> RunContext:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cfg!r})"


STAGES: Registry[type[Stage]] = Registry("stage")


def register_stage(cls: type[Stage]) -> type[Stage]:
    return STAGES.register(cls.name)(cls)
