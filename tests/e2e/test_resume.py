"""Resume reuses a stage only when its config, the run settings and its input files are unchanged."""

import json

import pytest

from compress.errors import ArtifactError
from compress.pipeline import Pipeline
from compress.stages import Distill, Export, Train

pytestmark = pytest.mark.slow

TEACHER = {"arch": "mlp", "hidden": [32]}
STUDENT = {"arch": "mlp", "hidden": [8]}


def pipeline(temperature=4.0, teacher_epochs=2, seed=0):
    stages = [
        Train(name="teacher", model=TEACHER, epochs=teacher_epochs),
        Distill(teacher="teacher", name="student", model=STUDENT, epochs=2, temperature=temperature),
        Export(),
    ]
    return Pipeline(stages, task="digits", name="resume", seed=seed)


def statuses(manifest):
    return [(s.id, s.status) for s in manifest.stages]


def test_unchanged_run_is_fully_reused_and_training_is_deterministic(tmp_path):
    first = pipeline().run(tmp_path / "a", quiet=True)
    again = pipeline().run(tmp_path / "a", resume=True, quiet=True)
    assert statuses(again) == [("train", "reused"), ("distill", "reused"), ("export", "reused")]
    other = pipeline().run(tmp_path / "b", quiet=True)  # same seed, fresh folder: same weights
    assert first.find("distill").outputs["distill/student.pt"] == other.find("distill").outputs["distill/student.pt"]


def test_changed_config_reruns_that_stage_and_what_depends_on_it(tmp_path):
    pipeline().run(tmp_path, quiet=True)
    changed = pipeline(temperature=2.0).run(tmp_path, resume=True, quiet=True)
    assert statuses(changed) == [("train", "reused"), ("distill", "done"), ("export", "done")]
    upstream = pipeline(temperature=2.0, teacher_epochs=3).run(tmp_path, resume=True, quiet=True)
    assert statuses(upstream) == [("train", "done"), ("distill", "done"), ("export", "done")]
    reseeded = pipeline(temperature=2.0, teacher_epochs=3, seed=1).run(tmp_path, resume=True, quiet=True)
    assert all(status == "done" for _, status in statuses(reseeded))


def test_a_damaged_output_is_not_trusted(tmp_path):
    pipeline().run(tmp_path, quiet=True)
    (tmp_path / "distill" / "student.pt").write_bytes(b"half-written")
    resumed = pipeline().run(tmp_path, resume=True, quiet=True)
    assert statuses(resumed) == [("train", "reused"), ("distill", "done"), ("export", "reused")]  # same weights again


def test_existing_folders_are_protected(tmp_path):
    pipeline().run(tmp_path / "run", quiet=True)
    with pytest.raises(ArtifactError, match="already holds a run"):
        pipeline().run(tmp_path / "run", quiet=True)
    overwritten = pipeline().run(tmp_path / "run", overwrite=True, quiet=True)
    assert all(s.status == "done" for s in overwritten.stages)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(ArtifactError, match="not an edge-compress run folder"):
        pipeline().run(tmp_path / "mine", overwrite=True, quiet=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="is not an edge-compress manifest; nothing was deleted"):
        pipeline().run(tmp_path / "broken", overwrite=True, quiet=True)
    assert (tmp_path / "broken" / "manifest.json").read_text() == "{not json"
    with pytest.raises(ArtifactError, match="not a readable edge-compress manifest"):
        pipeline().run(tmp_path / "broken", resume=True, quiet=True)


class Stop(BaseException):
    """A stop (kill, power cut) at a chosen moment, simulated in-process."""


def _stop_at_save(monkeypatch, call: int) -> None:
    """Make the pipeline's `call`-th manifest write (1 = the first) stop the process instead."""
    import compress.rundir

    real, calls = compress.rundir.save_manifest, []

    def save(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise Stop
        real(*args, **kwargs)

    monkeypatch.setattr(compress.rundir, "save_manifest", save)


def test_a_stop_between_a_finished_stage_and_the_manifest_loses_nothing(tmp_path, tiny_recipe, write_recipe, monkeypatch):
    tiny_recipe["stages"] = tiny_recipe["stages"][:2]
    recipe = write_recipe(tiny_recipe)
    _stop_at_save(monkeypatch, 3)  # 1: the empty manifest, 2: after train, 3: after distill
    with pytest.raises(Stop):
        Pipeline.from_recipe(recipe).run(tmp_path / "run", quiet=True)
    assert (tmp_path / "run" / "distill" / ".stage.json").is_file(), "the finished stage's own record is written first"
    monkeypatch.undo()
    manifest = Pipeline.from_recipe(recipe).run(tmp_path / "run", resume=True, quiet=True)
    assert statuses(manifest) == [("train", "reused"), ("distill", "reused")], "nothing is trained again"
    assert list(manifest.find("distill").outputs) == ["distill/student.pt"] and not (tmp_path / "run" / "distill" / ".work").exists()


def test_a_stop_before_a_finished_stage_is_recorded_loses_no_epoch(tmp_path, tiny_recipe, write_recipe, monkeypatch):
    import compress.rundir

    tiny_recipe["stages"] = tiny_recipe["stages"][:2]
    recipe = write_recipe(tiny_recipe)
    real = compress.rundir.record_stage

    def record(run_dir, stage_record):
        if stage_record.id == "distill":
            raise Stop
        real(run_dir, stage_record)

    monkeypatch.setattr(compress.rundir, "record_stage", record)
    with pytest.raises(Stop):
        Pipeline.from_recipe(recipe).run(tmp_path / "run", quiet=True)
    assert (tmp_path / "run" / "distill" / ".work" / "train_state.pt").is_file(), "the finished training's state is kept"
    monkeypatch.undo()
    manifest = Pipeline.from_recipe(recipe).run(tmp_path / "run", resume=True, quiet=True)
    assert statuses(manifest) == [("train", "reused"), ("distill", "done")]
    assert manifest.find("distill").models["student"].training.resumed_after_epoch == 3, "all 3 epochs came back, none was trained again"


@pytest.mark.parametrize("damage", ["truncated", "garbage", "deleted"])
def test_a_damaged_manifest_is_rebuilt_from_the_stage_folders(tmp_path, damage, caplog):
    run = tmp_path / "run"
    first = pipeline().run(run, quiet=True)
    path = run / "manifest.json"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\xff" * 100)
    else:
        path.unlink()
    with pytest.raises(ArtifactError):
        pipeline().run(run, quiet=True)  # without --resume the folder is still protected
    again = pipeline().run(run, resume=True, quiet=True)
    assert statuses(again) == [("train", "reused"), ("distill", "reused"), ("export", "reused")]
    assert [s.outputs for s in again.stages] == [s.outputs for s in first.stages]
    assert json.loads(path.read_text())["stages"][2]["id"] == "export", "the manifest is whole again"
    assert damage == "deleted" or "rebuilt it from the records of train, distill, export" in caplog.text


def test_a_rebuilt_run_reruns_what_is_no_longer_intact(tmp_path):
    run = tmp_path / "run"
    pipeline().run(run, quiet=True)
    (run / "manifest.json").write_text("{")
    (run / "distill" / "student.pt").write_bytes(b"changed")
    again = pipeline().run(run, resume=True, quiet=True)
    # distill reruns; training is deterministic, so its student has the old bytes and export's inputs are unchanged
    assert statuses(again) == [("train", "reused"), ("distill", "done"), ("export", "reused")]
    assert (run / "distill" / "student.pt").read_bytes() != b"changed"


def test_a_stop_during_the_resume_sweep_forgets_no_finished_stage(tmp_path, tiny_recipe, write_recipe, monkeypatch):
    tiny_recipe["stages"] = tiny_recipe["stages"][:3]
    recipe = write_recipe(tiny_recipe)
    Pipeline.from_recipe(recipe).run(tmp_path / "run", quiet=True)
    _stop_at_save(monkeypatch, 2)  # after the first stage has been found reusable
    with pytest.raises(Stop):
        Pipeline.from_recipe(recipe).run(tmp_path / "run", resume=True, quiet=True)
    saved = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [s["id"] for s in saved["stages"]] == ["train", "distill", "export"]
    monkeypatch.undo()
    again = Pipeline.from_recipe(recipe).run(tmp_path / "run", resume=True, quiet=True)
    assert [s.status for s in again.stages] == ["reused"] * 3


def test_stray_temporary_files_are_never_outputs_and_are_swept(tmp_path):
    from compress.rundir import clear_scratch, outputs

    stage = tmp_path / "export"
    (stage / ".work").mkdir(parents=True)
    for name in ("student.onnx", ".student.onnx.a1b2.tmp", ".attempt", ".work/train_state.pt", "plots/a.png"):
        (stage / name).parent.mkdir(parents=True, exist_ok=True)
        (stage / name).write_text("x")
    assert [p.relative_to(stage).as_posix() for p in outputs(stage)] == ["plots/a.png", "student.onnx"]
    clear_scratch(stage)
    assert sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*")) == ["plots", "plots/a.png", "student.onnx"]


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_overwrite_deletes_only_what_a_run_of_ours_wrote(tmp_path):
    web = tmp_path / "webapp"  # a project folder that happens to hold a manifest.json of its own
    (web / "src").mkdir(parents=True)
    (web / "manifest.json").write_text('{"name": "my-pwa", "start_url": "/"}')
    (web / "src" / "app.py").write_text("print('precious')")
    before = _tree(web)
    with pytest.raises(ArtifactError, match="is not an edge-compress manifest; nothing was deleted"):
        pipeline().run(web, overwrite=True, quiet=True)
    assert _tree(web) == before

    run = tmp_path / "run"
    pipeline().run(run, quiet=True)
    (run / "notes.txt").write_text("mine")
    (run / "distill" / "my_plot.png").write_bytes(b"mine too")
    before = _tree(run)
    with pytest.raises(ArtifactError, match=r"holds files edge-compress did not write: distill/my_plot.png \(and 1 more\)"):
        pipeline().run(run, overwrite=True, quiet=True)
    assert _tree(run) == before, "nothing is deleted when anything foreign is there"

    (run / "notes.txt").unlink()
    (run / "distill" / "my_plot.png").unlink()
    (run / "distill" / ".work").mkdir()
    (run / "distill" / ".work" / "train_state.pt").write_bytes(b"left by a stop")  # our scratch counts as ours
    again = pipeline().run(run, overwrite=True, quiet=True)
    assert all(s.status == "done" for s in again.stages) and not (run / "distill" / ".work").exists()


def test_an_out_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "run").write_text("x")
    with pytest.raises(ArtifactError, match="is a file, not a folder"):
        pipeline().run(tmp_path / "run", quiet=True)
    assert (tmp_path / "run").read_text() == "x"


def test_a_second_process_in_a_run_folder_is_refused_naming_the_holder(tmp_path):
    import fcntl
    import os

    run = tmp_path / "run"
    pipeline().run(run, quiet=True)
    before = _tree(run)
    fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT)  # another process is working in the folder
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"edge-compress (process 4242 on ci-7, since 2026-11-27T10:00:00+00:00)")
        for kwargs in ({"resume": True}, {"overwrite": True}):
            with pytest.raises(ArtifactError, match=r"is in use by edge-compress \(process 4242 on ci-7"):
                pipeline().run(run, quiet=True, **kwargs)
    finally:
        os.close(fd)
    (run / ".lock").unlink()
    assert _tree(run) == before, "the refused processes touched nothing"
    again = pipeline().run(run, resume=True, quiet=True)  # the holder is gone: the folder is free
    assert statuses(again) == [("train", "reused"), ("distill", "reused"), ("export", "reused")]
    assert not (run / ".lock").exists()
