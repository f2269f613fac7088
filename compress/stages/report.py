"""`report`: `report.md` comparing every model of the run (metric, params, MACs, size, latency)."""

from __future__ import annotations

from pydantic import Field

from compress.config import ModelName, StageConfig
from compress.context import RunContext
from compress.fsio import write_text
from compress.manifest import environment
from compress.report.markdown import render_markdown
from compress.report.summary import build_summary
from compress.stages.base import Stage, register_stage

__all__ = ["Report"]


class ReportConfig(StageConfig):
    title: str | None = Field(None, description="report title; default: 'Compression report: <task>'")
    reference: ModelName | None = Field(
        None, description="model the others are compared with (ratios); default: 'teacher' if the run has one"
    )


@register_stage
class Report(Stage):
    """Write report.md comparing every model of the run with the reference model."""

    name = "report"
    Config = ReportConfig

    def requires(self) -> list[str]:
        return [self.cfg.reference] if self.cfg.reference else []

    def run(self, ctx: RunContext, cfg: ReportConfig) -> RunContext:
        summary = build_summary(ctx)
        title = cfg.title or f"Compression report: {ctx.task.name}"
        path = ctx.out("report.md")
        write_text(
            path,
            render_markdown(
                summary, title=title, environment=environment(), reference=cfg.reference or ("teacher" if "teacher" in ctx.models else None)
            ),
        )
        ctx.metrics["report"] = ctx.relative(path)
        ctx.log(f"  report: {ctx.relative(path)}")
        return ctx
