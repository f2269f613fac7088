"""`summary.json`: every model the run produced, as typed records (`compress.records.Summary`), for CI
and scripts. `edge-compress schema summary` prints its JSON Schema."""

from __future__ import annotations

from collections.abc import Iterable

from compress.bench.runners import TargetSpec
from compress.config import Acceptance
from compress.context import RunContext
from compress.data.task import TaskData
from compress.records import SUMMARY_SCHEMA, MetricInfo, ModelRecord, Summary
from compress.report.verdict import decide

__all__ = ["build_summary", "summary_of", "metric_info", "SUMMARY_SCHEMA"]


def metric_info(task: TaskData) -> MetricInfo:
    return MetricInfo(name=task.metric.name, higher_is_better=task.metric.higher_is_better, test_samples=len(task.test))


def build_summary(ctx: RunContext) -> Summary:
    return summary_of(ctx.task.name, metric_info(ctx.task), ctx.target, ctx.models.values(), ctx.acceptance)


def summary_of(
    task: str, metric: MetricInfo | None, target: TargetSpec, records: Iterable[ModelRecord], acceptance: Acceptance | None = None
) -> Summary:
    """The summary from plain records: what a run context holds, or what a manifest replays; with the
    verdict (the recommended model, the acceptance gates) once the reference is benchmarked."""
    summary = Summary.of(task, metric, target.name, target.num_threads, list(records))
    return summary.model_copy(update={"verdict": decide(summary, acceptance)})
