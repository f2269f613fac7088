"""Recipes: every shipped recipe validates; every kind of mistake gives one line naming the place."""

from pathlib import Path

import pytest
import yaml

from compress.errors import RecipeError
from compress.pipeline import Pipeline
from compress.recipe import load_recipe, parse_recipe
from tests.conftest import REPO

RECIPES = sorted((REPO / "pipelines").glob("*.yaml"))


def test_there_are_recipes():
    assert {p.name for p in RECIPES} >= {"digits_edge.yaml", "mnist1d_edge.yaml"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipe_validates_and_round_trips_through_json(path: Path):
    recipe, stages = load_recipe(path)
    pipeline = Pipeline(stages, task=recipe.task, name=recipe.name, seed=recipe.seed, target=recipe.target)
    for stage in stages:
        again = type(stage).Config.model_validate_json(stage.cfg.model_dump_json())
        assert again == stage.cfg
    assert pipeline.settings()["stages"] == [{sid: s.cfg.model_dump(mode="json")} for sid, s in zip(pipeline.ids, stages, strict=True)]


def _error(write_recipe, data) -> str:
    with pytest.raises(RecipeError) as err:
        Pipeline.from_recipe(write_recipe(data))
    message = str(err.value)
    assert "\n" not in message
    return message


def test_unknown_key_in_a_stage_names_key_place_line_and_fix(write_recipe, tiny_recipe):
    tiny_recipe["stages"][1]["distill"]["temprature"] = 3
    message = _error(write_recipe, tiny_recipe)
    assert "recipe.yaml:" in message
    assert "stages[1].distill.temprature: unknown key; did you mean 'temperature'?" in message
    line = int(message.split("recipe.yaml:")[1].split(":")[0])
    assert "temprature" in write_recipe(tiny_recipe).read_text().splitlines()[line - 1]


def test_a_bare_task_or_target_name_is_short_for_its_name_and_still_checked(write_recipe, tiny_recipe):
    tiny_recipe["task"], tiny_recipe["target"] = "digits", "ort-cpu"
    recipe = load_recipe(write_recipe(tiny_recipe))[0]
    assert recipe.task.name == "digits" and recipe.target.name == "ort-cpu"
    tiny_recipe["task"] = "digit"
    assert "did you mean 'digits'" in _error(write_recipe, tiny_recipe)


def test_unknown_top_level_key(write_recipe, tiny_recipe):
    tiny_recipe["sead"] = 1
    assert "sead: unknown key; did you mean 'seed'?" in _error(write_recipe, tiny_recipe)


def test_unknown_stage_suggests_close_matches(write_recipe, tiny_recipe):
    tiny_recipe["stages"][1] = {"distil": tiny_recipe["stages"][1]["distill"]}
    message = _error(write_recipe, tiny_recipe)
    assert "stages[1]: unknown stage 'distil'; did you mean 'distill'?" in message


def test_wrong_type_and_out_of_range(write_recipe, tiny_recipe):
    tiny_recipe["stages"][0]["train"]["epochs"] = "many"
    assert "stages[0].train.epochs: " in _error(write_recipe, tiny_recipe)
    tiny_recipe["stages"][0]["train"]["epochs"] = 3
    tiny_recipe["stages"][1]["distill"]["alpha"] = 1.5
    assert "stages[1].distill.alpha: alpha must stay within [0, 1], got 1.5" in _error(write_recipe, tiny_recipe)


def test_bad_model_arguments_and_names(write_recipe, tiny_recipe):
    tiny_recipe["stages"][0]["train"]["model"] = {"arch": "mlp", "hiden": [4]}
    assert "stages[0].train.model: unknown argument 'hiden' for arch 'mlp'" in _error(write_recipe, tiny_recipe)
    tiny_recipe["stages"][0]["train"]["model"] = {"arch": "resnet"}
    assert "unknown model architecture 'resnet'; did you mean 'resnet_cnn'?" in _error(write_recipe, tiny_recipe)
    tiny_recipe["stages"][0]["train"]["model"] = {"arch": "mymodels.make_net"}
    assert "for your own model write module:function, with a colon" in _error(write_recipe, tiny_recipe)


def test_model_not_made_by_an_earlier_stage(write_recipe, tiny_recipe):
    tiny_recipe["stages"][1]["distill"]["teacher"] = "teachr"
    message = _error(write_recipe, tiny_recipe)
    assert "stages[1] (distill): model 'teachr' is not made by an earlier stage (did you mean 'teacher'? made so far: teacher)" in message


def test_unknown_task_loss_and_missing_model(write_recipe, tiny_recipe):
    tiny_recipe["task"] = {"name": "digitz"}
    assert "task: unknown task 'digitz'; did you mean 'digits'?" in _error(write_recipe, tiny_recipe)
    tiny_recipe["task"] = {"name": "digits"}
    tiny_recipe["stages"][1]["distill"]["loss"] = "kld"
    assert "unknown distillation loss 'kld'" in _error(write_recipe, tiny_recipe)
    del tiny_recipe["stages"][1]["distill"]["loss"]
    del tiny_recipe["stages"][1]["distill"]["model"]
    assert "stages[1].distill.model: required key is missing" in _error(write_recipe, tiny_recipe)


def test_malformed_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages: [\n")
    with pytest.raises(RecipeError, match=r"bad.yaml:\d+: not valid YAML"):
        load_recipe(bad)
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "missing.yaml")
    with pytest.raises(RecipeError, match="a recipe is a mapping"):
        parse_recipe(["train"])
    with pytest.raises(RecipeError, match=r"write each stage as '- <stage>: \{config\}'"):
        parse_recipe({"name": "x", "task": {"name": "digits"}, "stages": [{"train": {}, "export": {}}]})


def test_yaml_tags_that_run_code_are_refused(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo hacked']\ntask: {name: digits}\nstages: [{report: {}}]\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(evil)


def test_recipe_is_plain_yaml_data(write_recipe, tiny_recipe):
    recipe, stages = load_recipe(write_recipe(tiny_recipe))
    assert yaml.safe_load(yaml.safe_dump(recipe.model_dump(mode="json")))["name"] == "tiny"
    assert [s.name for s in stages] == ["train", "distill", "export", "benchmark", "report"]


def test_model_name_made_twice(write_recipe, tiny_recipe):
    tiny_recipe["stages"][1]["distill"]["name"] = "teacher"
    assert "stages[1] (distill): model name 'teacher' is already used by an earlier stage" in _error(write_recipe, tiny_recipe)


def test_bare_stage_name_uses_defaults(write_recipe, tiny_recipe):
    tiny_recipe["stages"][2:] = ["export", "report"]
    _, stages = load_recipe(write_recipe(tiny_recipe))
    assert [s.name for s in stages[2:]] == ["export", "report"]
    assert stages[2].cfg == type(stages[2]).Config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\nname: b\ntask: {name: digits}\nstages: [report]\n", "recipe.yaml:2: duplicate key 'name' (first at line 1)"),
        (
            "name: a\ntask: {name: digits}\nstages:\n  - train:\n      name: t\n      model: {arch: mlp}\n      epochs: 3\n      epochs: 5\n",
            "recipe.yaml:8: duplicate key 'epochs' (first at line 7)",
        ),
    ],
)
def test_a_key_given_twice_is_an_error_with_both_lines(tmp_path, text, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_loader_still_runs_no_code(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo pwned']\ntask: {name: digits}\nstages: [report]\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(path)


def test_the_readme_shows_the_demo_recipe_as_it_is():
    """The README's recipe is the packaged demo recipe, byte for byte: its figures are what it produces."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    readme = (repo / "README.md").read_text()
    recipe = (repo / "compress" / "recipes" / "digits_edge.yaml").read_text()
    assert "```yaml\n" + recipe + "```\n" in readme


@pytest.mark.parametrize(
    "task, teacher, checkpoint",
    [(None, None, None), ("mnist1d", None, None), ("mydata:make_task", "mymodels:big", "big.pt"), (None, "mymodels:big", None)],
)
def test_init_writes_the_template_the_compress_command_runs(task, teacher, checkpoint):
    import yaml

    from compress.starter import chain_recipe, starter_recipe

    text = starter_recipe("mine", "mine.yaml", task=task, teacher=teacher, checkpoint=checkpoint)
    assert yaml.safe_load(text) == chain_recipe("mine", task=task, teacher=teacher, checkpoint=checkpoint)


def test_the_readme_python_example_builds_the_demo_recipe_run(monkeypatch):
    """The README's Python example, run up to `pipeline.run`, builds the same run as the demo recipe."""
    import re
    from pathlib import Path

    from compress.pipeline import Pipeline

    repo = Path(__file__).resolve().parents[2]
    readme = (repo / "README.md").read_text()
    block = re.search(r"```python\nfrom compress import Pipeline\n(.*?)```", readme, re.S).group(0)[len("```python\n") : -3]
    code = block.split("manifest = pipeline.run")[0]
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    ours, recipe = scope["pipeline"].settings(), Pipeline.from_recipe(repo / "compress" / "recipes" / "digits_edge.yaml").settings()
    assert ours == recipe
