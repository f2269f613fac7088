"""What every stage that writes an INT8 ONNX model does with it: onnx.checker, a run in ONNX Runtime, the
deployed-arithmetic check (agreement with the model it stands for through this host's kernels and
through the file's exact arithmetic, judged for the target CPU, see `compress.quant.verify`), the
operators ORT still runs in float, and whether INT8 is faster than its FP32 source here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from compress.bench.runners import Sessions
from compress.bench.runners.ort import OrtCpuRunner
from compress.context import RunContext
from compress.errors import ArtifactError, RecipeError
from compress.stages.export import agreement

__all__ = ["check_int8", "describe_check", "describe_float_ops", "host_kernels", "PAYS_OFF"]

PAYS_OFF = 1.10
"""INT8 below this speedup over its FP32 source is reported as not paying off on the target."""


def check_int8(
    ctx: RunContext,
    path: Path,
    reference: Callable[[np.ndarray], np.ndarray],
    *,
    label: str,
    why_float: str,
    fix: str,
    min_agreement: float,
    fp32: Path | None = None,
    what: str = "FP32",
) -> dict[str, Any]:
    """Check the INT8 file at `path` (deleted again if it is unusable) and return `{vs_reference, test,
    integer_ops, float_ops, float_nodes, deployed, speed}`. A model left entirely in float is an error
    (`why_float`, `fix`), and so is one whose deployed agreement is below `min_agreement`."""
    import onnx

    from compress.quant import float_ops

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as err:
        path.unlink(missing_ok=True)
        raise ArtifactError(f"quantized {path.name} fails onnx.checker: {str(err).splitlines()[0]}") from None
    ops = float_ops(path, ctx.target.num_threads)
    if not set(ops["integer_ops"]) - {"QuantizeLinear", "DequantizeLinear"}:
        path.unlink()
        raise RecipeError(f"{label} would run entirely in float ({why_float})", fix=fix)
    predict = host_kernels(path, ctx.target.num_threads)
    deployed = _deployed(ctx, path, predict, reference, min_agreement=min_agreement, what=what)
    if not deployed["passed"]:
        path.unlink()
        raise _refusal(deployed, label, what)
    speed = _speed(ctx, path, fp32) if fp32 is not None else None
    close = deployed["host_kernels"]
    return {"vs_reference": close, "test": ctx.task.evaluate(predict, "test"), "deployed": deployed, "speed": speed, **ops}


def _deployed(ctx: RunContext, path: Path, predict, reference, *, min_agreement: float, what: str) -> dict[str, Any]:
    """Agreement with `reference` on the test split through this host's kernels, the exact arithmetic and
    (a saturating target built on a host that is not) the emulated target kernels, and the verdict."""
    import onnx

    from compress.quant.arithmetic import exact_outputs, weight_range
    from compress.quant.verify import judge, portability_note

    classification = ctx.task.kind == "classification"
    x = ctx.task.example_input(len(ctx.task.test), split="test").numpy()
    host_out, ref_out = predict(x), reference(x)
    proto = onnx.load(str(path))
    exact_out, exact_how = exact_outputs(proto, x, ctx.target.num_threads)
    cpu = ctx.target.deploy_cpu()
    emulated_out, emulated_how = None, None
    if cpu.kind.saturates and not cpu.host.saturates:
        from compress.quant.emulate import emulated_outputs

        emulated_out, emulated_how = emulated_outputs(path, x)

    def agree(a: np.ndarray | None, b: np.ndarray | None = ref_out) -> dict[str, float] | None:
        return agreement(b, a, classification=classification) if a is not None and b is not None else None

    found = {"host_kernels": agree(host_out), "exact": agree(exact_out), "emulated": agree(emulated_out)}
    top1 = {k: (v or {}).get("top1_agreement") for k, v in found.items()}
    weights = weight_range(proto)
    verdict = judge(
        cpu, weights, host=top1["host_kernels"], exact=top1["exact"], emulated=top1["emulated"], min_agreement=min_agreement, what=what
    )
    return {
        "cpu": cpu.kind.name,
        "host": cpu.host.name,
        **found,
        "exact_method": exact_how,
        "emulated_method": emulated_how,
        "host_vs_exact": agree(host_out, exact_out),
        "weights": weights.as_dict(),
        "min_agreement": min_agreement,
        "portability": portability_note(cpu, weights),
        **verdict.as_dict(),
    }


def _refusal(deployed: dict[str, Any], label: str, what: str) -> ArtifactError:
    if deployed["deployed"] is None:
        return ArtifactError(f"{label}: INT8 agreement with {what} cannot be checked here ({deployed['cause']})", fix=deployed["fix"])
    return ArtifactError(
        f"{label}: INT8 agreement with {what} {deployed['deployed']:.4f} through the {deployed['basis']} "
        f"< min_agreement {deployed['min_agreement']} ({deployed['cause']})",
        fix=deployed["fix"],
    )


def host_kernels(path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """The INT8 file as this host runs it: ONNX Runtime, all graph optimizations, its integer kernels."""
    return OrtCpuRunner(threads).load(path)


def _speed(ctx: RunContext, path: Path, fp32: Path) -> dict[str, Any]:
    """INT8 against its FP32 source at the task's batch (up to 32), timed interleaved on this host."""
    from compress.bench.compare import compare_interleaved
    from compress.bench.timing import TimingConfig

    cpu = ctx.target.deploy_cpu()
    if not cpu.is_host:
        return {"measured": False, "why": f"this host is {cpu.host.name}, the target {cpu.kind.name}: its speed differs"}
    batch = min(32, len(ctx.task.test))
    x = ctx.task.example_input(batch, split="test").numpy()
    runner = OrtCpuRunner(ctx.target)
    cfg = TimingConfig(warmup=5, warmup_time_s=0.02, rounds=6, min_iters=10, min_time_s=0.03, fresh_sessions=False)
    result = compare_interleaved(Sessions(runner, path, fresh=False), Sessions(runner, fp32, fresh=False), x, cfg)
    speedup = 1 / result.ratio
    return {
        "measured": True,
        "batch": batch,
        "threads": runner.threads,
        "speedup": speedup,
        "ci": [1 / result.ci_high, 1 / result.ci_low],
        "int8_ms": float(np.median(result.candidate_ms)),
        "fp32_ms": float(np.median(result.reference_ms)),
        "pays_off": speedup >= PAYS_OFF,
    }


def describe_float_ops(ops: dict[str, Any]) -> str:
    return ", ".join(f"{op} x{c}" for op, c in ops["float_ops"].items()) or "none"


def describe_check(checked: dict[str, Any], what: str = "FP32") -> str:
    """The stage's line about a checked INT8 file: agreement, where it was measured, speed."""
    d, speed = checked["deployed"], checked["speed"]
    parts = []
    if d["deployed"] is not None:
        exact = (d["exact"] or {}).get("top1_agreement")
        where = f"{d['basis']}, {d['host']}" if d["basis"] == "host kernels" else d["basis"]
        shown = f"; exact arithmetic {exact:.4f}" if exact is not None else ""
        parts.append(f"agreement with {what} {d['deployed']:.4f} ({where}{shown})")
    if d["cause"]:
        parts.append(f"warning: {d['cause']}" + (f"; {d['fix']}" if d["fix"] else ""))
    if d.get("portability"):
        parts.append(f"note: {d['portability']}")
    if speed and speed.get("measured"):
        verdict = "" if speed["pays_off"] else ": INT8 does not pay off on this CPU"
        parts.append(f"{speed['speedup']:.2f}x its FP32 file at batch {speed['batch']}{verdict}")
    elif speed:
        parts.append(f"speed not measured ({speed['why']})")
    return ", ".join(parts)
