"""Every recipe option is validated: a bad value for each key of each stage (and of the nested
feature, schedule, timing, model, task and target settings) is a one-line RecipeError naming the
key. The coverage test fails when a stage gains a key that has no case here."""

import copy
from typing import Any

import pytest
from pydantic import BaseModel

from compress.bench.runners import TargetSpec
from compress.bench.timing import TimingConfig
from compress.config import Acceptance
from compress.data.spec import TaskSpec
from compress.distill.controller import ControllerConfig
from compress.distill.dagger import DaggerConfig
from compress.distill.objective import FeaturePair
from compress.distill.schedules import Schedule
from compress.errors import RecipeError
from compress.pipeline import Pipeline
from compress.recipe import Recipe, parse_recipe
from compress.rl.ppo import PPOConfig
from compress.stages import STAGES
from compress.stages.prune import FinetuneConfig, PruneTarget
from compress.stages.quantize import CalibrationConfig, TuneConfig
from tests.conftest import TINY

FIT = {
    "epochs": (0, "greater than or equal to 1"),
    "batch_size": (0, "greater than or equal to 1"),
    "lr": (float("inf"), "finite number"),
    "weight_decay": (-0.1, "greater than or equal to 0"),
    "patience": (0, "greater than or equal to 1"),
    "grad_clip": (0, "greater than 0"),
    "augment": ("sometimes", "valid boolean"),
}
BAD_NAME = ("../escape", "a name uses letters, digits")

# stage -> key -> (bad value, fragment of the error message)
STAGE_CASES: dict[str, dict[str, tuple[Any, str]]] = {
    "train": {**FIT, "name": BAD_NAME, "model": ({"arch": "resnet"}, "did you mean 'resnet_cnn'")},
    "load": {"name": BAD_NAME, "model": ({"arch": "mlp"}, "needs 'checkpoint'")},
    "distill": {
        **FIT,
        "teacher": ([], "distinct and non-empty"),
        "cache_teacher": ("maybe", "valid boolean"),
        "ema_decay": (1.0, "less than 1"),
        "ensemble": ("median", "'mean', 'weighted' or 'confident'"),
        "teacher_weights": ([1.0], "apply only to ensemble: weighted"),
        "name": BAD_NAME,
        "model": ({"arch": "mlp", "hiden": [4]}, "unknown argument 'hiden'"),
        "loss": ("kld", "unknown distillation loss 'kld'"),
        "temperature": (0, "temperature must be > 0"),
        "alpha": ({"kind": "linear", "start": 0.5, "end": 2}, "alpha must stay within [0, 1]"),
        "features": ([{"student": "layer1"}], "features[0].teacher: required key is missing"),
        "controller": ({"kind": "bandit"}, "'learned' or 'search'"),
        "dagger": ({"episodes": 0}, "greater than or equal to 1"),
        "unlabeled": ("some", "valid boolean"),
    },
    "train_policy": {
        "name": BAD_NAME,
        "model": ({"arch": "mlp", "hiden": [4]}, "unknown argument 'hiden'"),
        "algorithm": ("dqn", "'ppo'"),
        "ppo": ({"timesteps": 0}, "greater than or equal to 1"),
    },
    "export": {
        "models": (["a b"], "a name uses letters, digits"),
        "opset": (9, "greater than or equal to 13"),
        "exporter": ("tvm", "'legacy' or 'dynamo'"),
        "atol": (0, "greater than 0"),
        "min_agreement": (1.5, "less than or equal to 1"),
        "parity_samples": (0, "greater than or equal to 1"),
    },
    "benchmark": {
        "models": ([""], "a name uses letters, digits"),
        "batch_sizes": ([0], "batch sizes must be between 1 and 65536"),
        "split": ("train", "'test' or 'val'"),
        "timing": ({"warmup": -1}, "timing.warmup"),
        "targets": (["ort-gpu"], "unknown benchmark target 'ort-gpu'; did you mean"),
    },
    "report": {"title": (5, "valid string"), "reference": ("a/b", "a name uses letters, digits")},
    "prune": {
        "model": ("nobody", "model 'nobody' is not made by an earlier stage"),
        "name": BAD_NAME,
        "importance": ("l3", "unknown pruning importance 'l3'"),
        "target": ({"kind": "ratio", "value": 1.2}, "below 1"),
        "steps": (0, "greater than or equal to 1"),
        "step_ratio": (1.0, "less than 1"),
        "max_ratio": (0, "greater than 0"),
        "global_pruning": ("both", "valid boolean"),
        "keep": ("head", "valid list"),
        "round_to": (1, "greater than or equal to 2"),
        "head_ratio": (1.0, "less than 1"),
        "finetune": ({"teacher": "nobody"}, "model 'nobody' is not made by an earlier stage"),
        "timing": ({"min_iters": 1}, "timing.min_iters"),
    },
}
STAGE_CASES["quantize"] = {
    "models": (["a/b"], "a name uses letters, digits"),
    "mode": ("qat", "'static' or 'dynamic'"),
    "calibration": ({"samples": 0}, "calibration.samples"),
    "per_channel": ("maybe", "valid boolean"),
    "activations": ("int4", "'uint8' or 'int8'"),
    "exclude_nodes": ("Conv_0", "valid list"),
    "exclude_op_types": ("Gemm", "valid list"),
    "suffix": ("/int8", "should match pattern"),
    "backend": ("openvino", "'ort' or 'inc'"),
    "tune": ({"tolerable_loss": 0}, "tune.tolerable_loss"),
    "weights": ("int4", "'int8' or 'uint8'"),
    "reduce_range": ("maybe", "valid boolean"),
    "min_agreement": (1.5, "less than or equal to 1"),
}
STAGE_CASES["qad"] = {
    **FIT,
    "epochs": (0, "greater than or equal to 1"),
    "model": ("a/b", "a name uses letters, digits"),
    "teacher": ("nobody", "model 'nobody' is not made by an earlier stage"),
    "name": BAD_NAME,
    "loss": ("kld", "unknown distillation loss 'kld'"),
    "temperature": (0, "greater than 0"),
    "alpha": (1.5, "less than or equal to 1"),
    "freeze_after": (-1, "greater than or equal to 0"),
    "momentum": (0, "greater than 0"),
    "calibration_samples": (0, "greater than or equal to 1"),
    "opset": (11, "greater than or equal to 13"),
    "reduce_range": ("maybe", "valid boolean"),
    "unlabeled": ("some", "valid boolean"),
    "min_agreement": (-0.1, "greater than or equal to 0"),
}
TUNE_CASES = {
    "tolerable_loss": (-0.1, "greater than 0"),
    "relative": ("maybe", "valid boolean"),
    "max_trials": (0, "greater than or equal to 1"),
    "max_float_layers": (0, "greater than or equal to 1"),
}
CALIBRATION_CASES = {
    "method": ("distribution", "'minmax', 'entropy' or 'percentile'"),
    "samples": (0, "greater than or equal to 1"),
    "split": ("test", "'train' or 'val'"),
    "file": (3, "valid string"),
}
PRUNE_TARGET_CASES = {
    "kind": ("flops", "'ratio', 'params', 'macs' or 'latency_ms'"),
    "value": (0, "greater than 0"),
    "batch_size": (0, "greater than or equal to 1"),
}
FINETUNE_CASES = {
    **FIT,
    "epochs": (-1, "greater than or equal to 0"),  # 0: no fine-tuning between steps
    "final_epochs": (-1, "greater than or equal to 0"),
    "teacher": ("a b", "a name uses letters, digits"),
    "loss": ("kld", "unknown distillation loss 'kld'"),
    "temperature": (0, "greater than 0"),
    "alpha": (2, "less than or equal to 1"),
    "features": ([{"student": "layer1", "teacher": "layer1", "loss": "hnt"}], "unknown feature loss 'hnt'"),
    "unlabeled": ("some", "valid boolean"),
}

# nested settings, set inside a distill stage's feature, schedule, or a benchmark's timing
FEATURE_CASES = {
    "student": (None, "valid string"),
    "teacher": (3, "valid string"),
    "loss": ("hnt", "unknown feature loss 'hnt'; did you mean 'hint'?"),
    "weight": ({"kind": "linear", "start": 1}, "a linear schedule needs 'end'"),
    "channel_attention": ("yes please", "valid boolean"),
}
SCHEDULE_CASES = {
    "kind": ("exp", "'constant', 'linear', 'cosine', 'step' or 'adaptive'"),
    "start": ("high", "valid number"),
    "end": ("low", "valid number"),
    "steps": (1, "greater than or equal to 2"),
}
TIMING_CASES = {
    "warmup": (-1, "greater than or equal to 0"),
    "min_iters": (2, "greater than or equal to 5"),
    "min_time_s": (-1, "greater than or equal to 0"),
    "max_iters": (1, "greater than or equal to 5"),
    "warmup_time_s": (-1, "greater than or equal to 0"),
    "rounds": (0, "greater than or equal to 1"),
    "fresh_sessions": ("sometimes", "valid boolean"),
    "noise_threshold": (0, "greater than 0"),
}
CONTROLLER_CASES = {
    "kind": ("bandit", "'learned' or 'search'"),
    "temperature": ((4, 2), "0 < low < high"),
    "alpha": ((0.5, 1.5), "0 <= low < high <= 1"),
    "choose_feature": ("maybe", "valid boolean"),
    "reward": ("accuracy", "'gain' or 'level'"),
    "agreement_weight": (-1, "greater than or equal to 0"),
    "lr": (0, "greater than 0"),
    "exploration": (0, "greater than 0"),
    "discount": (1.0, "less than 1"),
    "trials": (1, "greater than or equal to 2"),
}
PPO_CASES = {
    "timesteps": (0, "greater than or equal to 1"),
    "n_envs": (0, "greater than or equal to 1"),
    "n_steps": (1, "greater than or equal to 2"),
    "batch_size": (1, "greater than or equal to 2"),
    "n_epochs": (0, "greater than or equal to 1"),
    "learning_rate": (0, "greater than 0"),
    "gamma": (1.5, "less than or equal to 1"),
    "gae_lambda": (0, "greater than 0"),
    "clip_range": (0, "greater than 0"),
    "ent_coef": (-1, "greater than or equal to 0"),
    "eval_every": (0, "greater than or equal to 1"),
}
TOP_CASES = {
    "name": ("my run", "a name uses letters, digits"),
    "seed": ("zero", "valid integer"),
    "task": ({"name": "digitz"}, "unknown task 'digitz'"),
    "target": ({"name": "gpu"}, "unknown benchmark target 'gpu'"),
    "stages": ([], "at least 1 item"),
    "acceptance": ({"min_speedups": 2}, "unknown key; did you mean 'min_speedup'"),
}
ACCEPTANCE_CASES = {
    "reference": ("a b", "a name uses letters, digits"),
    "model": ("../x", "a name uses letters, digits"),
    "max_metric_drop": (-0.01, "greater than or equal to 0"),
    "min_speedup": ({32: -1}, "-1 is not a positive number"),
    "min_param_reduction": (0, "greater than 0"),
    "min_size_reduction": (True, "true is not a number"),
    "target": (3, "valid string"),
}
TASK_CASES = {
    "name": ("digitz", "did you mean 'digits'"),
    "factory": ("no_colon", "module:function"),
    "env": ("CartPol-v1", "did you mean 'CartPole-v1'"),
    "options": ({"root": "x"}, "'options' apply to 'env' and 'factory' tasks"),
}
TARGET_CASES = {
    "name": ("openvino", "did you mean 'openvino-cpu'"),
    "threads": (0, "greater than or equal to 1"),
    "optimization": ("max", "'all', 'extended', 'basic' or 'disabled'"),
    "precision": ("int8", "'f32', 'bf16' or 'f16'"),
    "io_binding": ("maybe", "valid boolean"),
    "cpu": ("avx2", "'auto', 'x86-avx2', 'x86-avx512', 'x86-vnni' or 'arm64'"),
}


def _message(data: dict[str, Any]) -> str:
    with pytest.raises(RecipeError) as err:
        _recipe, stages = parse_recipe(data)
        Pipeline(stages, task=_recipe.task, name=_recipe.name, seed=_recipe.seed, target=_recipe.target)
    message = str(err.value)
    assert "\n" not in message, "errors are one line"
    return message


def _with_stage(stage: str, config: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(TINY)
    base = {
        "train": TINY["stages"][0]["train"],
        "load": {"model": {"arch": "mlp", "checkpoint": "teacher.pt"}, "name": "other"},
        "distill": TINY["stages"][1]["distill"],
        "prune": {"model": "student", "name": "pruned"},
        "qad": {"model": "student"},
    }.get(stage, {})
    data["stages"].append({stage: {**copy.deepcopy(base), **config}})
    if stage in ("train", "distill") and "name" not in config:
        data["stages"][-1][stage]["name"] = f"{stage}_model"
    return data


def test_every_option_has_a_case():
    for stage, cls in STAGES.items():
        missing = set(cls.Config.model_fields) - set(STAGE_CASES.get(stage, {}))
        assert not missing, f"stage {stage!r}: add validation cases for {sorted(missing)}"
    for model, cases in [
        (FeaturePair, FEATURE_CASES),
        (Schedule, SCHEDULE_CASES),
        (TimingConfig, TIMING_CASES),
        (Recipe, TOP_CASES),
        (Acceptance, ACCEPTANCE_CASES),
        (TaskSpec, TASK_CASES),
        (TargetSpec, TARGET_CASES),
        (PruneTarget, PRUNE_TARGET_CASES),
        (FinetuneConfig, FINETUNE_CASES),
        (CalibrationConfig, CALIBRATION_CASES),
        (TuneConfig, TUNE_CASES),
        (ControllerConfig, CONTROLLER_CASES),
        (PPOConfig, PPO_CASES),
        (DaggerConfig, {"episodes": None}),
    ]:
        assert set(_fields(model)) == set(cases), model.__name__


def _fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


@pytest.mark.parametrize(("stage", "key"), [(s, k) for s, cases in STAGE_CASES.items() for k in cases])
def test_bad_stage_option(stage, key):
    value, fragment = STAGE_CASES[stage][key]
    message = _message(_with_stage(stage, {key: value}))
    assert f".{stage}.{key}" in message or f"stages[5] ({stage})" in message, message
    assert fragment in message, message


@pytest.mark.parametrize("key", list(FEATURE_CASES))
def test_bad_feature_option(key):
    value, fragment = FEATURE_CASES[key]
    pair = {"student": "layer1", "teacher": "layer1", "loss": "hint", key: value}
    message = _message(_with_stage("distill", {"features": [pair]}))
    assert f"distill.features[0].{key}" in message and fragment in message, message


@pytest.mark.parametrize("key", list(SCHEDULE_CASES))
def test_bad_schedule_option(key):
    value, fragment = SCHEDULE_CASES[key]
    schedule = {"kind": "step", "start": 8.0, "end": 1.0, key: value}
    message = _message(_with_stage("distill", {"temperature": schedule}))
    assert "distill.temperature" in message and fragment in message, message


@pytest.mark.parametrize("key", list(CONTROLLER_CASES))
def test_bad_controller_option(key):
    value, fragment = CONTROLLER_CASES[key]
    message = _message(_with_stage("distill", {"controller": {key: value}}))
    assert "distill.controller" in message and fragment in message, message


@pytest.mark.parametrize("key", list(PPO_CASES))
def test_bad_ppo_option(key):
    value, fragment = PPO_CASES[key]
    message = _message(_with_stage("train_policy", {"ppo": {key: value}}))
    assert f"train_policy.ppo.{key}" in message and fragment in message, message


@pytest.mark.parametrize(
    ("options", "fragment"),
    [({"episodes": 3}, "unknown option 'episodes'"), ({"test_episodes": 0}, "whole number >= 1"), ({"expert": 3}, "model name")],
)
def test_bad_policy_task_option(options, fragment):
    data = copy.deepcopy(TINY)
    data["task"] = {"env": "CartPole-v1", "options": options}
    message = _message(data)
    assert ": task: " in message and fragment in message, message


@pytest.mark.parametrize("key", list(TIMING_CASES))
def test_bad_timing_option(key):
    value, fragment = TIMING_CASES[key]
    message = _message(_with_stage("benchmark", {"timing": {key: value}}))
    assert f"benchmark.timing.{key}" in message and fragment in message, message


@pytest.mark.parametrize(
    ("section", "key"), [("top", k) for k in TOP_CASES] + [("task", k) for k in TASK_CASES] + [("target", k) for k in TARGET_CASES]
)
def test_bad_run_setting(section, key):
    data = copy.deepcopy(TINY)
    cases = {"top": TOP_CASES, "task": TASK_CASES, "target": TARGET_CASES}[section]
    value, fragment = cases[key]
    if section == "top":
        data[key] = value
        where = key
    else:
        data[section] = {**({"name": "digits"} if section == "task" and key == "options" else {}), key: value}
        where = section
    message = _message(data)
    assert message.startswith(f"{where}") or f" {where}" in message or f"{where}." in message, message
    assert fragment in message, message


def test_good_values_of_every_kind_are_accepted():
    data = copy.deepcopy(TINY)
    data["stages"][1]["distill"] |= {
        "temperature": {"kind": "step", "start": 8, "end": 1, "steps": 3},
        "alpha": {"kind": "adaptive", "start": 0.9, "end": 0.3},
        "features": [{"student": "layer1", "teacher": "layer1", "loss": "hint", "weight": {"kind": "cosine", "start": 1, "end": 0}}],
        "grad_clip": 1.0,
        "patience": 5,
        "cache_teacher": False,
    }
    _recipe, stages = parse_recipe(data)
    assert stages[1].cfg.temperature.at(0.99) == pytest.approx(1.0)


@pytest.mark.parametrize(("section", "key"), [("target", k) for k in PRUNE_TARGET_CASES] + [("finetune", k) for k in FINETUNE_CASES])
def test_bad_prune_option(section, key):
    cases = PRUNE_TARGET_CASES if section == "target" else FINETUNE_CASES
    value, fragment = cases[key]
    message = _message(_with_stage("prune", {section: {key: value}}))
    assert f"prune.{section}.{key}" in message or "(prune)" in message, message
    assert fragment in message, message


@pytest.mark.parametrize("key", list(CALIBRATION_CASES))
def test_bad_calibration_option(key):
    value, fragment = CALIBRATION_CASES[key]
    message = _message(_with_stage("quantize", {"calibration": {key: value}}))
    assert f"quantize.calibration.{key}" in message and fragment in message, message


@pytest.mark.parametrize("key", list(ACCEPTANCE_CASES))
def test_bad_acceptance_setting(key):
    value, fragment = ACCEPTANCE_CASES[key]
    data = {**copy.deepcopy(TINY), "acceptance": {key: value}}
    message = _message(data)
    assert message.startswith("<recipe>: acceptance") and key in message and fragment in message, message


@pytest.mark.parametrize("key", list(TUNE_CASES))
def test_bad_tune_option(key):
    value, fragment = TUNE_CASES[key]
    message = _message(_with_stage("quantize", {"tune": {"tolerable_loss": 0.01, key: value}}))
    assert f"quantize.tune.{key}" in message and fragment in message, message


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"mode": "dynamic", "tune": {"tolerable_loss": 0.01}}, "tune applies to mode: static"),
        ({"backend": "inc", "exclude_nodes": ["/Conv"]}, "backend inc does static quantization of the whole model"),
        ({"backend": "inc", "calibration": {"method": "percentile"}}, "backend inc calibrates with minmax or entropy"),
    ],
)
def test_quantize_cross_checks(config, fragment):
    message = _message(_with_stage("quantize", config))
    assert fragment in message, message


@pytest.mark.parametrize(
    ("acceptance", "keep", "fragment"),
    [
        ({"min_speedup": {1: 2, 64: 3}}, None, "acceptance.min_speedup: batch 64 is not timed (the benchmark times 1, 4)"),
        ({"max_metric_drop": 0.01}, ["train", "benchmark"], "acceptance: the stages make only teacher: nothing to compare"),
    ],
)
def test_gates_that_could_never_be_checked_are_refused_before_any_work(acceptance, keep, fragment):
    data = {**copy.deepcopy(TINY), "acceptance": acceptance}
    if keep:
        data["stages"] = [s for s in data["stages"] if next(iter(s)) in keep or next(iter(s)) == "export"]
    recipe, stages = parse_recipe(data)
    with pytest.raises(RecipeError) as err:
        Pipeline(stages, task=recipe.task, name=recipe.name, seed=recipe.seed, target=recipe.target, acceptance=recipe.acceptance)
    assert fragment in str(err.value) and "\n" not in str(err.value), str(err.value)
