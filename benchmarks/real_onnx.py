"""Real-world ONNX models from a package registry: PP-OCR from the rapidocr-onnxruntime wheel (fetched
once with `pip download --no-deps`, kept in --cache).

The direction classifier (ch_ppocr_mobile_v2.0_cls) goes through the product's chain, load -> quantize
(minmax and percentile calibration) -> benchmark -> report, on rendered text lines, half of them rotated
180 degrees (tests/e2e/realworld_task.py): agreement is the run's own deployed top-1 agreement with FP32,
accuracy is against the rotation labels. The text detector (ch_PP-OCRv4_det) gives a probability map,
not a row of scores, so a run cannot load it; with --det it is quantized with the same engine
(compress.quant.quantize_onnx) and compared with FP32 on rendered 320x320 pages: text-mask IoU at
PaddleOCR's threshold 0.3, and the share of rendered lines it finds. FP32 and INT8 are then timed
interleaved at batch 1 and 8.

    python benchmarks/real_onnx.py --threads 1 --det
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the task and the download helper live in tests/e2e
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _interleave import interleaved
from _results import save

from compress.pipeline import Pipeline
from compress.stages import Benchmark, Load, Quantize, Report
from tests.e2e.realworld_task import WORDS, model_from_wheel

REQUIREMENT = "rapidocr-onnxruntime==1.4.4"
MODELS = "rapidocr_onnxruntime/models/"
CLS, DET = MODELS + "ch_ppocr_mobile_v2.0_cls_infer.onnx", MODELS + "ch_PP-OCRv4_det_infer.onnx"
METHODS = ("minmax", "percentile")
PAGE, THRESHOLD = 320, 0.3


def cpu_flags() -> list[str]:
    """Which of avx512_vnni and avx2 lscpu reports: the INT8 kernels ONNX Runtime can use here."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    flags = next((line.split(":", 1)[1].split() for line in out.splitlines() if line.startswith("Flags")), [])
    return [f for f in ("avx512_vnni", "avx2") if f in flags]


def cls_chain(model: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """One run: load, quantize with each calibration method, benchmark, report; then interleaved timing."""
    task = {"factory": "tests.e2e.realworld_task:text_direction", "options": {"train": 256, "val": 64, "test": args.test}}
    quantize = [Quantize(models=["cls"], calibration={"samples": 256, "method": m}, suffix=f"_int8_{m}") for m in METHODS]
    stages = [Load(name="cls", model={"onnx": str(model)}), *quantize, Benchmark(batch_sizes=[1, 8]), Report()]
    run = workdir / "cls_run"
    records = Pipeline(stages, task=task, target={"threads": args.threads}).run(run, quiet=True).records()
    rows = {"FP32": _cls_row(records["cls"])}
    rows |= {f"INT8 {m}": _cls_row(records[f"cls_int8_{m}"]) for m in METHODS}
    files = {"FP32": run / records["cls"].onnx} | {f"INT8 {m}": run / records[f"cls_int8_{m}"].onnx for m in METHODS}
    from tests.e2e.realworld_task import text_direction

    test = text_direction(train=256, val=64, test=args.test).test
    x = np.stack([test[i][0].numpy() for i in range(8)])
    _time(rows, files, {1: x[:1], 8: x}, args)
    return {"model": CLS, "test_lines": args.test, "calibration_samples": 256, "rows": rows}


def _cls_row(record) -> dict[str, Any]:
    """What the run recorded for one model: test accuracy, size, the benchmark stage's p50, the INT8 checks."""
    row = {"accuracy": record.score("accuracy", runtime="onnxruntime").value, "size_bytes": record.size_bytes}
    row["run_benchmark_p50_ms"] = {b: s.p50 for b, s in record.bench["ort-cpu"].latency_ms.items()}
    if record.quant is not None:
        d, speed = record.quant.deployed, record.quant.speed
        row |= {"agreement": d.deployed, "basis": d.basis, "exact": d.exact.top1_agreement if d.exact else None}
        row["quantize_speed_check"] = speed.model_dump() if speed else None
    return row


def det_engine(model: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The detector quantized with the engine (minmax, the cls chain's default), compared map by map."""
    from compress.bench.runners.ort import OrtCpuRunner
    from compress.cpu import resolve_cpu
    from compress.quant import choose_format, quantize_onnx

    rng = np.random.default_rng(1)
    pages = [_page(rng) for _ in range(32 + args.det_pages)]
    x = np.stack([p for p, _ in pages])
    fmt, why = choose_format(resolve_cpu().kind)
    int8 = workdir / "det_int8.onnx"
    with contextlib.chdir(workdir):  # ORT's symbolic shape inference gives up on this graph and leaves a file in the cwd
        quantize_onnx(model, int8, mode="static", calibration=x[:32], fmt=fmt, method="minmax")
    runner = OrtCpuRunner(args.threads)
    maps = {n: np.concatenate([runner.load(f)(x[i : i + 8]) for i in range(32, len(x), 8)]) for n, f in (("FP32", model), ("INT8", int8))}
    boxes = [b for _, b in pages[32:]]
    fp32_mask = maps["FP32"][:, 0] > THRESHOLD
    rows = {}
    for name, m in maps.items():
        mask = m[:, 0] > THRESHOLD
        rows[name] = {"lines_found": _lines_found(mask, boxes), "size_bytes": (model if name == "FP32" else int8).stat().st_size}
        rows[name]["mask_iou_vs_fp32"] = float((mask & fp32_mask).sum() / max((mask | fp32_mask).sum(), 1))
    _time(rows, {"FP32": model, "INT8": int8}, {1: x[32:33], 8: x[32:40]}, args)
    return {"model": DET, "pages": args.det_pages, "page_size": PAGE, "format": fmt.label, "format_reason": why, "rows": rows}


def _page(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A 320x320 page of text lines (PaddleOCR's det input: RGB scaled to [-1, 1]) and each line's box."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (PAGE, PAGE), int(rng.integers(190, 256)))
    draw, boxes, y = ImageDraw.Draw(image), [], int(rng.integers(4, 20))
    while y < PAGE - 30:
        size = int(rng.integers(14, 28))
        font = ImageFont.load_default(size=size)
        xy = (int(rng.integers(4, 60)), y)
        text = " ".join(rng.choice(WORDS, int(rng.integers(1, 5))))
        draw.text(xy, text, fill=int(rng.integers(0, 80)), font=font)
        boxes.append(tuple(int(v) for v in draw.textbbox(xy, text, font=font)))
        y += size + int(rng.integers(6, 30))
    pixels = np.asarray(image.convert("RGB"), np.float32) / 255
    return ((pixels - 0.5) / 0.5).transpose(2, 0, 1), boxes


def _lines_found(masks: np.ndarray, boxes: list[list[tuple[int, int, int, int]]]) -> float:
    """Share of rendered lines whose box has at least a fifth of its pixels marked as text."""
    found = [masks[i, top:bottom, left:right].mean() >= 0.2 for i, page in enumerate(boxes) for left, top, right, bottom in page]
    return float(np.mean(found))


def _time(rows: dict[str, dict[str, Any]], files: dict[str, Path], batches: dict[int, np.ndarray], args: argparse.Namespace) -> None:
    for batch, x in batches.items():
        timed = interleaved(files, x, baseline="FP32", rounds=args.rounds, threads=args.threads)
        for name, t in timed.items():
            rows[name][f"b{batch}"] = t


def render(results: dict[str, Any], args: argparse.Namespace) -> tuple[list[str], list[list[str]], str]:
    header = ["model", "file", "agreement with FP32", "vs labels", "size KiB"]
    header += [f"b{b} p50 ms (speedup, min)" for b in (1, 8)]
    rows = []
    for name, r in results["cls"]["rows"].items():
        agreement = f"{r['agreement']:.4f} top-1 ({r['basis']}; exact {r['exact']:.4f})" if "agreement" in r else "-"
        rows.append(["PP-OCR cls", name, agreement, f"accuracy {r['accuracy']:.4f}", f"{r['size_bytes'] / 1024:.0f}", *_times(r)])
    for name, r in results.get("det", {}).get("rows", {}).items():
        agreement = f"text-mask IoU {r['mask_iou_vs_fp32']:.4f}" if name != "FP32" else "-"
        rows.append(["PP-OCRv4 det", name, agreement, f"lines found {r['lines_found']:.4f}", f"{r['size_bytes'] / 1024:.0f}", *_times(r)])
    flags = ", ".join(results["cpu_flags"]) or "neither avx512_vnni nor avx2"
    notes = (
        f"CPU flags (lscpu): {flags}. Model: {REQUIREMENT} from the package registry. cls: {results['cls']['test_lines']} rendered "
        "test lines (half rotated 180 degrees), calibrated on 256 others; agreement is the quantize stage's deployed top-1 "
        "agreement with the FP32 file (min_agreement 0.98), accuracy is against the rotation labels. "
        + (
            f"det: quantized with compress.quant.quantize_onnx (minmax, {results['det']['format']}), not a run (its output is a "
            f"map); {results['det']['pages']} rendered {PAGE}x{PAGE} pages, calibrated on 32 others; text-mask IoU with FP32 at "
            f"threshold {THRESHOLD}; a line is found when a fifth of its box is marked as text. "
            if "det" in results
            else ""
        )
        + f"Latency: p50 per round, median over {args.rounds} interleaved rounds, {args.threads} thread(s); speedup = FP32 p50 / "
        "this p50 per round (median, and the worst round)."
    )
    return header, rows, notes


def _times(r: dict[str, Any]) -> list[str]:
    return [f"{r[f'b{b}']['p50_ms']:.3f} ({r[f'b{b}']['speedup']:.2f}x, min {r[f'b{b}']['speedup_min']:.2f}x)" for b in (1, 8)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "edge-compress" / "wheels", help="where the wheel is kept")
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds")
    parser.add_argument("--test", type=int, default=1000, help="rendered test lines for the classifier")
    parser.add_argument("--det", action="store_true", help="also quantize and time the text detector (engine only)")
    parser.add_argument("--det-pages", type=int, default=48, help="rendered pages the detector is compared on")
    parser.add_argument("--stem", default="real_onnx")
    args = parser.parse_args()
    results: dict[str, Any] = {"requirement": REQUIREMENT, "cpu_flags": cpu_flags()}
    with tempfile.TemporaryDirectory() as tmp:
        results["cls"] = cls_chain(model_from_wheel(REQUIREMENT, CLS, args.cache), args, Path(tmp))
        if args.det:
            results["det"] = det_engine(model_from_wheel(REQUIREMENT, DET, args.cache), args, Path(tmp))
    header, rows, notes = render(results, args)
    print(save(args.stem, "Real-world ONNX: PP-OCR from the rapidocr-onnxruntime wheel", header, rows, results, notes))


if __name__ == "__main__":
    main()
