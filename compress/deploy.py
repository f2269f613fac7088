"""What every stage that writes an ONNX model does with it, in one place (`stages/` only calls it).

FP32 export: `export_onnx` (dynamic batch, `onnx.checker` full check) and `parity` (outputs compared
with PyTorch on real inputs). INT8 files: `check_int8`: onnx.checker, a run in ONNX Runtime, the
deployed-arithmetic check (agreement with the model it stands for through this host's kernels and
through the file's exact arithmetic, judged for the target CPU, see `compress.quant.verify`), the
operators ORT still runs in float, and whether INT8 is faster than its FP32 source here."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from compress.bench.runners import Sessions, TargetSpec
from compress.bench.runners.ort import OrtCpuRunner
from compress.context import RunContext
from compress.errors import ArtifactError, RecipeError, first_line
from compress.fsio import atomic_path
from compress.models.spec import ModelSpec
from compress.records import Agreement, Deployed, ModelRecord, QuantResult, Score, Speed

__all__ = [
    "export_onnx",
    "parity",
    "agreement",
    "check_int8",
    "Int8Check",
    "add_int8_model",
    "exact_outputs",
    "describe_check",
    "host_kernels",
    "PAYS_OFF",
]

PAYS_OFF = 1.10
"""INT8 below this speedup over its FP32 source is reported as not paying off on the target."""


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path, *, opset: int, exporter: str) -> None:
    """Write `model` as ONNX with a dynamic batch axis and check it; the file appears only if both succeed."""
    import onnx

    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs: dict[str, Any] = {"input_names": ["input"], "output_names": ["output"], "opset_version": opset}
        if exporter == "dynamo":
            kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
        else:
            kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # its fused kernel has no ONNX form; the plain path exports
        try:
            torch.onnx.export(model, (example,), str(tmp), dynamo=exporter == "dynamo", **kwargs)
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except onnx.checker.ValidationError as err:
            raise ArtifactError(f"exported {path.name} fails onnx.checker: {first_line(err)}") from None


def parity(model: nn.Module, predict, batch: torch.Tensor, *, classification: bool) -> Agreement:
    """Compare PyTorch and ONNX Runtime outputs on `batch`: max/mean absolute difference, top-1 agreement."""
    with torch.no_grad():
        expected = model(batch).numpy()
    got = predict(batch.numpy())
    close = agreement(expected, got, classification=classification)
    return close.model_copy(update={"mean_abs_diff": float(np.abs(expected - got).mean())})


def agreement(a: np.ndarray, b: np.ndarray, *, classification: bool) -> Agreement:
    """How closely two models' outputs on the same inputs agree: max absolute difference, top-1 agreement."""
    top1 = float(np.mean(a.argmax(1) == b.argmax(1))) if classification else None
    return Agreement(samples=len(a), max_abs_diff=float(np.abs(a - b).max()), top1_agreement=top1)


@dataclass(frozen=True)
class Int8Check:
    """What `check_int8` found: agreement with the reference through this host's kernels, the test
    scores through them, the ORT operator census, the deployed-arithmetic verdict and the speed."""

    vs_reference: Agreement | None
    test: dict[str, float]
    integer_ops: dict[str, int]
    float_ops: dict[str, int]
    float_nodes: list[Any]
    deployed: Deployed
    speed: Speed | None

    def found(self) -> dict[str, Any]:
        """The `QuantResult` fields this check fills in."""
        names = ("vs_reference", "integer_ops", "float_ops", "float_nodes", "deployed", "speed")
        return {name: getattr(self, name) for name in names}


def add_int8_model(
    ctx: RunContext, name: str, source: ModelRecord, dest: Path, quant: QuantResult, checked: Int8Check, scores: list[Score] | None = None
) -> ModelRecord:
    """Record the checked INT8 file `dest`, made from `source`, as model `name`: kind int8, its ONNX file
    (no PyTorch weights: it exists as that file), the test scores through this host's kernels (plus `scores`)."""
    test = [Score(split="test", runtime="onnxruntime", metric=k, value=v) for k, v in checked.test.items()]
    record = ModelRecord(
        name=name,
        stage=ctx.stage_id,
        spec=source.spec,
        kind="int8",
        parent=source.name,
        onnx=ctx.relative(dest),
        params=source.params,
        macs=source.macs,
        size_bytes=dest.stat().st_size,
        scores=[*(scores or []), *test],
        quant=quant,
    )
    ctx.put_model(record)
    return record


def add_onnx_model(ctx: RunContext, name: str, spec: ModelSpec) -> ModelRecord:
    """Bring the ONNX file `spec.onnx` into the run as FP32 model `name`: checked against the task (one
    input of the task's shape, one row of scores), copied into the stage folder, scored through ONNX Runtime."""
    from compress.models.onnx_file import onnx_signature

    source = Path(spec.onnx or "").expanduser()
    signature = onnx_signature(source)
    signature.check_task(f"ONNX file {source.name}", ctx.task.input_shape, ctx.task.num_outputs)
    dest = ctx.out(f"{name}.onnx")
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)
    scores = ctx.task.evaluate(cpu_runner(ctx.target).load(dest), "test")
    record = ModelRecord(
        name=name,
        stage=ctx.stage_id,
        spec=spec,
        onnx=ctx.relative(dest),
        params=signature.params,
        size_bytes=dest.stat().st_size,
        scores=[Score(split="test", runtime="onnxruntime", metric=k, value=v) for k, v in scores.items()],
    )
    ctx.put_model(record)
    metric = ctx.task.metric.name
    ctx.log(
        f"  {name}: {source} (input {signature.input_name!r}), {record.params:,} parameters, test {metric} (ONNX Runtime) {scores[metric]:.4f}"
    )
    return record


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
) -> Int8Check:
    """Check the INT8 file at `path` (deleted again if it is unusable). A model left entirely in float
    is an error (`why_float`, `fix`), and so is one whose deployed agreement is below `min_agreement`."""
    import onnx

    from compress.quant import float_ops

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as err:
        path.unlink(missing_ok=True)
        raise ArtifactError(f"quantized {path.name} fails onnx.checker: {first_line(err)}") from None
    ops = float_ops(path, ctx.target.num_threads)
    if not set(ops["integer_ops"]) - {"QuantizeLinear", "DequantizeLinear"}:
        path.unlink()
        raise RecipeError(f"{label} would run entirely in float ({why_float})", fix=fix)
    predict = host_kernels(path, ctx.target)
    deployed = _deployed(ctx, path, predict, reference, min_agreement=min_agreement, what=what)
    if not deployed.passed:
        path.unlink()
        raise _refusal(deployed, label, what)
    speed = _speed(ctx, path, fp32) if fp32 is not None else None
    test = ctx.task.evaluate(predict, "test")
    return Int8Check(deployed.host_kernels, test, ops["integer_ops"], ops["float_ops"], ops["float_nodes"], deployed, speed)


def _deployed(ctx: RunContext, path: Path, predict, reference, *, min_agreement: float, what: str) -> Deployed:
    """Agreement with `reference` on the test split through this host's kernels, the exact arithmetic and
    (a saturating target built on a host that is not) the emulated target kernels, and the verdict."""
    import onnx

    from compress.quant.arithmetic import weight_range
    from compress.quant.verify import judge, portability_note

    classification = ctx.task.kind == "classification"
    x = ctx.task.example_input(len(ctx.task.test), split="test").numpy()
    host_out, ref_out = predict(x), reference(x)
    proto = onnx.load(str(path))
    exact_out, exact_how = exact_outputs(proto, x, ctx.target)
    cpu = ctx.target.deploy_cpu()
    emulated_out, emulated_how = None, None
    if cpu.kind.saturates and not cpu.host.saturates:
        from compress.quant.emulate import emulated_outputs

        emulated_out, emulated_how = emulated_outputs(path, x)

    def agree(a: np.ndarray | None, b: np.ndarray | None = ref_out) -> Agreement | None:
        return agreement(b, a, classification=classification) if a is not None and b is not None else None

    found = {"host_kernels": agree(host_out), "exact": agree(exact_out), "emulated": agree(emulated_out)}
    top1 = {k: v.top1_agreement if v else None for k, v in found.items()}
    weights = weight_range(proto)
    verdict = judge(
        cpu, weights, host=top1["host_kernels"], exact=top1["exact"], emulated=top1["emulated"], min_agreement=min_agreement, what=what
    )
    return Deployed(
        cpu=cpu.kind.name,
        host=cpu.host.name,
        **found,
        exact_method=exact_how,
        emulated_method=emulated_how,
        host_vs_exact=agree(host_out, exact_out),
        weights=weights.as_dict(),
        min_agreement=min_agreement,
        portability=portability_note(cpu, weights),
        **verdict.as_dict(),
    )


def _refusal(deployed: Deployed, label: str, what: str) -> ArtifactError:
    if deployed.deployed is None:
        return ArtifactError(f"{label}: INT8 agreement with {what} cannot be checked here ({deployed.cause})", fix=deployed.fix)
    return ArtifactError(
        f"{label}: INT8 agreement with {what} {deployed.deployed:.4f} through the {deployed.basis} "
        f"< min_agreement {deployed.min_agreement} ({deployed.cause})",
        fix=deployed.fix,
    )


def exact_outputs(model: Any, x: np.ndarray, target: TargetSpec | int = 1) -> tuple[np.ndarray | None, str]:
    """`model`'s outputs for `x` in its exact arithmetic (ONNX Runtime, optimizations disabled, on the
    `exact_model` form), or None and the reason it has none."""
    import tempfile

    import onnx

    from compress.quant.arithmetic import exact_model

    exact, how = exact_model(model)
    if exact is None:
        return None, how
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "exact.onnx"
        onnx.save(exact, str(path))
        return cpu_runner(target, optimization="disabled").load(path)(x), how


def host_kernels(path: Path, target: TargetSpec) -> Callable[[np.ndarray], np.ndarray]:
    """The INT8 file as this host runs it: ONNX Runtime with the run target's settings, its integer kernels."""
    return cpu_runner(target).load(path)


def cpu_runner(target: TargetSpec | int, **settings: Any) -> OrtCpuRunner:
    """ONNX Runtime on this CPU with the run target's settings (threads, graph optimization level), plus
    `settings`: where stages run ONNX files to check them, whichever target the benchmark times."""
    spec = target if isinstance(target, TargetSpec) else TargetSpec(threads=target)
    return OrtCpuRunner(spec.model_copy(update={"name": "ort-cpu", **settings}))


def _speed(ctx: RunContext, path: Path, fp32: Path) -> Speed:
    """INT8 against its FP32 source at the task's batch (up to 32), timed interleaved on this host."""
    from compress.bench.compare import compare_interleaved
    from compress.bench.timing import TimingConfig

    cpu = ctx.target.deploy_cpu()
    if not cpu.is_host:
        return Speed(measured=False, why=f"this host is {cpu.host.name}, the target {cpu.kind.name}: its speed differs")
    batch = min(32, len(ctx.task.test))
    x = ctx.task.example_input(batch, split="test").numpy()
    runner = cpu_runner(ctx.target)
    cfg = TimingConfig(warmup=5, warmup_time_s=0.02, rounds=6, min_iters=10, min_time_s=0.03, fresh_sessions=False)
    result = compare_interleaved(Sessions(runner, path, fresh=False), Sessions(runner, fp32, fresh=False), x, cfg)
    speedup = 1 / result.ratio
    return Speed(
        measured=True,
        batch=batch,
        threads=runner.threads,
        speedup=speedup,
        ci=[1 / result.ci_high, 1 / result.ci_low],
        int8_ms=float(np.median(result.candidate_ms)),
        fp32_ms=float(np.median(result.reference_ms)),
        pays_off=speedup >= PAYS_OFF,
    )


def describe_check(checked: Int8Check, what: str = "FP32") -> str:
    """The stage's lines about a checked INT8 file (one fact per line, each indented like the first): agreement,
    where it was measured, speed, float ops left."""
    d, speed = checked.deployed, checked.speed
    parts = []
    if d.deployed is not None:
        exact = d.exact.top1_agreement if d.exact else None
        where = f"{d.basis}, {d.host}" if d.basis == "host kernels" else d.basis
        shown = f"; exact arithmetic {exact:.4f}" if exact is not None else ""
        parts.append(f"agreement with {what} {d.deployed:.4f} ({where}{shown})")
    if d.cause:
        parts.append(f"warning: {d.cause}" + (f"; {d.fix}" if d.fix else ""))
    if d.portability:
        parts.append(f"note: {d.portability}")
    if speed and speed.measured:
        verdict = "" if speed.pays_off else ": INT8 does not pay off on this CPU"
        pace = f"{speed.speedup:.2f}x faster" if speed.speedup >= 1 else f"{1 / speed.speedup:.2f}x slower"
        parts.append(f"{pace} than its FP32 file at batch {speed.batch}{verdict}")
    elif speed:
        parts.append(f"speed not measured ({speed.why})")
    left = ", ".join(f"{op} x{c}" for op, c in checked.float_ops.items()) or "none"
    return "\n    ".join([*parts, f"float ops left: {left}"])
