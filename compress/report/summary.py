"""`summary.json`: every model the run produced, as typed records (`compress.records.Summary`), for CI
and scripts. `edge-compress schema summary` prints its JSON Schema."""

from __future__ import annotations

from collections.abc import Iterable

from compress.bench.runners import TargetSpec
from compress.context import RunContext
from compress.records import SUMMARY_SCHEMA, MetricInfo, ModelRecord, Summary

__all__ = ["build_summary", "summary_of", "SUMMARY_SCHEMA"]


def build_summary(ctx: RunContext) -> Summary:
    metric = MetricInfo(name=ctx.task.metric.name, higher_is_better=ctx.task.metric.higher_is_better)
    return summary_of(ctx.task.name, metric, ctx.target, ctx.models.values())


def summary_of(task: str, metric: MetricInfo | None, target: TargetSpec, records: Iterable[ModelRecord]) -> Summary:
    """The summary from plain records: what a run context holds, or what a manifest replays."""
    return Summary.of(task, metric, target.name, target.num_threads, list(records))
