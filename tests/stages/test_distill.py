"""The distill stage with feature terms and schedules, on real data, through export."""

import itertools

import pytest
import torch

from compress.bench.runners import TargetSpec
from compress.context import RunContext
from compress.distill.schedules import cosine
from compress.errors import RecipeError
from compress.pipeline import Pipeline
from compress.stages import Distill, Export, Train

pytestmark = pytest.mark.slow

TEACHER = Train(name="teacher", model={"arch": "resnet_cnn", "width": 8, "blocks": [1, 1]}, epochs=2)
STUDENT = {"arch": "mobilenet_v2", "width": 4, "blocks": [1, 1], "head_channels": 16}


def _run_distill(tmp_path, **distill_kwargs):
    """Train the teacher, then distill, on one context; returns (ctx, teacher forward calls during distill)."""
    from compress.data.builtin import TASKS

    ctx = RunContext(run_dir=tmp_path, task=TASKS.get("digits")(), target=TargetSpec(), quiet=True)
    ctx.stage_id, ctx.stage_dir = "train", tmp_path / "train"
    ctx.stage_dir.mkdir(parents=True)
    torch.manual_seed(0)  # both runs must distill from the same teacher
    ctx = TEACHER.run(ctx, TEACHER.cfg)
    calls = []
    handle = ctx.module("teacher").register_forward_hook(lambda m, a, o: calls.append(len(a[0])))
    distill = Distill(model=STUDENT, epochs=2, **distill_kwargs)
    ctx.stage_id, ctx.stage_dir = "distill", tmp_path / "distill"
    ctx.stage_dir.mkdir()
    torch.manual_seed(0)
    ctx = distill.run(ctx, distill.cfg)
    handle.remove()
    return ctx, calls


def test_feature_terms_and_schedules_train_and_export(tmp_path):
    distill = Distill(
        model=STUDENT,
        epochs=3,
        temperature={"kind": "cosine", "start": 8, "end": 1},
        alpha={"kind": "adaptive", "start": 0.9, "end": 0.3},
        grad_clip=5.0,
        features=[
            {"student": "layer1", "teacher": "layer2", "loss": "hint", "channel_attention": True},
            {"student": "layer2", "teacher": "layer1", "loss": "attention", "weight": {"kind": "linear", "start": 10, "end": 0}},
            {"student": "head.1", "teacher": "head.1", "loss": "rkd_distance"},
            {"student": "head.1", "teacher": "head.1", "loss": "rkd_angle", "weight": 2.0},
        ],
    )
    manifest = Pipeline([TEACHER, distill, Export()], task="digits").run(tmp_path, quiet=True)
    history = manifest.records()["student"].training.history
    assert [h["temperature"] for h in history] == pytest.approx([cosine(p, 8, 1) for p in (0, 1 / 3, 2 / 3)])
    assert [h["weight_1_attention"] for h in history] == pytest.approx([10, 10 * 2 / 3, 10 / 3])
    assert history[0]["alpha"] == 0.9 and all(0.3 - 1e-9 <= h["alpha"] <= 0.9 + 1e-9 for h in history)
    assert history[0]["weight_3_rkd_angle"] == 2.0
    state = torch.load(tmp_path / "distill" / "student.pt", weights_only=True)
    assert not any(k.startswith("proj") for k in state)  # projectors are training aids, not part of the student
    assert manifest.records()["student"].parity.max_abs_diff < 1e-4


def test_hooks_are_gone_after_the_stage(tmp_path):
    ctx, _ = _run_distill(tmp_path, features=[{"student": "layer1", "teacher": "layer1", "loss": "hint"}])
    for name in ("teacher", "student"):  # the in-memory modules that export would use next
        assert all(not m._forward_hooks for m in ctx.module(name).modules())


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ({"student": "layer9", "teacher": "layer1", "loss": "hint"}, "student model has no layer 'layer9'"),
        ({"student": "layer1", "teacher": "head.2", "loss": "attention"}, "attention transfer needs spatial features"),
        ({"student": "layer1", "teacher": "head.1", "loss": "hint"}, "cannot match a student feature of shape"),
    ],
)
def test_bad_feature_pairs_are_one_line_errors(tmp_path, pair, message):
    pipeline = Pipeline([TEACHER, Distill(model=STUDENT, epochs=1, features=[pair])], task="digits")
    with pytest.raises(RecipeError, match=message) as err:
        pipeline.run(tmp_path, quiet=True)
    assert "\n" not in str(err.value)


def test_config_checks_for_schedules_and_losses():
    with pytest.raises(ValueError, match="temperature cannot be adaptive"):
        Distill(model=STUDENT, temperature={"kind": "adaptive", "start": 4, "end": 1})
    with pytest.raises(ValueError, match="temperature must be > 0"):
        Distill(model=STUDENT, temperature={"kind": "linear", "start": 4, "end": 0})
    with pytest.raises(ValueError, match="alpha must stay within"):
        Distill(model=STUDENT, alpha={"kind": "linear", "start": 0.5, "end": 1.5})
    with pytest.raises(ValueError, match="unknown feature loss 'hints'; did you mean 'hint'"):
        Distill(model=STUDENT, features=[{"student": "a", "teacher": "b", "loss": "hints"}])


def test_multi_teacher_ensemble_distills(tmp_path):
    second = Train(name="teacher_b", model={"arch": "mlp", "hidden": [64]}, epochs=2)
    distill = Distill(teacher=["teacher", "teacher_b"], ensemble="weighted", teacher_weights=[2, 1], model=STUDENT, epochs=2)
    manifest = Pipeline([TEACHER, second, distill], task="digits").run(tmp_path, quiet=True)
    assert manifest.find("distill").inputs.keys() >= {"train/teacher.pt", "train-2/teacher_b.pt"}
    assert manifest.find("distill").models["student"].training.epochs_run == 2


def test_ensemble_config_checks(write_recipe):
    with pytest.raises(ValueError, match="needs teacher_weights: one positive number for each of"):
        Distill(teacher=["a", "b"], ensemble="weighted", model=STUDENT)
    with pytest.raises(ValueError, match="teacher_weights apply only to ensemble: weighted"):
        Distill(teacher=["a", "b"], teacher_weights=[1, 2], model=STUDENT)
    with pytest.raises(ValueError, match="must be distinct"):
        Distill(teacher=["a", "a"], model=STUDENT)
    with pytest.raises(RecipeError, match="model 'b' is not made by an earlier stage"):
        Pipeline([TEACHER, Distill(teacher=["teacher", "b"], model=STUDENT)], task="digits")


def test_ema_self_distillation_needs_no_teacher_and_tracks_the_student(tmp_path):
    mlp = {"arch": "mlp", "hidden": [32]}
    distill = Distill(teacher="ema", ema_decay=0.9, model=mlp, epochs=5, alpha={"kind": "linear", "start": 0.0, "end": 0.5})
    assert distill.requires() == []
    manifest = Pipeline([distill, Export()], task="digits").run(tmp_path, quiet=True)
    result = manifest.find("distill").models["student"]
    assert result.training.params_vs_teacher == 1.0  # the teacher is the student's own average
    assert result.score("accuracy", runtime="torch").value > 0.7  # it learns (chance is 0.1)
    assert manifest.records()["student"].parity.max_abs_diff < 1e-4


def test_regression_self_distillation_with_features_and_a_dynamic_weight(tmp_path):
    """diabetes: output-level (Huber) plus hidden-layer self-distillation from the EMA, with an adaptive
    weight that follows how far the average leads the student on validation."""
    dynamic = {"kind": "adaptive", "start": 0.7, "end": 0.0}
    distill = Distill(
        teacher="ema",
        loss="huber",
        model={"arch": "mlp", "hidden": [32, 16]},
        epochs=12,
        batch_size=32,
        ema_decay=0.9,
        alpha=dynamic,
        features=[{"student": "layer1", "teacher": "layer1", "loss": "hint", "weight": dynamic}],
    )
    manifest = Pipeline([distill], task="diabetes").run(tmp_path, quiet=True)
    history = manifest.records()["student"].training.history
    assert all("teacher_val_mse" in h for h in history)
    alphas = [h["alpha"] for h in history]
    assert alphas[0] == 0.0  # nothing measured yet, and the average starts as untrained as the student
    assert all(0.0 <= a <= 0.7 for a in alphas) and max(alphas) == 0.7 and len(set(alphas)) > 2, alphas
    for h, later in itertools.pairwise(history):
        lead = h["val_mse"] - h["teacher_val_mse"]  # > 0: the average is ahead
        if lead <= 0:
            assert later["alpha"] == 0.0, "no pull towards an average that is behind the student"
    assert [h["weight_0_hint"] for h in history] == alphas
    assert manifest.records()["student"].score("mse", runtime="torch").value < 1.0  # better than predicting the mean


def test_ema_teacher_follows_the_average_of_the_student():
    from compress.distill.objective import EmaObjective
    from compress.stages.distill import DistillConfig

    student = torch.nn.Sequential(torch.nn.Linear(3, 2))
    cfg = DistillConfig(teacher="ema", ema_decay=0.5, model={"arch": "mlp"})
    objective = EmaObjective(student, cfg.objective(), decay=cfg.ema_decay, kind="classification", example=torch.randn(2, 3))
    teacher = objective.teachers[0]
    before = teacher[0].weight.detach().clone()
    with torch.no_grad():
        student[0].weight.add_(1.0)
    objective.after_step(student)  # first update copies, as torch's AveragedModel does
    objective.after_step(student)  # then: 0.5 * average + 0.5 * student = the same weights
    assert torch.allclose(teacher[0].weight, student[0].weight)
    with torch.no_grad():
        student[0].weight.add_(2.0)
    objective.after_step(student)
    assert torch.allclose(teacher[0].weight, student[0].weight - 1.0)  # halfway between
    assert not torch.allclose(before, teacher[0].weight)


def test_born_again_and_assistant_chains_are_chained_stages(tmp_path):
    assistant = Distill(teacher="teacher", name="assistant", model={"arch": "mobilenet_v2", "width": 6, "blocks": [1, 1]}, epochs=1)
    student = Distill(teacher="assistant", name="student", model=STUDENT, epochs=1)
    again = Distill(teacher="student", name="student_gen2", model=STUDENT, epochs=1)  # born-again: same architecture
    manifest = Pipeline([TEACHER, assistant, student, again], task="digits").run(tmp_path, quiet=True)
    assert manifest.find("distill-2").inputs.keys() >= {"distill/assistant.pt"}
    assert manifest.records()["student_gen2"].training.params_vs_teacher == 1.0


def test_ema_cannot_join_an_ensemble():
    with pytest.raises(ValueError, match="cannot be part of an ensemble"):
        Distill(teacher=["ema", "teacher"], model=STUDENT)


def test_cached_teacher_runs_once_per_sample_and_trains_the_same(tmp_path):
    features = [{"student": "layer1", "teacher": "layer1", "loss": "hint"}]
    cached, cached_calls = _run_distill(tmp_path / "c", augment=False, features=features)
    plain, plain_calls = _run_distill(tmp_path / "p", augment=False, cache_teacher=False, features=features)
    n_train, n_val = len(cached.task.train), len(cached.task.val)  # the teacher is scored once on val (the reference)
    assert sum(cached_calls) == n_train + n_val + 2  # every sample once, plus the 2-sample shape probe
    assert sum(plain_calls) == 2 * n_train + n_val + 2  # every sample in each of the 2 epochs
    assert cached.record("student").training.teacher_cache is True and plain.record("student").training.teacher_cache is False
    a, b = cached.module("student").state_dict(), plain.module("student").state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def test_cache_is_off_by_default_with_augmentation_and_refused_when_forced(tmp_path):
    ctx, calls = _run_distill(tmp_path / "a")  # digits augments its training inputs
    assert ctx.record("student").training.teacher_cache is False and sum(calls) == 2 * len(ctx.task.train) + len(ctx.task.val)
    with pytest.raises(RecipeError, match="cache_teacher is on but training inputs are augmented"):
        _run_distill(tmp_path / "b", cache_teacher=True)


def test_unlabeled_inputs_join_the_training_set_and_a_task_without_them_is_refused(tmp_path, caplog):
    """mnist1d's pool of 20,000 unlabeled inputs joins its 3,600 training samples; digits has no pool:
    refused before the student trains."""
    from compress.errors import DataError

    teacher = Train(name="teacher", model={"arch": "cnn1d", "width": 8}, epochs=1)
    student = Distill(name="student", model={"arch": "cnn1d", "width": 4}, epochs=1, unlabeled=True)
    with caplog.at_level("INFO", logger="compress"):
        manifest = Pipeline([teacher, student], task="mnist1d", seed=0).run(tmp_path / "m", quiet=True)
    assert "student: 20,000 unlabeled inputs join the 3,600 training samples" in caplog.text
    assert manifest.model("student").training.history[0]["epoch"] == 1
    refused = Pipeline([TEACHER, Distill(name="s", model=STUDENT, epochs=1, unlabeled=True)], task="digits")
    with pytest.raises(DataError, match="task 'digits' has no unlabeled inputs"):
        refused.run(tmp_path / "d", quiet=True)
    assert not list((tmp_path / "d").rglob("s.pt"))


def test_a_student_no_smaller_than_its_teacher_is_warned_about_before_training(tmp_path, caplog):
    big = Distill(name="big", model={"arch": "resnet_cnn", "width": 16, "blocks": [1, 1]}, epochs=1)
    with caplog.at_level("INFO", logger="compress"):
        Pipeline([TEACHER, big], task="digits", seed=0).run(tmp_path, quiet=True)
    warned = [r.getMessage() for r in caplog.records if "warning: student 'big'" in r.getMessage()]
    assert len(warned) == 1 and "its teacher's 5,122: distilling will not make the model smaller" in warned[0], caplog.text
    assert "warning: student" not in caplog.text.replace(warned[0], "")
