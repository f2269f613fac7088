"""`report`: report.md and a self-contained report.html that decide: the verdict, each model against the
reference as ratios, the metric-latency Pareto plot per batch size, training curves, parity, float
operators, every latency with its spread (noisy ones marked), and the run itself (stage times from the
manifest, files, recipe, environment). Same code as `edge-compress report RUN_DIR`."""

from __future__ import annotations

from pydantic import Field

from compress.config import ModelName, StageConfig
from compress.context import RunContext
from compress.manifest import environment, now
from compress.report.run_info import StageTime, load_run_info
from compress.report.summary import build_summary
from compress.report.write import write_report
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

    shows_verdict = True
    name = "report"
    Config = ReportConfig

    def requires(self) -> list[str]:
        return [self.cfg.reference] if self.cfg.reference else []

    def run(self, ctx: RunContext, cfg: ReportConfig) -> RunContext:
        title = cfg.title or f"Compression report: {ctx.task.name}"
        reference = cfg.reference or ("teacher" if "teacher" in ctx.models else None)
        env = {**environment(ctx.target.deploy_cpu().as_dict()), "targets": self._targets(ctx)}
        # the manifest holds every earlier stage; this one is recorded only once it returns
        running = StageTime(id=ctx.stage_id or self.name, type=self.name, status="running", started=now())
        run = load_run_info(ctx.run_dir, running=running)
        folder = ctx.out("report.md").parent
        md, html = write_report(build_summary(ctx), env, folder, title=title, reference=reference, run=run)
        ctx.metrics["report"] = ctx.relative(md)
        ctx.metrics["report_html"] = ctx.relative(html)
        ctx.log(f"  report: {ctx.relative(md)}, {ctx.relative(html)}")
        return ctx

    @staticmethod
    def _targets(ctx: RunContext) -> dict:
        """Environment fingerprints of the benchmarked targets, from the models' runner records."""
        from compress.bench.fingerprint import fingerprint

        runners = {}
        for record in ctx.models.values():
            for target, bench in record.bench.items():
                runners.setdefault(target, fingerprint(bench.runner))
        return runners
