"""Training resumes from its last finished epoch exactly as if it had never stopped."""

import pytest
import torch

from compress.data.builtin import TASKS
from compress.distill.losses import task_loss
from compress.distill.objective import EmaObjective
from compress.distill.trainer import FitConfig, fit
from compress.models.spec import ModelSpec, build_model
from compress.stages.distill import DistillConfig

SPEC = ModelSpec(arch="mobilenet_v2", width=4, blocks=[1, 1], head_channels=8)
CFG = FitConfig(epochs=4, batch_size=128)


class Crash(Exception):
    pass


def plain(model, x, y):
    return task_loss(model(x), y, "classification")


def ema(model, task):
    cfg = DistillConfig(model=SPEC, teacher="ema", epochs=CFG.epochs, batch_size=CFG.batch_size, temperature=2.0, alpha=0.5)
    return EmaObjective(model, cfg.objective(), decay=cfg.ema_decay, kind="classification", example=task.example_input(2))


def train(task, checkpoint, objective: str, crash_at_step: int | None = None, monkeypatch=None):
    torch.manual_seed(0)
    model = build_model(SPEC, task)
    loss = plain if objective == "plain" else ema(model, task)
    if crash_at_step is not None:
        steps, step = [], torch.optim.AdamW.step

        def counting(self, *args, **kwargs):
            steps.append(1)
            if len(steps) == crash_at_step:
                raise Crash
            return step(self, *args, **kwargs)

        monkeypatch.setattr(torch.optim.AdamW, "step", counting)
    torch.manual_seed(1)  # the augmentation's random stream
    try:
        result = fit(model, task, loss, CFG, seed=0, desc="t", quiet=True, checkpoint=checkpoint)
    finally:
        if monkeypatch is not None:
            monkeypatch.undo()
    return model, result


@pytest.mark.parametrize("objective", ["plain", "ema"])
def test_resumed_training_equals_uninterrupted_training(tmp_path, objective, monkeypatch):
    task = TASKS.get("digits")()
    reference, ref_result = train(task, tmp_path / "a.pt", objective)
    # the checkpoint stays when training ends (the pipeline removes it once the stage is recorded): a stop
    # in between loses no epoch, and training again from it ends at once with the same weights
    again, again_result = train(task, tmp_path / "a.pt", objective)
    assert again_result.epochs_run == ref_result.epochs_run and again_result.history == ref_result.history
    assert all(torch.equal(a, b) for a, b in zip(reference.state_dict().values(), again.state_dict().values(), strict=True))

    steps_per_epoch = ref_result.steps_per_epoch
    with pytest.raises(Crash):
        train(task, tmp_path / "b.pt", objective, crash_at_step=2 * steps_per_epoch + 3, monkeypatch=monkeypatch)  # in the third epoch
    assert (tmp_path / "b.pt").exists()
    resumed, result = train(task, tmp_path / "b.pt", objective)

    assert result.resumed_after_epoch == 2
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert result.history == ref_result.history
    for key, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_a_damaged_checkpoint_starts_training_again(tmp_path):
    task = TASKS.get("digits")()
    path = tmp_path / "state.pt"
    path.write_bytes(b"not a checkpoint")
    _, result = train(task, path, "plain")
    assert result.resumed_after_epoch == 0 and result.epochs_run == CFG.epochs
