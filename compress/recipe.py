"""YAML recipe -> validated `Recipe` -> stage objects, with errors that name the file, line and key."""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from compress.bench.runners import TargetSpec
from compress.config import NAME_PATTERN, Acceptance, no_booleans_as_numbers
from compress.data.spec import TaskSpec
from compress.errors import RecipeError
from compress.stages import STAGES, Stage

__all__ = ["Recipe", "load_recipe", "parse_recipe", "format_validation_error"]


class Recipe(BaseModel):
    """A recipe file: run settings plus an ordered list of `- <stage>: {config}` entries."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=64, description="run name; output goes to runs/<name>/")
    seed: int = Field(0, ge=0, le=2**32 - 1000, description="base random seed; stage i uses seed + i")
    task: TaskSpec
    target: TargetSpec = Field(default_factory=TargetSpec)
    stages: list[dict[str, Any]] = Field(min_length=1, description="'- <stage>: {config}' entries; a bare '- <stage>' uses defaults")
    acceptance: Acceptance | None = Field(
        None, description="gates the shipped model must meet against a reference; a run that misses one exits 1 (JUnit)"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, data: Any) -> Any:
        return no_booleans_as_numbers(cls, data)

    @field_validator("task", "target", mode="before")
    @classmethod
    def _bare_name(cls, value: Any) -> Any:
        """`task: digits` and `target: ort-cpu` are short for `{name: digits}` and `{name: ort-cpu}`."""
        return {"name": value} if isinstance(value, str) else value

    @field_validator("stages", mode="before")
    @classmethod
    def _bare_names(cls, entries: Any) -> Any:
        if isinstance(entries, list):
            return [{e: {}} if isinstance(e, str) else e for e in entries]
        return entries


PACKAGED = Path(__file__).resolve().parent / "recipes"
"""The recipes that ship in the package (`pipelines/` in the repository links here)."""


def packaged_recipes() -> dict[str, Path]:
    """Packaged recipe name -> file."""
    return {p.stem: p for p in sorted(PACKAGED.glob("*.yaml"))}


def recipe_purpose(path: Path) -> str:
    """A recipe's one-line purpose: the first sentence of its opening comment."""
    lines = [line[1:].strip() for line in path.read_text(encoding="utf-8").splitlines()[:8] if line.startswith("#")]
    sentence = " ".join(lines).split(". ", 1)[0]
    return sentence if len(sentence) <= 110 else sentence[:110].rsplit(" ", 1)[0] + " ..."


def resolve_recipe(path: str | Path) -> Path:
    """`path` as given, or, when no such file exists, the packaged recipe of that name (`digits_edge`)."""
    given = Path(path)
    if given.exists() or given.parent != Path("."):
        return given
    return packaged_recipes().get(given.name.removesuffix(".yaml").removesuffix(".yml"), given)


def load_recipe(path: str | Path) -> tuple[Recipe, list[Stage]]:
    path = resolve_recipe(path)
    example = "give a .yaml file or a packaged recipe's name (edge-compress recipes lists them), e.g. digits_edge"
    if path.is_dir():
        raise RecipeError(f"recipe {str(path)!r} is a folder, not a recipe file", fix=example)
    if path.exists() and not path.is_file():
        raise RecipeError(f"recipe {str(path)!r} is not a regular file", fix=example)
    if not path.is_file():
        names = ", ".join(packaged_recipes())
        raise RecipeError(f"recipe {str(path)!r} does not exist", fix=f"check the path, or name a packaged recipe: {names}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RecipeError(f"recipe {str(path)!r} is not a text file (not UTF-8)", fix="give the YAML recipe, not a binary file") from None
    except OSError as err:
        raise RecipeError(f"cannot read recipe {str(path)!r}: {err.strerror}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no tags that run code
    except _DuplicateKey as dup:
        raise RecipeError(f"{path}:{dup.line}: duplicate key {dup.key!r} (first at line {dup.first})", fix="keep one of them") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise RecipeError(f"{where}: not valid YAML: {getattr(err, 'problem', err)}") from None
    if _expanded_size(data) > MAX_VALUES:
        raise RecipeError(
            f"{path}: the recipe expands to more than {MAX_VALUES:,} values (YAML aliases nested in aliases)",
            fix="write the values out, or reuse anchors one level deep",
        )
    return parse_recipe(data, source=str(path), text=text)


MAX_VALUES = 100_000
"""A recipe is a page of settings; an alias bomb (`a: &a [*b, *b, ...]` nested) expands to billions."""


def _expanded_size(data: Any, limit: int = MAX_VALUES) -> int:
    """How many values `data` holds with every alias expanded, counting no further than just past `limit`."""
    count, stack = 0, [data]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int, first: int) -> None:
        self.key, self.line, self.first = key, line, first


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a key given twice in one mapping is an error instead of the last one winning."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(key, line, seen[key])
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_recipe(data: Any, *, source: str = "<recipe>", text: str | None = None) -> tuple[Recipe, list[Stage]]:
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe is a mapping with keys name, task, stages")
    problems: list[RecipeError] = []
    recipe = None
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        problems.append(_error(err, (), Recipe, source, text))
    entries = recipe.stages if recipe is not None else data.get("stages")
    stages = []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):  # every stage is checked, not only up to a bad one
        try:
            stages.append(_stage(entry, i, source, text) if isinstance(entry, dict) else stage_of(entry, i, source))
        except RecipeError as err:
            problems.append(err)
    if problems or recipe is None:
        raise RecipeError.combined(problems)
    return recipe, stages


def stage_of(entry: Stage | str | dict[str, Any], index: int, source: str = "<pipeline>") -> Stage:
    """A stage from any form a recipe or the API gives: a stage object, a name, or `{name: {config}}`."""
    if isinstance(entry, Stage):
        return entry
    if isinstance(entry, str):
        entry = {entry: {}}
    if not isinstance(entry, dict):
        raise RecipeError(f"{source}: stages[{index}] is {type(entry).__name__}; give a stage object, a stage name or {{name: {{config}}}}")
    return _stage(entry, index, source, None)


def acceptance_of(acceptance: Acceptance | dict[str, Any] | None) -> Acceptance | None:
    """The acceptance section from the API's forms: the model, or the recipe's mapping."""
    if acceptance is None or isinstance(acceptance, Acceptance):
        return acceptance
    try:
        return Acceptance.model_validate(acceptance)
    except ValidationError as err:
        raise _error(err, ("acceptance",), Acceptance, "<pipeline>", None) from None


def task_of(task: TaskSpec | str | dict[str, Any]) -> TaskSpec:
    """The run's task from the API's forms: a spec, a built-in task name, or the recipe's mapping."""
    if isinstance(task, TaskSpec):
        return task
    try:
        return TaskSpec.model_validate({"name": task} if isinstance(task, str) else task)
    except ValidationError as err:
        raise _error(err, ("task",), TaskSpec, "<pipeline>", None) from None


def _stage(entry: dict[str, Any], index: int, source: str, text: str | None) -> Stage:
    if len(entry) != 1:
        where = _where(source, text, ("stages", index))
        raise RecipeError(f"{where}stages[{index}]: write each stage as '- <stage>: {{config}}', got keys {list(entry)}")
    ((kind, cfg),) = entry.items()
    if kind not in STAGES:
        where = _where(source, text, ("stages", index, kind))
        raise RecipeError(f"{where}stages[{index}]: {STAGES.unknown_message(kind)}")
    cls = STAGES.get(kind)
    try:
        return cls(cls.Config.model_validate(cfg or {}))
    except ValidationError as err:
        raise _error(err, ("stages", index, kind), cls.Config, source, text) from None


# pydantic names the branch of a union (`float | Schedule`) and a validator's wrapper (`function-after[...]`)
# in an error's location; these are not keys
_BRANCH = re.compile(r"^(float|int|str|bool|none|constrained-\w+|(list|dict)\[.*\]|function-\w+\[.*\]|[A-Z]\w*)$")


def _error(err: ValidationError, prefix: tuple, model: type[BaseModel], source: str, text: str | None) -> RecipeError:
    """The first error, preferring, for a value that may be a number or a mapping (a schedule), the
    branch that matches what was written."""
    errors = err.errors()
    scalar_branch = [any(isinstance(p, str) and p in ("float", "int", "str", "bool") for p in e["loc"]) for e in errors]
    mapping_given = [isinstance(e.get("input"), dict) for e in errors]
    ranked = sorted(range(len(errors)), key=lambda i: scalar_branch[i] and mapping_given[i])
    first = dict(errors[ranked[0]])
    first["loc"] = tuple(p for p in first["loc"] if not (isinstance(p, str) and _BRANCH.match(p)))
    relevant = [e for i, e in enumerate(errors) if not (scalar_branch[i] and mapping_given[i])]  # a mapping was written
    shown = {tuple(p for p in e["loc"] if not (isinstance(p, str) and _BRANCH.match(p))) for e in relevant or errors}
    loc = prefix + first["loc"]
    more = f" (and {len(shown) - 1} more)" if len(shown) > 1 else ""
    problems = [_line(first, prefix, model, source, text)]
    problems += [_line(e, prefix, model, source, text) for e in _distinct(relevant or errors) if _bare(e["loc"]) != first["loc"]]
    return RecipeError(f"{_where(source, text, loc)}{_dotted(loc)}: {format_validation_error(first, model)}{more}", problems=problems)


def _bare(loc: tuple) -> tuple:
    """An error's location without pydantic's union-branch and validator names."""
    return tuple(p for p in loc if not (isinstance(p, str) and _BRANCH.match(p)))


def _distinct(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One error per location (a union gives one per branch)."""
    seen: dict[tuple, dict[str, Any]] = {}
    for e in errors:
        seen.setdefault(_bare(e["loc"]), e)
    return list(seen.values())


def _line(error: dict[str, Any], prefix: tuple, model: type[BaseModel], source: str, text: str | None) -> str:
    error = {**error, "loc": _bare(error["loc"])}
    loc = prefix + error["loc"]
    return f"{_where(source, text, loc)}{_dotted(loc)}: {format_validation_error(error, model)}"


def format_validation_error(error: dict[str, Any], model: type[BaseModel]) -> str:
    """One readable phrase for a pydantic error, with close matches for unknown keys."""
    key = error["loc"][-1] if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        owner = _model_at(model, error["loc"][:-1])
        valid = list(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown key{hint} valid keys: {', '.join(valid)}"
    if error["type"] == "missing":
        return "required key is missing"
    if error["type"] == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == NAME_PATTERN:
        return f"a name uses letters, digits, '_', '.' and '-' only, and starts with a letter or digit (got {error['input']!r})"
    message = re.sub(r"^(Value|Assertion) error, ", "", error["msg"])
    if error["type"] not in ("value_error",) and "input" in error and not isinstance(error["input"], dict):
        message += f" (got {error['input']!r})"
    return message


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    for part in loc:
        field = model.model_fields.get(str(part))
        options = [getattr(field, "annotation", None), *typing.get_args(getattr(field, "annotation", None))]  # `Model | None` too
        found = next((a for a in options if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if found is None:
            return None
        model = found
    return model


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "recipe"


def _where(source: str, text: str | None, loc: tuple) -> str:
    line = _line_of(text, loc) if text else None
    return f"{source}:{line}: " if line else f"{source}: "


def _line_of(text: str, loc: tuple) -> int | None:
    """1-based line of the YAML node at `loc` (or its nearest existing parent)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def recipe_schema() -> dict[str, Any]:
    """The recipe's JSON Schema (draft 2020-12), every stage's config included, for editors and CI linters."""
    from pydantic.json_schema import models_json_schema

    models = [Recipe, *(cls.Config for _, cls in STAGES.items())]
    refs, top = models_json_schema([(m, "validation") for m in models], ref_template="#/$defs/{model}")
    defs = top["$defs"]
    recipe = defs.pop(refs[(Recipe, "validation")]["$ref"].rsplit("/", 1)[1])

    def entry(name: str, config: type[BaseModel]) -> dict[str, Any]:
        value = {"anyOf": [refs[(config, "validation")], {"type": "null"}]}  # `- export:` alone means its defaults
        return {"type": "object", "properties": {name: value}, "required": [name], "additionalProperties": False}

    stages = [entry(name, cls.Config) for name, cls in STAGES.items()] + [{"enum": list(STAGES)}]
    recipe["properties"]["stages"] = {**recipe["properties"]["stages"], "items": {"oneOf": stages}}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **recipe, "$defs": defs}
