"""Typed records of what a run produced: one `ModelRecord` per model, saying what the model *is* (`kind`:
fp32 or int8, its format, its files) and carrying typed results that stages set through
`RunContext.update_model`. A number lives in one place: stage records keep stage-level facts only.
`summary.json` is a `Summary` of these records (see `edge-compress schema summary`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from compress.models.spec import ModelSpec

__all__ = [
    "ModelRecord",
    "ModelKind",
    "Score",
    "Agreement",
    "Training",
    "Controller",
    "PruneResult",
    "PrunePoint",
    "QuantResult",
    "Int8FormatRecord",
    "Deployed",
    "Speed",
    "LatencyStats",
    "TargetBench",
    "Summary",
    "SummaryEntry",
    "RunEnvironment",
    "MetricInfo",
    "merge_scores",
    "SUMMARY_SCHEMA",
]

ModelKind = Literal["fp32", "int8"]
SUMMARY_SCHEMA = 2


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Score(_Record):
    """One metric value: on which split, computed through which runtime (torch, onnxruntime, a benchmark
    target such as ort-cpu, fake-quant, calibrated-only)."""

    split: str
    runtime: str
    metric: str
    value: float | None


class Agreement(_Record):
    """How closely two models' outputs agree on the same inputs."""

    samples: int
    max_abs_diff: float
    top1_agreement: float | None = None
    mean_abs_diff: float | None = None


class Decision(_Record):
    epoch: int
    temperature: float
    alpha: float
    feature_pair: int | None
    reward: float | None
    val: float
    agreement: float | None
    state: dict[str, float]


class TrialParams(_Record):
    temperature: float
    alpha: float
    feature_pair: int | None = None


class Trial(_Record):
    index: int
    params: TrialParams
    value: float


class ControllerSettings(BaseModel):
    """The controller's recipe settings (`distill.controller`); the bounds and reward are what reports read."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["learned", "search"]
    temperature: tuple[float, float]
    alpha: tuple[float, float]
    reward: Literal["gain", "level"]


class Controller(_Record):
    """What tuned the distillation knobs: the learned controller's decisions or the search's trials."""

    kind: Literal["learned", "search"]
    config: ControllerSettings
    decisions: list[Decision] | None = None
    trials: list[Trial] | None = None
    epochs_per_trial: int | None = None
    best_trial: int | None = None


class Training(_Record):
    """How a PyTorch model was trained (train, load, distill, prune's fine-tuning, qad)."""

    epochs_run: int | None = None
    best_epoch: int | None = None
    best_val: float | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)
    resumed_after_epoch: int | None = None
    data_parallel: dict[str, Any] | None = None
    teacher_cache: bool | None = None
    params_vs_teacher: float | None = None
    controller: Controller | None = None
    dagger: dict[str, int] | None = None
    policy: dict[str, Any] | None = Field(None, description="train_policy: algorithm, timesteps, best step, ONNX-copy check")


class PointLatency(_Record):
    p50: float
    p90: float
    batch_size: int


class PrunePoint(_Record):
    step: int
    ratio: float
    channels: int
    params: int
    macs: int
    latency_ms: PointLatency
    val: float = Field(description="the task metric on the validation split")
    final: bool = False


class NodeShare(_Record):
    node: str
    op: str
    share: float
    ms: float | None = None


class PruneGoal(_Record):
    kind: Literal["ratio", "params", "macs", "latency_ms"]
    value: float
    batch_size: int


class PruneResult(_Record):
    importance: str
    target: PruneGoal
    target_met: bool
    curve: list[PrunePoint]
    speedup: float
    mac_reduction: float
    warnings: list[str] = Field(default_factory=list)
    dominant_nodes: list[NodeShare] = Field(default_factory=list)


class Int8FormatRecord(_Record):
    activations: Literal["uint8", "int8"]
    weights: Literal["int8", "uint8"]
    reduce_range: bool
    per_channel: bool
    label: str
    saturation_safe: bool


class Deployed(_Record):
    """The deployed-arithmetic check of an INT8 file (see compress.quant.verify) and its verdict."""

    cpu: str
    host: str
    host_kernels: Agreement | None
    exact: Agreement | None
    emulated: Agreement | None = None
    exact_method: str | None = None
    emulated_method: str | None = None
    host_vs_exact: Agreement | None = None
    weights: dict[str, Any]
    min_agreement: float
    portability: str | None = None
    deployed: float | None
    basis: str
    cause: str | None
    fix: str | None
    passed: bool


class Speed(_Record):
    """INT8 against its FP32 source, timed interleaved on this host (or why it was not)."""

    measured: bool
    why: str | None = None
    batch: int | None = None
    threads: int | None = None
    speedup: float | None = None
    ci: list[float] | None = None
    int8_ms: float | None = None
    fp32_ms: float | None = None
    pays_off: bool | None = None


class TuneTrial(_Record):
    index: int
    kind: str
    method: str
    per_channel: bool
    exclude_nodes: list[str]
    metric: float
    loss: float
    passed: bool
    seconds: float


class Tuning(_Record):
    """Accuracy-driven tuning of an INT8 model: ours (trials over calibration, per-channel and float layers)
    or neural-compressor's autotune (its trials' metrics)."""

    split: str
    metric: str
    fp32: float
    allowed_loss: float | None = None
    met: bool | None = None
    chosen: TuneTrial | None = None
    trials: list[TuneTrial] = Field(default_factory=list)
    backend: str | None = None
    relative_tolerable_loss: float | None = None
    trial_metrics: list[Any] | None = None


class QuantResult(_Record):
    """How an INT8 model was made and checked."""

    source: str = Field(description="the FP32 model it was made from")
    method: Literal["static", "dynamic", "qad"]
    backend: Literal["ort", "inc", "qad"] = "ort"
    teacher: str | None = None
    calibration: dict[str, Any] | None = None
    format: Int8FormatRecord
    format_reason: str
    exclude_nodes: list[str] = Field(default_factory=list)
    reference: Literal["fp32 onnx", "fake-quant"] = Field(description="what `vs_reference` compares with")
    vs_reference: Agreement | None
    integer_ops: dict[str, int]
    float_ops: dict[str, int]
    float_nodes: list[Any] = Field(default_factory=list)
    deployed: Deployed | None = None
    speed: Speed | None = None
    tuning: Tuning | None = None


class LatencyStats(_Record):
    """Per-call latency of one target and batch size, in milliseconds."""

    p50: float
    p90: float
    p99: float | None = None
    mean: float | None = None
    std: float | None = None
    cv: float | None = None
    n: int | None = None
    throughput: float | None = None
    round_p50: list[float] | None = None
    round_cv: float | None = None
    noisy: bool = False
    quantiles: list[float] | None = None
    device_peak_mb: float | None = None
    loads: int | None = None


class Memory(_Record):
    """Resident memory of the measuring process over all of one target's timing (MiB)."""

    peak_rss_mb: float | None = None
    rss_growth_mb: float | None = None
    scope: str | None = None


class TargetBench(_Record):
    """What the benchmark measured on one target."""

    runner: dict[str, Any] = Field(description="how the target ran the model (runtime, provider, threads, options)")
    latency_ms: dict[str, LatencyStats] = Field(default_factory=dict, description="per batch size")
    memory: Memory | None = None
    skipped: str | None = Field(None, description="why the model was not run on this target")


class ModelRecord(_Record):
    """A model the run produced: how to rebuild it, its files (relative to the run folder), what it is,
    and what was measured."""

    name: str
    stage: str
    spec: ModelSpec
    kind: ModelKind = "fp32"
    checkpoint: str | None = None
    onnx: str | None = None
    params: int | None = None
    macs: int | None = None
    size_bytes: int | None = None
    scores: list[Score] = Field(default_factory=list)
    parity: Agreement | None = Field(None, description="ONNX Runtime vs PyTorch on real test inputs (FP32 export)")
    training: Training | None = None
    prune: PruneResult | None = None
    quant: QuantResult | None = None
    bench: dict[str, TargetBench] = Field(default_factory=dict, description="per benchmark target, in the order measured")

    def files(self) -> list[str]:
        return [p for p in (self.checkpoint, self.onnx) if p]

    @property
    def format(self) -> str:
        """`fp32`, or the INT8 format's label (u8s8, u8s8+7bit, ...)."""
        return self.quant.format.label if self.quant is not None else self.kind

    def score(self, metric: str, *, runtime: str | None = None, split: str | None = None) -> Score | None:
        """The score of `metric` through `runtime` (default: the first benchmarked target) on `split`
        (default: test, else whichever split it was measured on)."""
        runtime = runtime or next(iter(self.bench), None)
        found = [s for s in self.scores if s.metric == metric and s.runtime == runtime and split in (None, s.split)]
        return next((s for s in found if s.split == "test"), found[0] if found else None)


def merge_scores(scores: list[Score], values: dict[str, float], *, split: str, runtime: str) -> list[Score]:
    """`scores` with those of one (split, runtime) replaced by `values`."""
    kept = [s for s in scores if (s.split, s.runtime) != (split, runtime)]
    return kept + [Score(split=split, runtime=runtime, metric=k, value=v) for k, v in values.items()]


class DeployCpuInfo(_Record):
    target: str
    requested: str
    saturating_u8s8: bool
    host: str
    host_features: list[str]


class TargetFingerprint(BaseModel):
    """A benchmark target's environment (compress.bench.fingerprint); reports read these fields."""

    model_config = ConfigDict(extra="allow")

    runtime: str | None = None
    provider: str | None = None
    threads: int | None = None
    precision_hint: str | None = None
    cpu_flags: list[str] = Field(default_factory=list)


class RunEnvironment(BaseModel):
    """Where a run was made (compress.manifest.environment), plus its benchmark targets' fingerprints."""

    model_config = ConfigDict(extra="allow")

    python: str | None = None
    platform: str | None = None
    cpu: str | None = None
    cores: int | None = None
    torch_threads: int | None = None
    cuda: bool | None = None
    packages: dict[str, str | None] = Field(default_factory=dict)
    deploy_cpu: DeployCpuInfo | None = None
    targets: dict[str, TargetFingerprint] = Field(default_factory=dict)


class MetricInfo(_Record):
    name: str
    higher_is_better: bool


class SummaryEntry(ModelRecord):
    """A model in `summary.json`: its record, plus its headline figure for readers of the file."""

    metric: Score | None = Field(None, description="the task's metric through the first benchmarked target (test split first)")


class Summary(_Record):
    """`summary.json`: every model of the run, for CI and scripts."""

    schema_version: int = SUMMARY_SCHEMA
    task: str
    metric: MetricInfo | None = Field(None, description="the task's metric")
    target: str
    threads: int
    models: list[SummaryEntry]

    @classmethod
    def of(cls, task: str, metric: MetricInfo | None, target: str, threads: int, records: list[ModelRecord]) -> Summary:
        fields = list(ModelRecord.model_fields)
        entries = [SummaryEntry(**{k: getattr(r, k) for k in fields}, metric=r.score(metric.name) if metric else None) for r in records]
        return cls(task=task, metric=metric, target=target, threads=threads, models=entries)

    def model(self, name: str) -> SummaryEntry | None:
        return next((m for m in self.models if m.name == name), None)

    def value(self, model: SummaryEntry, runtime: str | None = None) -> float | None:
        """The model's metric through `runtime` (default: its headline figure), test split first."""
        found = model.metric if runtime is None else model.score(self.metric.name, runtime=runtime) if self.metric else None
        return found.value if found else None
