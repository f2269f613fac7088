"""What stages measure about a model, as typed records: scores, agreement, training, pruning,
quantization and benchmark results (`ModelRecord`'s fields, see `compress.records`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    """Base of every typed record: unknown fields are an error, so a misspelt one cannot pass silently."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class Score(Record):
    """One metric value: on which split, computed through which runtime (torch, onnxruntime, a benchmark
    target such as ort-cpu, fake-quant, calibrated-only)."""

    split: str
    runtime: str
    metric: str
    value: float | None


class Agreement(Record):
    """How closely two models' outputs agree on the same inputs."""

    samples: int
    max_abs_diff: float
    top1_agreement: float | None = None
    mean_abs_diff: float | None = None


class Decision(Record):
    epoch: int
    temperature: float
    alpha: float
    feature_pair: int | None
    reward: float | None
    val: float
    agreement: float | None
    state: dict[str, float]


class TrialParams(Record):
    temperature: float
    alpha: float
    feature_pair: int | None = None


class Trial(Record):
    index: int
    params: TrialParams
    value: float


class ControllerSettings(BaseModel):
    """The controller's recipe settings (`distill.controller`); the bounds and reward are what reports read."""

    model_config = ConfigDict(extra="allow", json_schema_serialization_defaults_required=True)

    kind: Literal["learned", "search"]
    temperature: tuple[float, float]
    alpha: tuple[float, float]
    reward: Literal["gain", "level"]


class Controller(Record):
    """What tuned the distillation knobs: the learned controller's decisions or the search's trials."""

    kind: Literal["learned", "search"]
    config: ControllerSettings
    decisions: list[Decision] | None = None
    trials: list[Trial] | None = None
    epochs_per_trial: int | None = None
    best_trial: int | None = None


class Training(Record):
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


class PointLatency(Record):
    p50: float
    p90: float
    batch_size: int


class PrunePoint(Record):
    step: int
    ratio: float = Field(description="fraction of the prunable layers' output channels removed, as measured on the model")
    channels: int = Field(description="output channels of the prunable layers (the classifier's outputs are not counted)")
    params: int
    macs: int
    latency_ms: PointLatency
    val: float = Field(description="the task metric on the validation split")
    final: bool = False


class NodeShare(Record):
    node: str
    op: str
    share: float
    ms: float | None = None


class PruneGoal(Record):
    kind: Literal["ratio", "params", "macs", "latency_ms"]
    value: float
    batch_size: int


class PruneResult(Record):
    importance: str
    target: PruneGoal
    target_met: bool
    curve: list[PrunePoint]
    speedup: float
    mac_reduction: float
    warnings: list[str] = Field(default_factory=list)
    dominant_nodes: list[NodeShare] = Field(default_factory=list)
    layers: dict[str, float] = Field(
        default_factory=dict, description="per pruned layer (module path), the fraction of its output channels removed"
    )
    final_latency_ms: PointLatency | None = Field(
        None, description="the pruned model's latency in the verdict's interleaved rounds (a latency target is judged on it)"
    )


class Int8FormatRecord(Record):
    activations: Literal["uint8", "int8"]
    weights: Literal["int8", "uint8"]
    reduce_range: bool
    per_channel: bool
    label: str
    saturation_safe: bool


class Deployed(Record):
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


class Speed(Record):
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


class TuneTrial(Record):
    index: int
    kind: str
    method: str
    per_channel: bool
    exclude_nodes: list[str]
    metric: float
    loss: float
    passed: bool
    seconds: float


class Tuning(Record):
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


class RecurrentLayer(Record):
    """A recurrent layer (GRU, LSTM, RNN) of a quantized model, and whether its INT8 file runs it on integer kernels."""

    node: str
    op: str
    weight_share: float = Field(description="its share of the model's weights")
    integer: bool = Field(description="ONNX Runtime runs it on integer kernels (LSTM in dynamic mode); otherwise it stays float")
    why: str | None = Field(None, description="why it stays float")


class QuantResult(Record):
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
    recurrent: list[RecurrentLayer] = Field(default_factory=list, description="its recurrent layers, and which of them stay float")


class LatencyStats(Record):
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
    interleaved: bool = Field(
        False, description="round i of every model in this benchmark ran back to back: round medians pair across models"
    )
    round_group: str | None = Field(
        None, description="id of the interleaved timing these rounds belong to: they pair only with rounds of the same id"
    )


class Memory(Record):
    """Resident memory of the measuring process (MiB) in a short window per model and target, before the
    timing: its load, the untimed first call and the warm-up at each batch size. The timed rounds
    interleave the models, so no window of them belongs to one model."""

    peak_rss_mb: float | None = None
    rss_growth_mb: float | None = None
    scope: str | None = None


class TargetBench(Record):
    """What the benchmark measured on one target."""

    runner: dict[str, Any] = Field(description="how the target ran the model (runtime, provider, threads, options)")
    latency_ms: dict[str, LatencyStats] = Field(default_factory=dict, description="per batch size")
    memory: Memory | None = None
    skipped: str | None = Field(None, description="why the model was not run on this target")
    agreement: float | None = Field(
        None,
        description="an INT8 model: agreement with its FP32 parent's outputs through this target on the benchmark's split "
        "(top-1 agreement; regression: 1 - relative error)",
    )
    flag: str | None = Field(None, description="set when `agreement` is below the bound (0.98): what fell, and where")
