"""QAD INT8 against static PTQ INT8 of the same FP32 model (issue 17): per architecture family, the test
accuracy of each file through ONNX Runtime, its top-1 agreement with the FP32 file, whether QAD runs on
integer kernels every operator PTQ does, and ORT CPU latency at batch 32, the FP32, PTQ and QAD files
timed interleaved (round by round, in this process, so all see the same machine state).

The bound: QAD not slower than PTQ, i.e. the median over rounds of QAD p50 / PTQ p50 <= 1 (noise aside).

    python benchmarks/qad_vs_ptq.py --threads 1

Each family trains from scratch on digits (`--train-epochs`), then is exported and quantized statically
(onnxruntime QDQ, 256 calibration samples, MinMax) and, from the same trained model, QAD'd
(`--qad-epochs`, the model itself as teacher).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the families live in tests/conformance
from _interleave import interleaved
from _results import save

from compress.bench import make_runner
from compress.bench.runners import TargetSpec
from compress.data.builtin import TASKS
from compress.pipeline import Pipeline
from compress.quant.census import integer_coverage
from compress.stages import Export, Qad, Quantize, Train
from tests.conformance.families import FAMILIES

DEFAULT_FAMILIES = ["se_gating", "residual_cnn", "inverted_residual", "concat_branches", "grouped_conv", "cnn1d", "mlp_layernorm"]
FILES = {"fp32": "model", "ptq": "model_int8", "qad": "model_qad"}


def stages(family: str, args: argparse.Namespace) -> list:
    return [
        Train(name="model", model={"factory": FAMILIES[family]}, epochs=args.train_epochs),
        Export(models=["model"]),
        Quantize(models=["model"], min_agreement=0.0),  # agreement is reported, not a gate, here
        Qad(model="model", epochs=args.qad_epochs, freeze_after=max(1, args.qad_epochs // 2), min_agreement=0.0),
    ]


def _outputs(paths: dict[str, Path], x: np.ndarray, threads: int) -> dict[str, np.ndarray]:
    runner = make_runner("ort-cpu", threads)
    return {kind: runner.load(path)(x) for kind, path in paths.items()}


def _scores(records: dict, paths: dict[str, Path], args: argparse.Namespace) -> dict[str, Any]:
    """Test accuracy of each file, its agreement with FP32, the QAD file's with its fake-quantized twin."""
    data = TASKS.get("digits")()
    x = data.example_input(len(data.test), split="test").numpy()
    labels = np.asarray([data.test[i][1] for i in range(len(data.test))])
    out = _outputs(paths, x, args.threads)
    accuracy = {kind: float(np.mean(o.argmax(1) == labels)) for kind, o in out.items()}
    agreement = {kind: float(np.mean(o.argmax(1) == out["fp32"].argmax(1))) for kind, o in out.items() if kind != "fp32"}
    qad = records["model_qad"]
    return {
        "accuracy": accuracy,
        "agreement_with_fp32": agreement,
        "qad_fake_quant_accuracy": qad.score("accuracy", runtime="fake-quant").value,
        "qad_vs_fake_quant": qad.quant.vs_reference.top1_agreement,
        "float_ops": {kind: dict(records[FILES[kind]].quant.float_ops) for kind in ("ptq", "qad")},
    }


def run_family(family: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    run_dir = workdir / family
    target = TargetSpec(threads=args.threads)
    records = Pipeline(stages(family, args), task="digits", name=family, seed=args.seed, target=target).run(run_dir, quiet=True).records()
    paths = {kind: run_dir / records[name].onnx for kind, name in FILES.items()}
    result = _scores(records, paths, args)
    coverage = integer_coverage(paths["ptq"], paths["qad"], args.threads)
    result["coverage"] = {
        "covered": coverage.covered,
        "detail": coverage.describe(),
        "ptq": coverage.reference_integer,
        "qad": coverage.candidate_integer,
    }
    x = TASKS.get("digits")().full_batch(args.batch).numpy()
    result["latency"] = interleaved(paths, x, baseline="ptq", rounds=args.rounds, threads=args.threads)
    lat = result["latency"]
    print(f"{family}: QAD/PTQ time {1 / lat['qad']['speedup']:.3f}, acc fp32 {result['accuracy']['fp32']:.4f} "
          f"ptq {result['accuracy']['ptq']:.4f} qad {result['accuracy']['qad']:.4f}, {coverage.describe()}", flush=True)  # fmt: skip
    return result


def _row(family: str, r: dict[str, Any]) -> list[Any]:
    lat, acc, agree = r["latency"], r["accuracy"], r["agreement_with_fp32"]
    ratio, worst = 1 / lat["qad"]["speedup"], 1 / lat["qad"]["speedup_min"]
    left = ", ".join(f"{op} x{c}" for op, c in r["float_ops"]["qad"].items()) or "none"
    return [
        family,
        f"{lat['fp32']['p50_ms']:.3f} / {lat['ptq']['p50_ms']:.3f} / {lat['qad']['p50_ms']:.3f}",
        f"{ratio:.3f} (worst {worst:.3f})",
        f"{100 * acc['fp32']:.2f} / {100 * acc['ptq']:.2f} / {100 * acc['qad']:.2f} ({100 * r['qad_fake_quant_accuracy']:.2f})",
        f"{100 * agree['ptq']:.2f} / {100 * agree['qad']:.2f} ({100 * r['qad_vs_fake_quant']:.2f})",
        "yes" if r["coverage"]["covered"] else r["coverage"]["detail"],
        left,
    ]


def _lscpu() -> dict[str, str]:
    """lscpu's model name and flags (the machine is shared: figures may be noisy)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k: fields[k].strip() for k in ("Model name", "Flags") if k in fields}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=DEFAULT_FAMILIES, choices=sorted(FAMILIES))
    parser.add_argument("--train-epochs", type=int, default=15)
    parser.add_argument("--qad-epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stem", default="qad_vs_ptq", help="results file name (without extension)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {family: run_family(family, args, Path(tmp)) for family in args.families}
    header = [
        "family",
        f"b{args.batch} p50 ms FP32 / PTQ / QAD",
        "QAD / PTQ time (median of rounds)",
        "test acc % FP32 / PTQ / QAD (fake-quant)",
        "agreement % with FP32: PTQ / QAD (QAD vs fake-quant)",
        "QAD integer ops cover PTQ's",
        "float ops QAD leaves",
    ]
    rows = [_row(family, r) for family, r in results.items()]
    lscpu = _lscpu()
    notes = (
        f"Latency: ONNX Runtime CPU, {args.threads} intra-op thread(s), batch {args.batch}, {args.rounds} interleaved rounds (FP32, PTQ, QAD "
        "each timed once per round, its p50); the ratio is the median over rounds of QAD p50 / PTQ p50 (<= 1: QAD not slower), worst = the "
        f"round least favourable to QAD. Training: {args.train_epochs} epochs from scratch per family, QAD {args.qad_epochs} epochs from "
        "the trained model (itself as teacher); PTQ: onnxruntime static QDQ, per-channel int8 weights, uint8 activations, 256 MinMax "
        "calibration samples. The machine is shared with other jobs: single figures may be noisy; the ratios are interleaved for that "
        f"reason. lscpu: {lscpu.get('Model name', '?')}; flags: {lscpu.get('Flags', '?')}"
    )
    data = {"args": vars(args), "lscpu": lscpu, **results}
    print(save(args.stem, "QAD INT8 vs static PTQ INT8 per family (ORT CPU)", header, rows, data, notes))


if __name__ == "__main__":
    main()
