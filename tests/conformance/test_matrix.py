"""The conformance matrix (issue 17): every architecture family in `families.py` through every stage.
Each cell either works within its bounds or refuses in one line that says why, and the outcome is the
one `matrix.EXPECTED` (and so the README) promises. Tiny epochs: the bounds are about honesty and
integer kernels, not accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from compress.errors import CompressError
from compress.models.spec import build_model
from compress.pipeline import Pipeline
from compress.stages import Benchmark, Export, Load, Prune, Qad, Quantize, Train
from tests.conformance.families import FAMILIES
from tests.conformance.matrix import BELOW_BOUND, EXPECTED, INT8_MODE, OK, STAGES

pytestmark = pytest.mark.slow

QUICK = {"warmup": 2, "rounds": 3, "min_iters": 5, "min_time_s": 0.01}
NO_FINETUNE = {"epochs": 0, "final_epochs": 0}
MAX_RATIO = 0.6
MIN_AGREEMENT = 0.98
INT8_CELLS = {"int8 static", "int8 dynamic", "qad"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Per family, a checkpoint trained for a few epochs (built once, on first use)."""
    cache: dict[str, str] = {}

    def get(family: str) -> str:
        if family not in cache:
            folder = tmp_path_factory.mktemp(family)
            train = Train(name="model", model={"factory": FAMILIES[family]}, epochs=3)
            manifest = Pipeline([train], task="digits", seed=0).run(folder / "run", quiet=True)
            cache[family] = str(folder / "run" / manifest.records()["model"].checkpoint)
        return cache[family]

    return get


def _run(family: str, checkpoint: str, stages: list, folder: Path):
    load = Load(name="model", model={"factory": FAMILIES[family], "checkpoint": checkpoint})
    return Pipeline([load, *stages], task="digits", seed=0).run(folder, quiet=True)


def _channels(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def _check_prune(family: str, manifest, folder: Path, target: dict) -> None:
    """The reported ratio is the measured fraction removed, max_ratio holds per layer, target_met is true
    only when measured so."""
    from compress.data.builtin import TASKS

    record = manifest.records()["model_pruned"]
    prune, task = record.prune, TASKS.get("digits")()
    before = dict(build_model(record.spec.model_copy(update={"factory": FAMILIES[family], "checkpoint": None}), task).named_modules())
    after = dict(build_model(record.spec.model_copy(update={"checkpoint": str(folder / record.checkpoint)}), task).named_modules())
    layers = prune.layers
    assert layers and max(layers.values()) <= MAX_RATIO + 1e-9, layers
    removed = 1 - sum(_channels(after[n]) for n in layers) / sum(_channels(before[n]) for n in layers)
    assert abs(prune.curve[-1].ratio - removed) <= 0.01, (prune.curve[-1].ratio, removed)
    for name, fraction in layers.items():
        assert abs(fraction - (1 - _channels(after[name]) / _channels(before[name]))) < 1e-3, name
    if target["kind"] == "ratio":
        assert prune.target_met == (prune.curve[-1].ratio >= target["value"] - 1e-9)
    else:
        assert prune.target_met == (prune.final_latency_ms.p50 <= target["value"])
    assert prune.target_met or any("not met" in w for w in prune.warnings)


def prune_ratio(family: str, checkpoint: str, folder: Path) -> None:
    target = {"kind": "ratio", "value": 0.5}
    stage = Prune(model="model", target=target, steps=2, max_ratio=MAX_RATIO, finetune=NO_FINETUNE, timing=QUICK)
    _check_prune(family, _run(family, checkpoint, [stage], folder), folder, target)


def prune_latency(family: str, checkpoint: str, folder: Path) -> None:
    """A target a little under the unpruned model's own latency (timed first, the same way)."""
    from compress.bench.runners import TargetSpec
    from compress.context import RunContext
    from compress.data.builtin import TASKS
    from compress.models.spec import ModelSpec
    from compress.prune.measure import interleaved
    from compress.stages.prune import QUICK_TIMING

    task = TASKS.get("digits")()
    model = build_model(ModelSpec(factory=FAMILIES[family], checkpoint=checkpoint), task).eval()
    ctx = RunContext(run_dir=folder, task=task, target=TargetSpec())
    target = {"kind": "latency_ms", "value": 0.8 * interleaved([model], ctx, 32, QUICK_TIMING)[0]["p50"], "batch_size": 32}
    stage = Prune(model="model", target=target, step_ratio=0.25, max_ratio=MAX_RATIO, finetune=NO_FINETUNE, timing=QUICK)
    _check_prune(family, _run(family, checkpoint, [stage], folder / "run"), folder / "run", target)


def _check_int8(record) -> None:
    assert record.kind == "int8" and record.quant.integer_ops, record.quant
    assert record.quant.deployed.deployed >= MIN_AGREEMENT


def int8_static(family: str, checkpoint: str, folder: Path) -> None:
    manifest = _run(family, checkpoint, [Export(), Quantize(calibration={"samples": 128})], folder)
    _check_int8(manifest.records()["model_int8"])


def int8_dynamic(family: str, checkpoint: str, folder: Path) -> None:
    manifest = _run(family, checkpoint, [Export(), Quantize(mode="dynamic")], folder)
    _check_int8(manifest.records()["model_int8"])


def qad(family: str, checkpoint: str, folder: Path) -> None:
    manifest = _run(family, checkpoint, [Qad(model="model", epochs=1, freeze_after=0, calibration_samples=64)], folder)
    record = manifest.records()["model_qad"]
    assert record.kind == "int8" and record.quant.integer_ops and record.quant.vs_reference.top1_agreement >= MIN_AGREEMENT


def export(family: str, checkpoint: str, folder: Path) -> None:
    record = _run(family, checkpoint, [Export()], folder).records()["model"]
    assert record.parity is not None and record.parity.max_abs_diff < 1e-3


def _bench(target: str):
    def cell(family: str, checkpoint: str, folder: Path) -> None:
        mode = INT8_MODE.get(family, "static")
        int8 = [Quantize(mode=mode, min_agreement=0.0)] if mode else []  # kept whatever its agreement: the benchmark flags it
        bench = Benchmark(targets=[target], batch_sizes=[1, 32], timing=QUICK)
        manifest = _run(family, checkpoint, [Export(), *int8, bench], folder)
        for name, record in manifest.records().items():
            assert record.bench[target].latency_ms["32"].p50 > 0, name
            assert record.score("accuracy", runtime=target) is not None, name
        if mode:
            _check_flags(manifest.records()["model_int8"], target)

    return cell


def _check_flags(record, target: str) -> None:
    """An INT8 model whose agreement with its FP32 source on this runtime is under the bound is flagged."""
    bench = record.bench[target]
    assert bench.agreement is not None
    assert (bench.flag is not None) == (bench.agreement < MIN_AGREEMENT), bench


CELLS = {
    "prune ratio": prune_ratio,
    "prune latency": prune_latency,
    "int8 static": int8_static,
    "int8 dynamic": int8_dynamic,
    "qad": qad,
    "export": export,
    "bench ort-cpu": _bench("ort-cpu"),
    "bench openvino-cpu": _bench("openvino-cpu"),
}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_cell(family, stage, trained, tmp_path):
    expected = EXPECTED[family][stage]
    try:
        CELLS[stage](family, trained(family), tmp_path)
    except CompressError as err:
        message = str(err)
        assert "\n" not in message, message
        # the INT8 bound is met by a file at 0.98 or by a refusal that says it fell short; which one a
        # family gets can change with the CPU kind (x86-avx2 quantizes weights to 7 bits)
        below = stage in INT8_CELLS and BELOW_BOUND in message
        assert expected != OK or below, f"{family} / {stage} refused: {message}"
        assert expected in message or (expected == OK and below), message
    else:  # an INT8 cell refused here for agreement under the bound may meet it on another CPU kind
        assert expected in (OK, BELOW_BOUND), f"{family} / {stage} worked, the matrix says it refuses ({expected})"


def _shown(cell: str) -> str:
    return {OK: "yes", BELOW_BOUND: "below 0.98"}.get(cell, "refused")


def test_the_readme_shows_the_matrix():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "| family | " + " | ".join(STAGES) + " |" in readme
    for family, cells in EXPECTED.items():
        row = f"| {family} | " + " | ".join(_shown(c) for c in cells.values()) + " |"
        assert row in readme, row
