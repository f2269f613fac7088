"""`torchrun --nproc_per_node=2 -m compress run RECIPE` on CPU (gloo): both ranks train, rank 0 writes."""

import json
import math
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_two_ranks_train_in_step_and_only_rank_0_writes(write_recipe, tiny_recipe, tmp_path):
    stages = tiny_recipe["stages"]
    stages[1]["distill"] |= {
        "augment": False,  # teacher outputs cached once per rank, looked up by global sample index
        "features": [{"student": "layer1", "teacher": "layer1", "loss": "hint"}],  # a projector trained alongside
    }
    tiny_recipe["stages"] = [*stages[:3], {"report": {}}]
    out = tmp_path / "run"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    result = subprocess.run(
        [*torchrun, "-m", "compress", "run", str(write_recipe(tiny_recipe)), "--out", str(out), "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("run folder:") == 1, "only rank 0 reports"
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["status"] for s in manifest["stages"]] == ["done"] * 4
    train_size = 1257  # digits' fixed training split
    for stage, name in [(manifest["stages"][0], "teacher"), (manifest["stages"][1], "student")]:
        parallel = stage["models"][name]["training"]["data_parallel"]
        assert parallel["world_size"] == 2
        assert parallel["ranks_agree"] is True, f"{name}: the ranks' final weights differ"
        assert parallel["steps_per_epoch"] == math.ceil(math.ceil(train_size / 2) / 32), "each rank sees half the data at half the batch"
    assert manifest["stages"][1]["models"]["student"]["training"]["teacher_cache"] is True
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [
        "distill/.stage.json",
        "distill/student.pt",
        "export/.stage.json",
        "export/student.onnx",
        "export/teacher.onnx",
        "manifest.json",
        "report/.stage.json",
        "report/plots/parity.png",
        "report/plots/ratios.png",
        "report/plots/training.png",
        "report/report.html",
        "report/report.md",
        "summary.json",
        "train/.stage.json",
        "train/teacher.pt",
    ]
    parity = manifest["stages"][2]["models"]["student"]["parity"]
    assert parity["top1_agreement"] == 1.0
