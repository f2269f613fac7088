"""Resume reuses a stage only when its config, the run settings and its input files are unchanged."""

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
    with pytest.raises(ArtifactError, match="not a readable edge-compress manifest"):
        pipeline().run(tmp_path / "broken", resume=True, quiet=True)
