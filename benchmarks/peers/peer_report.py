"""Writing benchmarks/results/<stem>.md and .json for benchmarks/peers.py: one table per model, a paragraph
per model built from the measurements (who is fastest, who is most accurate, what each tool leaves in
float and why), and what each tool's defaults are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _results import RESULTS, provenance

from compress.fsio import write_json, write_text

HEADER = ["tool", "INT8 format", "size KiB", "test accuracy", "agreement with FP32", "b1 p50 ms [p25-p75]", "b32 p50 ms [p25-p75]"]
HEADER += ["speedup vs FP32 b1 / b32", "ops ORT runs in float (integer kernels)"]

# why a tool's file leaves operators in float on ORT CPU (x86), given that it does (see NOTES)
REASONS = {
    "onnxruntime": "with int8 activations ORT on x86 fuses a convolution only where it can rewrite the int8 Quantize/Dequantize pair "
    "to uint8, which it does only for an activation with one consumer, not one that fans out to a residual branch",
    "optimum-onnx": "its operator list (ORT's QDQRegistry) has no Add or GlobalAveragePool, so the network's tail is not quantized",
    "nncf": "no Quantize/Dequantize pair between the Flatten and the classifier, so ORT cannot fuse a QGemm",
    "inc": "PT2E leaves out the Quantize/Dequantize pairs around many convolutions (one that feeds an add or the pooling, "
    "which the exporter writes as ReduceMean; on the 1-D residual model all of them), and ORT fuses a convolution only "
    "between a Dequantize and a Quantize",
}
REASONS["olive-ai"] = REASONS["onnxruntime"]

NOTES = """## How the tools differ (their defaults, as the drivers call them)

- **ours** (`edge-compress quantize --cpu auto`): ONNX Runtime's `quant_pre_process` (shape inference, graph
  optimisation), then `quantize_static` in QDQ with uint8 activations and per-channel int8 weights (u8s8, what a VNNI
  CPU gets; AVX2 and AVX-512 targets without VNNI get 7-bit weights), MinMax, and every operator type of the graph on the
  quantize list, so the residual adds, the pooling and the classifier run on integer kernels too. Checked after it is
  written (agreement with FP32 through this CPU's kernels and in exact arithmetic) and timed against FP32.
- **onnxruntime** (`quantize_static` defaults) and **olive-ai** (`OnnxStaticQuantization` defaults, which add ORT's
  pre-processing and `get_qdq_config`): QDQ, int8 activations and int8 weights (s8s8), per-tensor. Their files have
  the same operators. On x86 an ORT session does not fuse int8 activations into QLinearConv (`session.qdqisint8allowed`
  is on by default only for Arm); it first rewrites int8 Quantize/Dequantize pairs to uint8 (`QDQS8ToU8Transformer`),
  but only where the QuantizeLinear has a single consumer. Where an activation fans out (a residual block's input feeds
  both its branch and the add), the pair stays int8, the convolution's input and output types differ, and it runs in
  float between Dequantize and Quantize: slower than FP32. A plain chain of convolutions (the mnist1d student) converts
  fully and is as fast as ours. The rows marked `session qdqisint8allowed=1` run the same file with that option: every
  operator becomes an integer kernel, and the model gets slower still, because this CPU's int8 instructions (VNNI's
  VPDPBUSD) multiply unsigned by signed bytes and ORT's s8s8 kernels on x86 are much slower than its u8s8 ones.
- **optimum-onnx** (`AutoQuantizationConfig.avx512_vnni(is_static=True)`, this CPU's ISA by lscpu): the same format as
  ours (QDQ u8s8, per-channel, symmetric weights), but the quantizer is called on the raw graph with ORT's QDQRegistry as
  its operator list, which lacks Add and GlobalAveragePool; `quantize_static` given the same list leaves the same tail
  (last Add, Relu, pooling) in float.
- **nncf** (defaults: preset performance, fast bias correction, `subset_size` = the calibration samples): per-channel
  symmetric int8 weights; uint8 activations after a ReLU and int8 ones where values go negative (the input, convolution
  outputs feeding an add), which ORT still fuses here; the classifier Gemm stays float. Its accuracy loss on mnist1d
  (0.5-1 point, against 0-0.5 for ours) has a cause this benchmark does not identify.
- **inc** (`StaticQuantConfig()` defaults: u8s8, per-channel, MinMax) on the PyTorch model (PT2E), exported by
  torch.onnx's dynamo exporter because INC has no ONNX export for PT2E: the weights stay float in the file (behind
  QuantizeLinear, Clip and DequantizeLinear nodes; the file is larger than FP32, in two parts: .onnx and .onnx.data),
  and convolutions without a Quantize/Dequantize pair on both sides stay float, so it is accurate and slow on ORT.

Installing: each of optimum-onnx, olive-ai and nncf has its own virtual environment (`--setup`: torch==2.13.0 first,
then the tool with this environment's onnxruntime, after `pip install --dry-run --report` shows torch stays). olive-ai
0.13.0 imports `requests` (its telemetry) without declaring it: without it `import olive` fails with
`ModuleNotFoundError: No module named 'requests'`, so `--setup` installs it; the drivers set `OLIVE_DISABLE_TELEMETRY=1`.
"""


def ops_text(ops: dict[str, int]) -> str:
    return ", ".join(f"{op} x{n}" for op, n in sorted(ops.items())) or "none"


def table(result: dict[str, Any]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for name, row in result["rows"].items():
        if "latency" not in row:
            lines.append(f"| {name} | **failed**: `{row['tool'].get('error', 'no file')}` |" + " - |" * (len(HEADER) - 2))
            continue
        lat, census = row["latency"], row["census"]
        ms = [f"{lat[b]['p50_ms']:.4f} [{lat[b]['p25_ms']:.4f}-{lat[b]['p75_ms']:.4f}]" for b in ("1", "32")]
        speed = "1 (reference)" if name == "FP32" else f"{lat['1']['speedup']:.2f}x / **{lat['32']['speedup']:.2f}x**"
        fmt, agreement = ("FP32", "-") if name == "FP32" else (row["format"]["label"], f"{row['agreement']:.4f}")
        floating = f"{ops_text(census['float_ops'])} ({sum(census['integer_kernels'].values())})"
        cells = [name, fmt, f"{row['size_bytes'] / 1024:.1f}", f"{row['accuracy']:.4f}", agreement, *ms, speed, floating]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _level(a: dict[str, float], b: dict[str, float]) -> bool:
    """Two batch-32 speedups whose p25-p75 ranges over the rounds overlap: no difference this run can show."""
    return a["speedup_p25"] <= b["speedup_p75"] and b["speedup_p25"] <= a["speedup_p75"]


def summary(key: str, result: dict[str, Any]) -> str:
    """Who is fastest and most accurate on this model, and what each tool leaves in float, and why."""
    measured = {n: r for n, r in result["rows"].items() if n != "FP32" and "latency" in r}
    rows = {n: r for n, r in measured.items() if "session_config" not in r}
    if not rows:
        return f"**{key}**: no tool produced a file."
    b32 = {n: r["latency"]["32"] for n, r in measured.items()}
    ranked = sorted(rows, key=lambda n: -b32[n]["speedup"])
    top, fp32 = ranked[0], result["rows"]["FP32"]
    level = [n for n in ranked[1:] if _level(b32[n], b32[top])]
    text = f"**{key}** (FP32 accuracy {fp32['accuracy']:.4f}): speedup over FP32 at batch 32: "
    text += ", ".join(f"{n} {b32[n]['speedup']:.2f}x" for n in ranked) + f". {top} is fastest"
    text += (f", level within the rounds' spread with {', '.join(level)}" if level else "") + "."
    if "ours" in rows and top != "ours" and "ours" not in level:
        text += f" {top} beats ours by {100 * (b32[top]['speedup'] / b32['ours']['speedup'] - 1):.0f}% (median of interleaved rounds)."
    text += f" At batch 1 the fastest is {max(rows, key=lambda n: rows[n]['latency']['1']['speedup'])}."
    best = max(r["accuracy"] for r in rows.values())
    below = [f"{n} {r['accuracy']:.4f}" for n, r in sorted(rows.items(), key=lambda i: -i[1]["accuracy"]) if r["accuracy"] < best]
    if below:
        text += f" Most accurate: {', '.join(n for n in rows if rows[n]['accuracy'] == best)} ({best:.4f}); then {', '.join(below)}."
    else:
        text += f" Every tool keeps test accuracy {best:.4f}."
    groups: dict[tuple[str, str], list[str]] = {}
    for n, r in rows.items():
        if r["census"]["float_ops"]:
            groups.setdefault((ops_text(r["census"]["float_ops"]), REASONS.get(n, "see below")), []).append(n)
    for (ops, why), names in groups.items():
        text += f" {' and '.join(names)} {'leave' if len(names) > 1 else 'leaves'} {ops} in float: {why}."
    for n, r in measured.items():
        if "session_config" in r:
            text += f" The {n.split(' (')[0]} file with `session.qdqisint8allowed=1`: {ops_text(r['census']['float_ops'])} in float, {b32[n]['speedup']:.2f}x."
    return text


def write(results: dict[str, Any], settings: dict[str, Any], cpu: dict[str, Any], info: dict[str, Any] | None = None) -> Path:
    """results/<stem>.md, and the .json for a new run; `info` (date, command, environment) is a saved run's when re-rendering."""
    rendering, info = info is not None, info or provenance()
    env, versions = info["environment"], {}
    for result in results.values():
        for row in result["rows"].values():
            versions |= row.get("tool", {}).get("versions", {})
    flags = ", ".join(f"{f} {'yes' if on else 'no'}" for f, on in cpu["flags"].items())
    lines = [
        "# Our INT8 path against the tools users would pick instead (ORT CPU)",
        "",
        f"- date: {info['date']}",
        f"- host: {cpu['model']}, {env['cores']} cores, {env['platform']}; lscpu flags: {flags}",
        f"- command: `{info['command']}` (drivers in benchmarks/peers/; venvs from `python benchmarks/peers.py --setup`)",
        "- measuring environment: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v),
        "- tool versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
        f"- every file measured in one process: ONNX Runtime {env['packages']['onnxruntime']} CPUExecutionProvider, "
        f"{settings['threads']} intra-op thread(s), ORT_ENABLE_ALL; calibration: the task's first {settings['samples']} training "
        "inputs, the same for every tool; accuracy and agreement (top-1 with the FP32 file) on the whole test split; latency: "
        f"{settings['rounds']} interleaved rounds (every file once per round, on a fresh session, order alternating), each "
        "round's p50, then the median over rounds, [p25-p75] over rounds; speedup = median over rounds of FP32 p50 / INT8 p50. "
        "Float ops: the graph ORT runs after optimising the file (layout moves aside), with the number of integer kernels in "
        "brackets (Quantize/DequantizeLinear not counted). The machine is shared: absolute times can move between runs; "
        "the ratios are interleaved for that reason.",
    ]
    for key, result in results.items():
        model = result["model"]
        lines += ["", f"## {key} (`{model['recipe']}` recipe, `{model['name']}`)", "", *table(result), "", summary(key, result)]
    lines += ["", NOTES]
    md = RESULTS / f"{settings['stem']}.md"
    write_text(md, "\n".join(lines).rstrip() + "\n")
    if not rendering:
        write_json(RESULTS / f"{settings['stem']}.json", {**info, "lscpu": cpu, "args": settings, "results": results})
    return md
