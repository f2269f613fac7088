"""`TaskSpec`: where a run's data comes from, as a recipe names it: a built-in task, a gymnasium
environment (a policy task) or the user's own factory."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from compress.data.task import TaskData
from compress.errors import CompressError, DataError, RecipeError, first_line
from compress.imports import check_callable_spec, resolve_callable

__all__ = ["TaskSpec"]


class TaskSpec(BaseModel):
    """A built-in task by `name`, a gymnasium environment by `env` (a policy task), or the user's
    `factory` (`module:function` returning `TaskData`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str | None = Field(None, description="built-in task: digits, mnist1d or diabetes")
    env: str | None = Field(
        None, description="gymnasium environment id, e.g. CartPole-v1 or Acrobot-v1: a policy task (needs the 'rl' extra)"
    )
    factory: str | None = Field(None, description="'module:function' returning compress.data.TaskData")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments for the factory; for env: val_episodes, test_episodes, expert_episodes, expert",
    )

    @model_validator(mode="after")
    def _one_source(self) -> TaskSpec:
        from compress.data.builtin import TASKS

        if sum(v is not None for v in (self.name, self.env, self.factory)) != 1:
            raise ValueError(
                "give exactly one of 'name' (a built-in task), 'env' (a gymnasium environment) or 'factory' ('module:function')"
            )
        if self.name is not None:
            TASKS.check(self.name)
        if self.factory is not None:
            check_callable_spec(self.factory)
        if self.env is not None:
            _check_policy_options(self.env, self.options)
        if self.name is not None and self.options:
            raise ValueError("'options' apply to 'env' and 'factory' tasks; built-in tasks take none")
        return self

    def load(self) -> TaskData:
        from compress.data.builtin import TASKS

        if self.name is not None:
            return TASKS.get(self.name)()
        if self.env is not None:
            from compress.data.policy import policy_task

            return policy_task(self.env, **self.options)
        factory = resolve_callable(self.factory or "")
        try:
            task = factory(**self.options)
        except CompressError:  # the data it built failed a check (TaskData): that line says it all
            raise
        except Exception as err:  # the user's code: its failure is bad input, reported in one line
            raise DataError(
                f"task factory {self.factory!r} failed: {type(err).__name__}: {first_line(err)}",
                fix="fix the factory or its options; run with --debug to see its traceback",
            ) from err
        if not isinstance(task, TaskData):
            raise RecipeError(
                f"task factory {self.factory!r} returned {type(task).__name__}, not compress.data.TaskData",
                fix="return TaskData(train, val, test, kind=..., num_outputs=...) (see the README's 'Your own data and models')",
            )
        return task


def _check_policy_options(env: str, options: dict[str, Any]) -> None:
    from compress.data.env import check_env_id

    try:
        check_env_id(env)
    except DataError as err:  # reported like every other recipe error: where, what, how to fix
        raise ValueError(str(err)) from None
    allowed = {"val_episodes", "test_episodes", "expert_episodes", "expert"}
    for key, value in options.items():
        if key not in allowed:
            raise ValueError(f"unknown option {key!r} for an env task; valid: {', '.join(sorted(allowed))}")
        if key != "expert" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"task option {key!r} must be a whole number >= 1, got {value!r}")
        if key == "expert" and not isinstance(value, str):
            raise ValueError(f"task option 'expert' must be a model name, got {value!r}")
