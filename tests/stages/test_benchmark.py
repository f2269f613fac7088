"""The benchmark stage on several targets, and the demo recipe's report."""

import json

import pytest

from compress.bench.runners import target_available
from compress.errors import TargetError
from compress.pipeline import Pipeline
from compress.stages import Benchmark, Export, Report, Train

TIMING = {"warmup": 1, "warmup_time_s": 0, "rounds": 2, "min_iters": 5, "min_time_s": 0}


def _stages(targets):
    return [
        Train(name="model", model={"arch": "mlp", "hidden": [16]}, epochs=1),
        Export(),
        Benchmark(targets=targets, batch_sizes=[2], timing=TIMING),
        Report(),
    ]


def test_every_target_gets_latency_memory_and_its_own_metric(tmp_path):
    targets = ["ort-cpu", "torch-cpu"] + (["openvino-cpu"] if target_available("openvino-cpu") else [])
    manifest = Pipeline(_stages(targets), task="digits", seed=0).run(tmp_path / "run", quiet=True)
    result = manifest.find("benchmark").models["model"]
    assert list(result.bench) == targets and all(b.latency_ms and b.memory.peak_rss_mb for b in result.bench.values())
    values = [result.score("accuracy", runtime=t).value for t in targets]
    assert max(values) - min(values) <= 2 / 360  # the same network on every runtime
    assert set(manifest.find("benchmark").metrics["environment"]) == set(targets)
    report = (tmp_path / "run" / "report" / "report.md").read_text()
    for target in targets:
        assert f"| `model` | {target} | 2 |" in report and f"target `{target}`" in report


def test_an_unavailable_target_fails_before_training_and_names_the_fix(tmp_path):
    if target_available("ort-cuda"):
        pytest.skip("this machine has CUDA")
    with pytest.raises(TargetError, match="pip install"):
        Pipeline(_stages(["ort-cuda"]), task="digits", seed=0).run(tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists(), "nothing trained, nothing written"
    with pytest.raises(TargetError, match="pip install"):  # the run's own target too
        Pipeline(_stages(None), task="digits", target="ort-cuda").run(tmp_path / "run2", quiet=True)
    assert not (tmp_path / "run2").exists()


@pytest.mark.slow
def test_demo_recipe_runs_the_whole_chain_and_its_report_decides(tmp_path):
    from tests.conftest import REPO

    run_dir = tmp_path / "demo"
    Pipeline.from_recipe(REPO / "pipelines" / "digits_edge.yaml").run(run_dir, quiet=True)
    md = (run_dir / "report" / "report.md").read_text()
    assert "![Each model against the reference](plots/ratios.png)" in md and "## Verdict" in md and "Acceptance gates on" in md
    assert "## Accuracy vs latency: every candidate the run produced" in md and "(plots/pareto.png)" in md
    assert "## Environment" in md and "target `ort-cpu`: onnxruntime" in md
    html = (run_dir / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {m["name"] for m in summary["models"]} == {"teacher", "student", "student_pruned", "student_int8", "student_pruned_int8"}
    assert summary["verdict"]["recommended"] in {m["name"] for m in summary["models"]} - {"teacher"}
    latencies = [s for m in summary["models"] for b in m["bench"].values() for s in b["latency_ms"].values()]
    assert len(latencies) == 10 and all(s["interleaved"] and len(s["round_p50"]) == 5 for s in latencies)
    pruned = next(m for m in summary["models"] if m["name"] == "student_pruned")
    assert len(pruned["training"]["history"]) == 30  # its final fine-tune, drawn with the training curves
