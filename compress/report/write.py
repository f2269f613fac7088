"""Write a report folder: report.md (figures as PNG files beside it) and a self-contained report.html
(the same Markdown rendered to HTML, figures embedded as data URIs). The `report` stage and
`edge-compress report RUN_DIR` both call `write_report`; the latter rebuilds the summary from the
run's manifest, so nothing is re-run."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from compress.fsio import atomic_path, check_writable, write_text
from compress.records import RunEnvironment, Summary
from compress.report.markdown import render_markdown
from compress.report.plots import FIGURES, render_all
from compress.report.run_info import RunInfo, run_info

__all__ = ["write_report", "write_run_report", "load_run", "render_html"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em; color: #1d2433; }
 h1 { font-size: 1.6em; border-bottom: 2px solid #264653; padding-bottom: .2em; }
 h2 { font-size: 1.2em; margin-top: 1.8em; color: #264653; }
 table { border-collapse: collapse; margin: .6em 0; font-size: 12.5px; display: block; max-width: 100%; overflow-x: auto; }
 th, td { border: 1px solid #d0d6e0; padding: 3px 7px; text-align: left; }
 th { background: #eef2f6; } tr:nth-child(even) td { background: #f8fafc; }
 code { background: #f1f3f5; padding: 0 3px; border-radius: 3px; }
 pre { background: #f6f8fa; border: 1px solid #e3e7ee; padding: .6em .8em; overflow-x: auto; font-size: 12px; line-height: 1.35; }
 pre code { background: none; padding: 0; }
 details { margin: .6em 0; } summary { cursor: pointer; color: #264653; font-weight: 600; }
 h3 { font-size: 1.05em; margin-top: 1.4em; color: #264653; }
 img { max-width: 100%; border: 1px solid #e3e7ee; }
 blockquote { border-left: 4px solid #e76f51; margin: .5em 0; padding: .2em .8em; background: #fff5f1; }
 footer { margin-top: 3em; color: #6b7280; font-size: 12px; }
</style></head>
<body>
{{ body }}
<footer>Written by edge-compress {{ version }}. Self-contained: figures are embedded.</footer>
</body></html>
"""


def render_html(markdown_text: str, title: str) -> str:
    import jinja2
    import markdown

    from compress import __version__

    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code", "md_in_html"])
    template = jinja2.Environment(autoescape=True).from_string(_PAGE)
    return template.render(title=title, body=jinja2.filters.Markup(body), version=__version__)


def write_report(
    summary: Summary,
    environment: RunEnvironment | dict[str, Any],
    folder: Path,
    *,
    title: str,
    reference: str | None,
    run: RunInfo | None = None,
) -> list[Path]:
    """report.md, plots/*.png and report.html in `folder`; returns the two report paths. `run`: the run's
    date, stage times and recipe (compress.report.run_info), shown when given."""
    environment = RunEnvironment.model_validate(environment)
    figures = render_all(summary, reference)
    for name, png in figures.items():
        with atomic_path(folder / "plots" / f"{name}.png") as tmp:
            tmp.write_bytes(png)
    for name in set(FIGURES) - set(figures):  # a figure an earlier report drew that this one has no data for
        (folder / "plots" / f"{name}.png").unlink(missing_ok=True)
    linked = {name: f"plots/{name}.png" for name in figures}
    embedded = {name: "data:image/png;base64," + base64.b64encode(png).decode() for name, png in figures.items()}
    md_path, html_path = folder / "report.md", folder / "report.html"
    common = {"title": title, "environment": environment, "reference": reference, "run": run}
    write_text(md_path, render_markdown(summary, images=linked, **common))
    html_md = render_markdown(summary, images=embedded, **common)
    write_text(html_path, render_html(html_md, title))
    return [md_path, html_path]


def _check_out(run_dir: Path, out: Path) -> None:
    """A report goes to a folder of its own: inside the run folder only its `report/`, since the other
    folders belong to the stages (and --overwrite refuses a run folder holding files no stage wrote)."""
    from compress.errors import ArtifactError

    check_writable(out, "report folder", folder=True)
    inside = out.resolve().is_relative_to(run_dir.resolve())
    if inside and out.resolve().relative_to(run_dir.resolve()).parts[:1] != ("report",):
        raise ArtifactError(
            f"report folder {out} is inside the run folder {run_dir}, whose other folders belong to its stages",
            fix=f"leave --out out ({run_dir / 'report'}) or give a folder outside the run",
        )


def load_run(run_dir: Path) -> tuple[Summary, dict[str, Any], RunInfo]:
    """(summary, environment, run information) of a run folder, rebuilt from its manifest's recorded model changes."""
    from compress.bench.runners import TargetSpec
    from compress.config import Acceptance
    from compress.errors import ArtifactError
    from compress.manifest import MANIFEST, Manifest
    from compress.report.summary import summary_of

    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise ArtifactError(
            f"{run_dir} is not a run folder (no {MANIFEST})", fix="give the folder 'edge-compress run' wrote, e.g. runs/digits_edge"
        )
    manifest = Manifest.load(path)
    environment = dict(manifest.environment)
    for stage in manifest.stages:
        if stage.type == "benchmark" and "environment" in stage.metrics:
            environment["targets"] = stage.metrics["environment"]
    task = manifest.recipe.get("task", {})
    target = TargetSpec.model_validate(manifest.recipe.get("target") or {})
    name = task.get("name") or task.get("env") or task.get("factory") or "custom"
    acceptance = manifest.recipe.get("acceptance")
    acceptance = Acceptance.model_validate(acceptance) if acceptance else None
    summary = summary_of(name, manifest.metric, target, manifest.records().values(), acceptance)
    return summary, environment, run_info(manifest, Path(run_dir))


def write_run_report(
    run_dir: str | Path, *, out: str | Path | None = None, title: str | None = None, reference: str | None = None
) -> list[Path]:
    summary, environment, run = load_run(Path(run_dir))
    names = [m.name for m in summary.models]
    if reference is not None and reference not in names:
        from compress.errors import RecipeError
        from compress.registry import did_you_mean

        raise RecipeError(
            f"--reference {reference!r} is not a model of this run; {did_you_mean(reference, names)}models: {', '.join(names)}"
        )
    reference = reference or ("teacher" if "teacher" in names else None)
    title = title or f"Compression report: {summary.task}"
    out = Path(out) if out is not None else Path(run_dir) / "report"
    _check_out(Path(run_dir), out)
    return write_report(summary, environment, out, title=title, reference=reference, run=run)
