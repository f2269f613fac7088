"""The Python API as a user calls it: paths as strings, the stage lines the command line prints (through
`logging`, when the application has not set logging up), and the accessors for a model's figures and files."""

import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
from compress import Manifest, Pipeline
from compress.report import write_run_report
from compress.stages import Benchmark, Export, Train

stages = [Train(name="net", model={"arch": "mlp", "hidden": [16]}, epochs=2), Export(), Benchmark(batch_sizes=[1, 8])]
made = Pipeline(stages, task="digits", name="api").run("runs/api")
loaded = Manifest.load("runs/api")  # the run folder, or its manifest.json
print("same", loaded == Manifest.load("runs/api/manifest.json"))
for m in (made, loaded):
    print("value", m.value("net"), m.model("net").score("accuracy").value)
    print("latency", m.latency("net", 8).p50, m.model("net").bench["ort-cpu"].latency_ms["8"].p50, m.latency("net", 2))
    print("files", m.path("net"), m.path("net", "checkpoint"), m.path("net").is_file(), m.path("net", "checkpoint").is_file())
print("report", *write_run_report("runs/api", out="elsewhere"))
try:
    loaded.model("nett")
except Exception as err:
    print("error", type(err).__name__, err)
"""


def test_the_python_api_takes_strings_prints_stage_lines_and_has_accessors(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path, timeout=300, env=_env())
    assert done.returncode == 0, done.stderr
    out = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    lines = done.stdout.splitlines()
    values = [line.split() for line in lines if line.startswith("value ")]
    assert len(values) == 2 and values[0] == values[1] and values[0][1] == values[0][2] and 0 < float(values[0][1]) <= 1
    latencies = [line.split() for line in lines if line.startswith("latency ")]
    assert latencies[0] == latencies[1] and latencies[0][1] == latencies[0][2] and latencies[0][3] == "None"
    files = [line.split() for line in lines if line.startswith("files ")]
    assert files[0] == files[1] == ["files", "runs/api/export/net.onnx", "runs/api/train/net.pt", "True", "True"]
    assert out["same"] == "True"
    assert out["report"].split() == ["elsewhere/report.md", "elsewhere/report.html"]
    assert out["error"] == "ArtifactError run 'api' has no model 'nett'; did you mean 'net'? it has: net; use one of those names"
    for line in ("[1/3] train: running", "[3/3] benchmark: done in", "  net: accuracy"):  # the command line's lines
        assert line in done.stderr, done.stderr


def _env():
    import os

    return {**os.environ, "PYTHONPATH": str(REPO)}
