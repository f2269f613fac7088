"""Our INT8 path against the tools a user would pick instead, on the same FP32 ONNX models and the same
calibration samples (the task's first 256 training inputs):

  ours            edge-compress quantize MODEL.onnx --task T --cpu auto --calibration calib.npy
  onnxruntime     onnxruntime.quantization.quantize_static, default settings
  optimum-onnx    ORTQuantizer + AutoQuantizationConfig.<this CPU's ISA>(is_static=True)   (own venv)
  olive-ai        Olive workflow with the OnnxStaticQuantization pass, default settings   (own venv)
  nncf            nncf.quantize(onnx_model, nncf.Dataset(...)), ONNX backend, defaults    (own venv)
  inc             neural-compressor PT2E static quantization of the PyTorch model, then torch.onnx (dynamo)

Each tool runs in a subprocess (a driver in benchmarks/peers/, in the tool's virtual environment) that
reads the FP32 file and the calibration .npy and writes one INT8 file. Everything is then measured in
this process, the same way for every file (benchmarks/peers/peer_measure.py): ONNX Runtime CPU, 1
intra-op thread, ORT_ENABLE_ALL; test accuracy, top-1 agreement with FP32, latency at batch 1 and 32
timed interleaved across all files of a model in alternating order, and the operators ORT runs in float.

    python benchmarks/peers.py --setup     # the three virtual environments, torch pinned first (once)
    python benchmarks/peers.py             # trains the models if missing (digits_edge, mnist1d_edge), quantizes, measures

The models come from the packaged recipes, run into --work (default /tmp/edge-compress-peers):
<work>/digits_edge (student and teacher) and <work>/mnist1d_edge. A tool that fails to install or run is kept
in the table with its error line. --reuse keeps INT8 files an earlier run left there; --render JSON rewrites
the Markdown from a saved results JSON without measuring.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from peer_report import write

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DRIVERS = HERE / "peers"
TORCH = "torch==2.13.0"  # the CPU wheel; any other torch spec pulls CUDA builds
INT8_ALLOWED = {"session.qdqisint8allowed": "1"}
UNLOCK = "(same file, session qdqisint8allowed=1)"
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


@dataclass(frozen=True)
class Model:
    recipe: str
    name: str
    task: str


MODELS = {
    "digits student": Model("digits_edge", "student", "digits"),
    "digits teacher": Model("digits_edge", "teacher", "digits"),
    "mnist1d student": Model("mnist1d_edge", "student", "mnist1d"),
    "mnist1d teacher": Model("mnist1d_edge", "teacher", "mnist1d"),
}


@dataclass(frozen=True)
class Tool:
    driver: str
    venv: str | None = None  # None: this environment (the project's)
    requirements: list[str] = field(default_factory=list)


TOOLS = {
    "ours": Tool("drive_ours.py"),
    "onnxruntime": Tool("drive_ort.py"),
    "optimum-onnx": Tool("drive_optimum.py", "optimum", ["optimum-onnx[onnxruntime]==0.1.0"]),
    # olive-ai 0.13's telemetry imports requests without declaring it
    "olive-ai": Tool("drive_olive.py", "olive", ["olive-ai[cpu]==0.13.0", "requests"]),
    "nncf": Tool("drive_nncf.py", "nncf", ["nncf==3.4.0", "onnx"]),
    "inc": Tool("drive_inc.py"),
}


def lscpu() -> dict[str, Any]:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    return {"model": fields.get("Model name", "?").strip(), "flags": {f: f in flags for f in FLAGS}}


def venv_python(args: argparse.Namespace, tool: Tool) -> Path:
    return Path(sys.executable) if tool.venv is None else args.venvs / tool.venv / "bin" / "python"


# ---------------------------------------------------------------- set-up


def setup(args: argparse.Namespace) -> None:
    """One virtual environment per tool: torch pinned first, then the tool with this environment's
    onnxruntime, after a dry run shows torch would stay as it is."""
    ort = f"onnxruntime=={version('onnxruntime')}"
    for name, tool in TOOLS.items():
        if tool.venv is None:
            continue
        folder, requirements = args.venvs / tool.venv, [*tool.requirements, ort]
        pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        if not (folder / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([*pip, TORCH], check=True)
        report = subprocess.run([*pip, "--dry-run", "--report", "-", *requirements], capture_output=True, text=True, check=True)
        replaced = [i["metadata"]["version"] for i in json.loads(report.stdout)["install"] if i["metadata"]["name"] == "torch"]
        if replaced:
            sys.exit(f"{name}: installing {requirements} would replace {TORCH} with torch {replaced[0]}; not installing")
        subprocess.run([*pip, *requirements], check=True)
        print(f"{name}: {folder} ready ({' '.join(requirements)}, {TORCH})")


# ---------------------------------------------------------------- quantizing


def ensure_run(args: argparse.Namespace, recipe: str) -> Path:
    """The recipe's run folder in --work, made with `edge-compress run` when missing."""
    run = args.work / recipe
    if not (run / "manifest.json").exists():
        print(f"running recipe {recipe} into {run}", flush=True)
        subprocess.run([sys.executable, "-m", "compress", "run", recipe, "--out", str(run), "--overwrite", "-q"], check=True)
    return run


def calibration(args: argparse.Namespace, task: str) -> Path:
    from compress.data.builtin import TASKS

    path = args.work / f"{task}_calibration_{args.samples}.npy"
    if not path.exists():
        np.save(path, TASKS.get(task)().example_input(args.samples, split="train").numpy())
    return path


def quantize(args: argparse.Namespace, key: str, model: Model, tool_name: str, isa: str) -> dict[str, Any]:
    """Run one tool's driver; its JSON line, or the error line it died with."""
    tool, run = TOOLS[tool_name], args.work / model.recipe
    fp32, calib = run / "export" / f"{model.name}.onnx", calibration(args, model.task)
    out = args.work / "int8" / key.replace(" ", "_") / f"{tool_name}.onnx"
    record = out.with_suffix(".json")
    if args.reuse and out.exists() and record.exists():
        return json.loads(record.read_text())
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in (out, out.with_name(out.name + ".data"), record):
        stale.unlink(missing_ok=True)
    python = venv_python(args, tool)
    if not python.exists():
        return {"error": f"no virtual environment at {python.parent.parent}: run python benchmarks/peers.py --setup"}
    extra = {
        "ours": ["--task", model.task, "--run-dir", str(args.work / "ours_runs" / key.replace(" ", "_"))],
        "optimum-onnx": ["--isa", isa],
        "inc": ["--run-dir", str(run), "--model", model.name],
    }.get(tool_name, [])
    command = [str(python), str(DRIVERS / tool.driver), str(fp32), str(calib), str(out), *extra]
    env = {**os.environ, "OLIVE_DISABLE_TELEMETRY": "1"} | ({"PYTHONPATH": str(REPO)} if tool.venv is None else {})
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=args.work, timeout=1800, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines and out.exists():
        record.write_text(json.dumps({**json.loads(lines[-1]), "file": str(out)}))
        return json.loads(record.read_text())
    return {"error": error_line(done.stderr or done.stdout), "returncode": done.returncode}


def error_line(text: str) -> str:
    """The line that names the failure: the last exception line, else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    named = [line for line in lines if "Error" in line.split(":", 1)[0] or "Exception" in line.split(":", 1)[0]]
    return (named or lines or ["(no output)"])[-1][:300]


# ---------------------------------------------------------------- measuring


def measure_model(args: argparse.Namespace, key: str, model: Model, quantized: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from peer_measure import census, int8_format, interleaved, scores, size_bytes

    from compress.data.builtin import TASKS

    task = TASKS.get(model.task)()
    fp32 = args.work / model.recipe / "export" / f"{model.name}.onnx"
    files = {"FP32": fp32} | {t: Path(q["file"]) for t, q in quantized.items() if "file" in q}
    x = task.example_input(len(task.test), split="test").numpy()
    labels = np.asarray([task.test[i][1] for i in range(len(task.test))])
    rows = {
        name: {"size_bytes": size_bytes(path), "format": int8_format(path), "census": census(path, args.threads)}
        for name, path in files.items()
    }
    sources = {name: (path, {}) for name, path in files.items()}
    for name in list(rows):
        if "int8" in rows[name]["format"]["activations"]:  # ORT's x86 QDQ fusion skips int8 activations unless told otherwise
            unlocked = census(files[name], args.threads, INT8_ALLOWED)
            if sum(unlocked["float_ops"].values()) < sum(rows[name]["census"]["float_ops"].values()):
                rows[f"{name} {UNLOCK}"] = rows[name] | {"census": unlocked, "session_config": INT8_ALLOWED}
                sources[f"{name} {UNLOCK}"] = (files[name], INT8_ALLOWED)
    for name, score in scores(sources, x, labels, args.threads, reference="FP32").items():
        rows[name] |= score
    for batch in (1, 32):
        print(f"{key}: timing batch {batch}, {len(sources)} files, {args.rounds} rounds", flush=True)
        timed = interleaved(sources, task.full_batch(batch).numpy(), reference="FP32", rounds=args.rounds, threads=args.threads)
        for name, t in timed.items():
            rows[name].setdefault("latency", {})[str(batch)] = t  # str: the same keys after a JSON round trip
    ordered = {"FP32": rows["FP32"]}
    for tool, q in quantized.items():
        ordered[tool] = rows.get(tool, {}) | {"tool": q}
        if f"{tool} {UNLOCK}" in rows:
            ordered[f"{tool} {UNLOCK}"] = rows[f"{tool} {UNLOCK}"] | {"tool": q}
    return {"model": {"recipe": model.recipe, "name": model.name, "task": model.task, "fp32": str(fp32)}, "rows": ordered}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", action="store_true", help="create the tools' virtual environments and stop")
    parser.add_argument("--venvs", type=Path, default=REPO.parent / "peers-venvs", help="where the venvs go (default: %(default)s)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/edge-compress-peers"), help="runs, calibration and INT8 files")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), metavar="MODEL", help=f"from {list(MODELS)}")
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=list(TOOLS))
    parser.add_argument("--samples", type=int, default=256, help="calibration samples (the train split's first)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads when measuring")
    parser.add_argument("--stem", default="peers", help="results file name (without extension)")
    parser.add_argument("--reuse", action="store_true", help="keep the INT8 files an earlier run left in --work; quantize the rest")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="rewrite the Markdown from this script's results JSON, measuring nothing"
    )
    args = parser.parse_args()
    args.venvs, args.work = args.venvs.resolve(), args.work.resolve()
    if args.setup:
        setup(args)
        return
    if args.render:
        saved = json.loads(args.render.read_text())
        info = {key: saved[key] for key in ("date", "command", "environment")}
        print(write(saved["results"], saved["args"] | {"stem": args.stem}, saved["lscpu"], info))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    cpu = lscpu()
    isa = "avx512_vnni" if cpu["flags"]["avx512_vnni"] else "avx2"
    results = {}
    for key in args.models:
        model = MODELS[key]
        ensure_run(args, model.recipe)
        quantized = {}
        for tool in args.tools:
            quantized[tool] = quantize(args, key, model, tool, isa)
            print(f"{key}: {tool}: {quantized[tool].get('error') or 'ok, ' + str(quantized[tool]['seconds']) + ' s'}", flush=True)
        results[key] = measure_model(args, key, model, quantized)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in ("setup", "render")}
    print(write(results, settings, cpu))


if __name__ == "__main__":
    main()
