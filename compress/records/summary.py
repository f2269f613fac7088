"""`summary.json` (`Summary`) and the environment a report shows (`RunEnvironment`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from compress.records.model import ModelRecord
from compress.records.results import Record, Score
from compress.records.verdict import Verdict

SUMMARY_SCHEMA = 2


class DeployCpuInfo(Record):
    target: str
    requested: str
    saturating_u8s8: bool
    host: str
    host_features: list[str]


class TargetFingerprint(BaseModel):
    """A benchmark target's environment (compress.bench.fingerprint); reports read these fields."""

    model_config = ConfigDict(extra="allow", json_schema_serialization_defaults_required=True)

    runtime: str | None = None
    provider: str | None = None
    threads: int | None = None
    precision_hint: str | None = None
    cpu_flags: list[str] = Field(default_factory=list)


class RunEnvironment(BaseModel):
    """Where a run was made (compress.manifest.environment), plus its benchmark targets' fingerprints."""

    model_config = ConfigDict(extra="allow", json_schema_serialization_defaults_required=True)

    python: str | None = None
    platform: str | None = None
    cpu: str | None = None
    cores: int | None = None
    torch_threads: int | None = None
    cuda: bool | None = None
    packages: dict[str, str | None] = Field(default_factory=dict)
    deploy_cpu: DeployCpuInfo | None = None
    targets: dict[str, TargetFingerprint] = Field(default_factory=dict)


class MetricInfo(Record):
    name: str
    higher_is_better: bool
    test_samples: int | None = Field(None, description="size of the test split (a metric change in samples)")


class SummaryEntry(ModelRecord):
    """A model in `summary.json`: its record, plus its headline figure for readers of the file."""

    metric: Score | None = Field(
        None,
        description="the task's metric through the first benchmarked target (test split first); an INT8 model made after the "
        "benchmark: through ONNX Runtime on this host, as its check measured it",
    )


class Summary(Record):
    """`summary.json`: every model of the run, for CI and scripts."""

    schema_version: Literal[2] = SUMMARY_SCHEMA
    task: str
    metric: MetricInfo | None = Field(None, description="the task's metric")
    target: str
    threads: int
    models: list[SummaryEntry]
    verdict: Verdict | None = Field(None, description="the recommended model and the acceptance gates (after a benchmark)")

    @classmethod
    def of(cls, task: str, metric: MetricInfo | None, target: str, threads: int, records: list[ModelRecord]) -> Summary:
        fields = list(ModelRecord.model_fields)
        entries = [SummaryEntry(**{k: getattr(r, k) for k in fields}, metric=_headline(r, metric)) for r in records]
        return cls(task=task, metric=metric, target=target, threads=threads, models=entries)

    def model(self, name: str) -> SummaryEntry | None:
        return next((m for m in self.models if m.name == name), None)

    def value(self, model: SummaryEntry, runtime: str | None = None) -> float | None:
        """The model's metric through `runtime` (default: its headline figure), test split first."""
        found = model.metric if runtime is None else model.score(self.metric.name, runtime=runtime) if self.metric else None
        return found.value if found else None


def _headline(record: ModelRecord, metric: MetricInfo | None) -> Score | None:
    if metric is None:
        return None
    return record.headline(metric.name)
