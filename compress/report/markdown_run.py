"""The report's account of the run itself, as Markdown: the opening line (date, duration), each stage's
start and duration, every model's files, the recipe as YAML, and the environment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from compress.records import ModelRecord, RunEnvironment
from compress.report.run_info import RunInfo

__all__ = ["run_line", "run_section", "files_section", "environment_section", "duration"]


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _when(stamp: str | None, *, date: bool = True) -> str:
    if not stamp:
        return "n/a"
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    zone = moment.tzname() or ""
    return moment.strftime("%Y-%m-%d %H:%M" if date else "%H:%M:%S") + (f" {zone}" if date and zone else "")


def run_line(run: RunInfo | None) -> list[str]:
    if run is None:
        return []
    recorded = [s for s in run.stages if s.duration_s is not None]
    running = len(run.stages) - len(recorded)  # the report stage, writing this, has no time yet
    also = f" (of {len(run.stages)}; the report's own is not counted)" if running else ""
    return [
        f"Run `{run.name}`, started {_when(run.created)}; its {len(recorded)} timed stages{also} took {duration(run.total_s)} "
        "(stage times, files and the recipe are under **Run** at the end).",
        "",
    ]


def run_section(run: RunInfo | None, models: list[ModelRecord]) -> list[str]:
    if run is None:
        return files_section(models, None)
    lines = ["", "## Run", "", f"Run folder `{run.run_dir}`, started {_when(run.created)}.", ""]
    lines += ["| stage | type | started | took | status |", "|---|---|---|---|---|"]
    for s in run.stages:
        took = duration(s.duration_s) if s.duration_s is not None else "writing this report"
        status = "reused from an earlier run (its first time shown)" if s.status == "reused" else s.status
        lines.append(f"| {s.id} | {s.type} | {_when(s.started, date=False)} | {took} | {status} |")
    lines.append(f"| **total** | | | **{duration(run.total_s)}** | |")
    lines += files_section(models, run.run_dir)
    lines += [
        "",
        "### Recipe",
        "",
        '<details markdown="1"><summary>The recipe as validated (defaults filled in, unset options omitted)</summary>',
    ]
    lines += ["", "```yaml", _yaml(run.recipe).rstrip("\n"), "```", "", "</details>"]
    return lines


def files_section(models: list[ModelRecord], run_dir: str | None) -> list[str]:
    with_files = [m for m in models if m.files()]
    if not with_files:
        return []
    where = f"relative to the run folder `{run_dir}`" if run_dir else "relative to the run folder"
    lines = ["", "### Files", "", f"Paths {where}.", "", "| model | format | ONNX | checkpoint (FP32 weights) |", "|---|---|---|---|"]
    for m in with_files:
        lines.append(f"| {m.name} | {m.format} | {_path(m.onnx)} | {_path(m.checkpoint)} |")
    return lines


def _path(path: str | None) -> str:
    return f"`{path}`" if path else "-"


def _yaml(recipe: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(_set_only(recipe), sort_keys=False, default_flow_style=None, width=110)


def _set_only(value: Any) -> Any:
    """Unset options dropped; keys that JSON turned into strings ("32" of `min_speedup: {32: 6}`) shown as written."""
    if isinstance(value, dict):
        return {int(k) if isinstance(k, str) and k.isdigit() else k: _set_only(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_set_only(v) for v in value]
    return value


def environment_section(env: RunEnvironment) -> list[str]:
    lines = ["", "## Environment", "", f"- CPU: {env.cpu} ({env.cores} cores)", f"- Python {env.python}"]
    cpu = env.deploy_cpu
    if cpu:
        asked = "this machine" if cpu.requested == "auto" else "set in the recipe"
        lines.append(f"- Deployment CPU (INT8 formats are chosen for it): `{cpu.target}`, {asked}; this host: `{cpu.host}`")
        lines.append(f"    - host features: {' '.join(cpu.host_features)}")
    packages = [f"{k} {v}" for k, v in env.packages.items() if v]
    lines += ["- packages: " + ", ".join(packages)] if packages else []
    for target, fp in env.targets.items():
        extra = f", precision {fp.precision_hint}" if fp.precision_hint else ""
        lines.append(f"- target `{target}`: {fp.runtime}, {fp.provider}, {fp.threads} threads{extra}")
        if fp.cpu_flags:
            lines.append(f"    - CPU flags: {' '.join(fp.cpu_flags)}")
    return [*lines, ""]
