"""The report's quantization section: per INT8 model how it was made, in which format, how closely it
agrees where it will run (and in exact arithmetic), whether it beats its FP32 source here, what ONNX
Runtime still runs in float, and the tuning trials."""

from __future__ import annotations

from compress.records import Deployed, QuantResult, Speed, Tuning
from compress.report.words import blockquotes, ratio_words

__all__ = ["quant_section"]


def _deployed_cell(d: Deployed | None) -> str:
    if d is None or d.deployed is None:
        return "-"
    exact = d.exact.top1_agreement if d.exact else None
    where = d.basis if d.cpu in d.basis else f"{d.basis}, {d.cpu}"
    return f"{d.deployed:.4f} ({where})" + (f" / {exact:.4f}" if exact is not None else "")


def _speed_cell(speed: Speed | None) -> str:
    if speed is None:
        return "-"
    if not speed.measured:
        return "not measured"
    return f"{ratio_words(speed.speedup, 'faster', 'slower')} at b{speed.batch}"


def _quant_notes(name: str, q: QuantResult) -> list[str]:
    notes = []
    d, speed = q.deployed, q.speed
    if d and d.cause:
        notes.append(f"> **Warning:** `{name}`: {d.cause}" + (f"; {d.fix}." if d.fix else "."))
    if d and d.portability:
        notes.append(f"> **Note:** `{name}` was {d.portability}.")
    for r in (r for r in q.recurrent if not r.integer):
        notes.append(f"> **Note:** `{name}`: {r.op} `{r.node}` ({r.weight_share:.0%} of the weights) stays float: {r.why}.")
    if speed and speed.measured and not speed.pays_off:
        notes.append(
            f"> **INT8 does not pay off here:** `{name}` runs at {speed.speedup:.2f}x the speed of its FP32 file at batch {speed.batch} "
            f"({speed.int8_ms:.3f} vs {speed.fp32_ms:.3f} ms) on this `{d.host if d else 'host'}` CPU."
        )
    return notes


def _unmeasured_note(quantized: list[tuple[str, QuantResult]]) -> list[str]:
    """One line for the INT8 files whose speed was not measured here (the reason is the run's, not theirs)."""
    unmeasured = [(n, q.speed.why) for n, q in quantized if q.speed and not q.speed.measured]
    if not unmeasured:
        return []
    names = ", ".join(f"`{n}`" for n, _ in unmeasured)
    return [f"> Speed against FP32 not measured for {names}: {unmeasured[0][1]}."]


def quant_section(quantized: list[tuple[str, QuantResult]]) -> list[str]:
    """Per INT8 model: how it was made and in which format, how closely it agrees where it will run (and
    in exact arithmetic), whether it is faster than its FP32 source here, and what ORT still runs in
    float (the first place to look when INT8 is not faster)."""
    head = (
        "| model | from | method | format | agreement (top-1 / max abs diff; qad: with its fake-quantized twin) | deployed (basis) / exact "
        "| vs FP32 speed | integer ops | float ops ORT runs |"
    )
    lines = ["", "## Quantization", "", head, "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for name, q in quantized:
        close = q.vs_reference
        agree = f"{close.top1_agreement:.4f} / " if close and close.top1_agreement is not None else ""
        gap = f"{close.max_abs_diff:.3g}" if close else "nan"
        integer = ", ".join(f"{op} x{c}" for op, c in q.integer_ops.items() if op not in ("QuantizeLinear", "DequantizeLinear"))
        left = ", ".join(f"{op} x{c}" for op, c in q.float_ops.items()) or "none"
        lines.append(
            f"| `{name}` | `{q.source}` | {_method(q)} | {q.format.label} | {agree}{gap} | {_deployed_cell(q.deployed)} | {_speed_cell(q.speed)} "
            f"| {integer} | {left} |"
        )
        notes += _quant_notes(name, q)
    notes += _unmeasured_note(quantized)
    lines += blockquotes(notes)
    for name, q in quantized:
        lines += _tuning_lines(name, q.tuning)
    return lines


def _method(q: QuantResult) -> str:
    method = q.method if q.method != "static" else f"static, {(q.calibration or {}).get('method', '')}"
    method += f" ({q.backend})" if q.backend not in ("ort", "qad") else ""
    return method + (", tuned" if q.tuning else "")


def _tuning_lines(name: str, t: Tuning | None) -> list[str]:
    if t is None or not t.trials:
        return []
    lines = ["", f"Tuning `{name}` ({len(t.trials)} trials, {'met' if t.met else 'not met'}; val {t.metric} FP32 {t.fp32:.4f}):", ""]
    for trial in t.trials:
        kept = f", float: {', '.join(trial.exclude_nodes)}" if trial.exclude_nodes else ""
        mark = " (passed)" if trial.passed else ""
        lines.append(f"- {trial.index} {trial.kind}: {trial.method}, per-channel {trial.per_channel}{kept}: {trial.metric:.4f}{mark}")
    return lines
