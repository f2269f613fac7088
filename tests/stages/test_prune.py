"""The prune stage on every model family: prunes, reloads from its pickle-free checkpoint, exports with
parity; targets that cannot be met are reported, impossible ones and bad layer names are one-line errors."""

import numpy as np
import pytest
import torch

from compress.bench.runners.ort import OrtCpuRunner
from compress.errors import RecipeError
from compress.models.spec import build_model
from compress.pipeline import Pipeline
from compress.stages import Export, Prune, Train

pytestmark = pytest.mark.slow

QUICK = {"warmup": 1, "min_iters": 5, "min_time_s": 0}
FT = {"epochs": 1, "final_epochs": 0}
FAMILIES = [
    ("digits", {"arch": "resnet_cnn", "width": 8, "blocks": [1, 1]}),
    ("digits", {"arch": "mobilenet_v2", "width": 8, "blocks": [1, 1], "head_channels": 16}),
    ("mnist1d", {"arch": "cnn1d", "width": 16}),
    ("digits", {"arch": "mlp", "hidden": [32, 16]}),
    ("digits", {"arch": "transformer", "dim": 16, "heads": 4, "depth": 2}),
]


def _prune_run(tmp_path, task, arch, **prune):
    stages = [Train(name="base", model=arch, epochs=1), Prune(model="base", finetune=FT, timing=QUICK, **prune)]
    return Pipeline([*stages, Export()], task=task).run(tmp_path, quiet=True)


@pytest.mark.parametrize(("task", "arch"), FAMILIES, ids=[a["arch"] for _, a in FAMILIES])
def test_each_family_prunes_reloads_and_exports_with_parity(tmp_path, task, arch):
    manifest = _prune_run(tmp_path, task, arch, target={"kind": "ratio", "value": 0.5}, steps=2)
    result = manifest.find("prune").models["base_pruned"]
    curve = result.prune.curve
    assert [p.step for p in curve] == [0, 1, 2]
    assert curve[-1].params < 0.6 * curve[0].params and curve[-1].channels < curve[0].channels
    assert curve[-1].channels / curve[0].channels == pytest.approx(
        1 - curve[-1].ratio, abs=0.01
    )  # the classifier's outputs are not counted
    assert result.prune.target_met and result.params == curve[-1].params
    assert manifest.records()["base_pruned"].parity.max_abs_diff < 1e-4
    training = result.training  # the fine-tunes of both steps, end to end: the report draws it as a curve
    assert [(h["epoch"], h["finetune"]) for h in training.history] == [(1, 1), (2, 2)]
    assert training.epochs_run == 2 and training.best_epoch == 2 and "val_accuracy" in training.history[-1]

    # a fresh process would rebuild the spec's architecture and load the checkpoint (weights_only)
    from compress.data.builtin import TASKS

    data = TASKS.get(task)()
    record = next(r for r in manifest.find("prune").models.values())
    spec = record.spec.model_copy(update={"checkpoint": str(tmp_path / record.checkpoint)})
    reloaded = build_model(spec, data).eval()
    assert sum(p.numel() for p in reloaded.parameters()) == curve[-1].params
    x = data.example_input(16)
    onnx = OrtCpuRunner(1).load(tmp_path / "export" / "base_pruned.onnx")
    with torch.no_grad():
        assert np.abs(reloaded(x).numpy() - onnx(x.numpy())).max() < 1e-4
    if arch["arch"] == "transformer":
        attention = [m for m in reloaded.modules() if isinstance(m, torch.nn.MultiheadAttention)]
        assert [m.num_heads for m in attention] == [2, 2] and all(m.head_dim == 4 for m in attention)


def test_unreachable_latency_target_says_how_close_it_came(tmp_path):
    from compress.bench.runners import TargetSpec
    from compress.context import RunContext
    from compress.data.builtin import TASKS
    from compress.prune.measure import latency_of
    from compress.stages.prune import QUICK_TIMING

    ctx = RunContext(run_dir=tmp_path, task=TASKS.get("digits")(), target=TargetSpec())
    floor = latency_of(torch.nn.Identity(), ctx, 32, QUICK_TIMING)["p50"]
    arch = {"arch": "resnet_cnn", "width": 8, "blocks": [1, 1]}
    manifest = _prune_run(
        tmp_path / "run", "digits", arch, target={"kind": "latency_ms", "value": 3 * floor}, step_ratio=0.1, max_ratio=0.2
    )
    prune = manifest.find("prune").models["base_pruned"].prune
    assert not prune.target_met
    assert len(prune.curve) == 3  # the unpruned point and two steps of 10%: max_ratio stops it
    assert any("not met: reached" in w and "max_ratio 0.2" in w for w in prune.warnings), prune.warnings


def test_the_latency_verdict_rests_on_the_interleaved_verdict_timing_not_one_step(tmp_path, monkeypatch):
    """Steps take a quick look (3 rounds alternating with the unpruned model); whether the target was met
    is decided on 7 interleaved rounds of the final model against the unpruned one. Here the quick looks
    are noisy-high and the steady one is under."""
    import compress.stages.prune as stage

    seen = []

    def interleaved(models, ctx, batch_size, timing):
        seen.append((len(models), timing.rounds))
        p50 = 0.5 if timing.rounds >= stage.VERDICT_ROUNDS else 2.0  # target 1.0 ms
        return [{"p50": 3.0, "p90": 3.3, "round_p50": [3.0] * timing.rounds}] * (len(models) - 1) + [
            {"p50": p50, "p90": p50 * 1.1, "round_p50": [p50] * timing.rounds}
        ]

    monkeypatch.setattr(stage, "latency_of", lambda *args: {"p50": 0.01, "p90": 0.01})  # the runtime's own overhead
    monkeypatch.setattr(stage, "interleaved", interleaved)
    arch = {"arch": "mlp", "hidden": [32]}
    manifest = _prune_run(tmp_path / "run", "digits", arch, target={"kind": "latency_ms", "value": 1.0}, step_ratio=0.1, max_ratio=0.2)
    prune = manifest.find("prune").models["base_pruned"].prune
    assert len(prune.curve) == 3 and all(p.latency_ms.p50 == 2.0 for p in prune.curve), "the steps saw 2 ms and went on"
    assert prune.target_met and not any("not met" in w for w in prune.warnings), "the verdict saw 0.5 ms"
    assert prune.speedup == 6.0, "the speedup is the median per-round ratio of the verdict's interleaved rounds"
    assert seen[0][0] == 1 and all(n == 2 for n, _ in seen[1:]), "steps after the first are timed beside the unpruned model"
    assert seen[-1] == (2, stage.VERDICT_ROUNDS)


@pytest.mark.parametrize(
    ("arch", "prune", "message"),
    [
        (
            {"arch": "resnet_cnn", "width": 8, "blocks": [1, 1]},
            {"keep": ["layr1"]},
            "keep names layer 'layr1', which the model does not have; did you mean 'layer1'",
        ),
        (
            {"arch": "mlp", "hidden": [16]},
            {"target": {"kind": "params", "value": 5}},
            "target of 5 params is impossible: the classifier alone",
        ),
        ({"arch": "mlp", "hidden": [16]}, {"target": {"kind": "latency_ms", "value": 1e-6}}, "at or below the runtime's own overhead"),
        ({"arch": "mlp", "hidden": [16]}, {"importance": "bn_scale"}, "needs BatchNorm layers"),
    ],
)
def test_impossible_targets_and_bad_names_are_one_line_errors(tmp_path, arch, prune, message):
    with pytest.raises(RecipeError) as err:
        _prune_run(tmp_path, "digits", arch, **prune)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_model_frozen_as_a_teacher_can_be_pruned_twice(tmp_path):
    arch = {"arch": "mlp", "hidden": [32]}
    stages = [Train(name="base", model=arch, epochs=1)]
    stages += [Prune(model="base", name=f"p_{i}", importance=i, finetune=FT, timing=QUICK, steps=1) for i in ("l1", "l2")]
    manifest = Pipeline(stages, task="digits").run(tmp_path, quiet=True)
    assert manifest.find("prune-2").models["p_l2"].prune.target_met


def test_a_speedup_far_below_the_mac_cut_is_flagged_with_the_dominant_nodes(tmp_path, monkeypatch):
    # a tiny MLP: fewer MACs barely move the runtime's fixed per-call cost. The speedup is a clock reading
    # (it was 3.1x for 6x fewer MACs once, under load): fixed here, so the test asserts the rule, not the machine.
    import compress.stages.prune as prune_stage

    monkeypatch.setattr(prune_stage, "speedup", lambda *args, **kwargs: 1.3)
    manifest = _prune_run(tmp_path, "digits", {"arch": "mlp", "hidden": [64, 64]}, target={"kind": "ratio", "value": 0.75}, steps=1)
    prune = manifest.find("prune").models["base_pruned"].prune
    assert prune.mac_reduction > 5
    assert prune.speedup == 1.3
    assert any("measured speedup 1.30x is far below the MAC reduction" in w for w in prune.warnings), prune.warnings
    assert prune.dominant_nodes and abs(sum(n.share for n in prune.dominant_nodes) - 1) < 0.5
    assert prune.dominant_nodes[0].ms is not None and prune.dominant_nodes[0].node


def test_kd_fine_tuning_on_a_regression_task_is_a_one_line_error(tmp_path):
    """The distillation term of kd compares class distributions: on regression it would silently be 0."""
    mlp = Train(name="mlp", model={"arch": "mlp", "hidden": [16]}, epochs=1)
    with pytest.raises(RecipeError) as err:
        Pipeline([mlp, Prune(model="mlp")], task="diabetes").run(tmp_path, quiet=True)
    assert str(err.value) == "prune finetune loss 'kd' needs a classification task; task 'diabetes' is regression; use loss: mse or huber"
    Pipeline([mlp, Prune(model="mlp", finetune={"loss": "mse", "epochs": 1, "final_epochs": 1})], task="diabetes").run(
        tmp_path / "mse", quiet=True
    )
