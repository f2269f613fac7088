"""Typed records of what a run produced: one `ModelRecord` per model, saying what the model *is* (`kind`:
fp32 or int8, its format, its files) and carrying typed results that stages set through
`RunContext.update_model`. A number lives in one place: stage records keep stage-level facts only.
`summary.json` is a `Summary` of these records (see `edge-compress schema summary`)."""

from compress.records.model import ModelKind, ModelRecord, merge_scores
from compress.records.results import (
    Agreement,
    Controller,
    Deployed,
    Int8FormatRecord,
    LatencyStats,
    Memory,
    NodeShare,
    PointLatency,
    PrunePoint,
    PruneResult,
    QuantResult,
    RecurrentLayer,
    Score,
    Speed,
    TargetBench,
    Training,
    Tuning,
)
from compress.records.summary import SUMMARY_SCHEMA, MetricInfo, RunEnvironment, Summary, SummaryEntry
from compress.records.verdict import GateCheck, Speedup, Standing, Verdict

__all__ = [
    "ModelRecord",
    "ModelKind",
    "Score",
    "Agreement",
    "Training",
    "Controller",
    "PruneResult",
    "PrunePoint",
    "PointLatency",
    "NodeShare",
    "QuantResult",
    "Int8FormatRecord",
    "Deployed",
    "RecurrentLayer",
    "Speed",
    "LatencyStats",
    "Memory",
    "Tuning",
    "TargetBench",
    "Summary",
    "SummaryEntry",
    "RunEnvironment",
    "MetricInfo",
    "merge_scores",
    "Verdict",
    "Standing",
    "Speedup",
    "GateCheck",
    "SUMMARY_SCHEMA",
]
