"""Every case of the bad-input corpus (`bad_input_cases.py`) ends as one error line with exit code 2,
no traceback, and every file that was there before byte-identical (and nothing half-written left).

The cases run in this process through `compress.cli.main` (a subprocess each would cost minutes);
`test_a_sample_behaves_the_same_as_a_real_process` runs a few as real processes, where warnings and
stray output of libraries would show."""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from compress.cli import main
from tests.e2e.bad_input_cases import CASES, Artifact, Case, Fifo, Link
from tests.e2e.test_cli import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    """model.onnx (a digits MLP), teacher.pt (its weights), baseline.json (of model.onnx), run/ (a finished run)."""
    from compress.models.spec import save_checkpoint
    from compress.models.zoo import mlp
    from compress.pipeline import Pipeline
    from compress.stages import Export, Train

    root = tmp_path_factory.mktemp("artifacts")
    model = mlp((1, 8, 8), 10, hidden=[16]).eval()
    save_checkpoint(model, root / "teacher.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, torch.randn(1, 1, 8, 8), root / "model.onnx", dynamo=False, input_names=["input"],
            output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17,
        )  # fmt: skip
    code = main(
        [
            "bench",
            str(root / "model.onnx"),
            "--rounds",
            "6",
            "--min-time",
            "0.01",
            "--warmup",
            "1",
            "--save-baseline",
            str(root / "baseline.json"),
        ]
    )
    assert code == 0
    baseline = json.loads((root / "baseline.json").read_text())
    del baseline["model"]["input_shape"]
    (root / "baseline-without-shape.json").write_text(json.dumps(baseline))
    _odd_onnx_files(root)
    np.save(root / "calib-4x3.npy", np.zeros((4, 3), dtype=np.float32))
    with zipfile.ZipFile(root / "not-export.pt2", "w") as archive:
        archive.writestr("notes.txt", "not a torch.export archive")
    stages = [Train(name="teacher", model={"arch": "mlp", "hidden": [16]}, epochs=1), Export()]
    Pipeline(stages, task="digits", name="bad").run(root / "run", quiet=True)
    return root


def _odd_onnx_files(root: Path) -> None:
    """ONNX files a user could bring: a batch fixed at 1, a model that pools over the batch, one that ends in
    ArgMax (class indices, not scores), one whose outputs are NaN."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32), "w")
    flat = helper.make_node("Flatten", ["input"], ["flat"])
    nodes = {
        "fixed-batch-1": ([flat, helper.make_node("MatMul", ["flat", "w"], ["output"])], 1, TensorProto.FLOAT),
        "pools-the-batch": (
            [
                flat,
                helper.make_node("MatMul", ["flat", "w"], ["mm"]),
                helper.make_node("ReduceMean", ["mm"], ["output"], axes=[0], keepdims=1),
            ],
            "batch",
            TensorProto.FLOAT,
        ),
        "argmax": (
            [flat, helper.make_node("MatMul", ["flat", "w"], ["mm"]), helper.make_node("ArgMax", ["mm"], ["output"], axis=1)],
            "batch",
            TensorProto.INT64,
        ),
        "nan": (
            [flat, helper.make_node("MatMul", ["flat", "w"], ["mm"]), helper.make_node("Log", ["mm"], ["output"])],
            "batch",
            TensorProto.FLOAT,
        ),
    }
    for name, (graph_nodes, batch, out_type) in nodes.items():
        graph = helper.make_graph(
            graph_nodes,
            name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 1, 8, 8])],
            [helper.make_tensor_value_info("output", out_type, None)],
            [weights],
        )
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), root / f"{name}.onnx")
    open_width = helper.make_graph(  # any feature count accepted by the signature; the MatMul needs 64 (fails when run)
        [helper.make_node("MatMul", ["input", "w"], ["output"])],
        "open-width",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", "features"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
        [weights],
    )
    onnx.save(helper.make_model(open_width, opset_imports=[helper.make_opsetid("", 13)]), root / "open-width.onnx")


def _materialize(files: dict, root: Path, artifacts: Path) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            path.symlink_to(content.target)
        elif isinstance(content, Fifo):
            os.mkfifo(path)
        elif isinstance(content, Artifact):
            source = artifacts / content.name
            shutil.copytree(source, path, dirs_exist_ok=True) if source.is_dir() else shutil.copyfile(source, path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes, and what every link points to."""
    found = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}
    return found | {str(p.relative_to(root)): os.readlink(p).encode() for p in root.rglob("*") if p.is_symlink()}


def _check(case: Case, code: int, stderr: str, before: dict[str, bytes], after: dict[str, bytes]) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, f"{case.id}: exit {code}\n{stderr}"
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("edge-compress"), f"{case.id}: not one error line:\n{stderr}"
    assert case.expect in lines[0], f"{case.id}: {case.expect!r} not in {lines[0]!r}"
    changed = [p for p, data in before.items() if after.get(p) != data]
    assert not changed, f"{case.id}: changed or removed {changed}"
    written = [p for p in after if p not in before and not p.endswith(".lock")]
    assert not written, f"{case.id}: left behind {written}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_line_exit_2_and_touches_nothing(case, artifacts, tmp_path, monkeypatch, capsys):
    _materialize(case.files, tmp_path, artifacts)
    before = _snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "badcode", raising=False)
    try:
        code = main(list(case.argv))
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    torch.set_num_threads(1)  # a run sets the thread count of this process
    _check(case, code, capsys.readouterr().err, before, _snapshot(tmp_path))


SAMPLE = (
    "recipe-binary",
    "dup-nested-key",
    "checkpoint-pickle-code",
    "model-returns-tuple",
    "bench-empty-onnx",
    "overwrite-foreign-manifest",
    "bench-onnx-fails-when-run",  # onnxruntime's own error log (C++, straight to fd 2) stays out of stderr
)


@pytest.mark.parametrize("case", [c for c in CASES if c.id in SAMPLE], ids=lambda c: c.id)
def test_a_sample_behaves_the_same_as_a_real_process(case, artifacts, tmp_path):
    _materialize(case.files, tmp_path, artifacts)
    before = _snapshot(tmp_path)
    result = cli(*case.argv, cwd=tmp_path)
    _check(case, result.returncode, result.stderr, before, _snapshot(tmp_path))


def test_the_corpus_is_large_and_names_are_unique():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_a_run_folder_this_user_cannot_write_is_one_line_before_any_work(tmp_path, write_recipe, tiny_recipe, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        monkeypatch.chdir(tmp_path)
        code = main(["run", str(write_recipe(tiny_recipe)), "--out", str(locked / "run"), "--quiet"])
        assert code == 2 and "cannot write in" in capsys.readouterr().err
        assert not any(locked.iterdir())
    finally:
        locked.chmod(0o700)


def test_a_file_fixed_at_batch_1_is_scored_in_batches_of_1(artifacts, tmp_path, capsys):
    """Not bad input: the metric pass feeds the batch size the file declares (padding the last batch)."""
    code = main(["bench", str(artifacts / "fixed-batch-1.onnx"), "--task", "digits", "--rounds", "2", "--min-time", "0", "--warmup", "1"])
    out = capsys.readouterr().out
    assert code == 0 and "accuracy (test): 0." in out, out
