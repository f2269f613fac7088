"""`edge-compress bench` on ONNX files with several inputs (a recurrent model's signal, state and a control
scalar, as silero-vad has): each input is made from its declared shape and type, the batch goes wherever
the file's batch dimension is, open dimensions come from --input-shape NAME=..., and what cannot be
inferred is a one-line error that says what to give."""

import json
import warnings

import pytest
import torch
from torch import nn

from compress.bench.model_bench import BenchSettings, Feeds, bench_model, feeds_for
from compress.bench.timing import TimingConfig
from compress.errors import DataError, RecipeError
from compress.models.onnx_file import batch_axes, input_specs
from tests.e2e.test_cli import cli

FAST = ("--threads", "1", "--rounds", "6", "--min-time", "0.02", "--warmup", "5")


class _Recurrent(nn.Module):
    """A GRU over `x` [batch, sequence, 8] from `state` [2, batch, 16], its last output scaled by `gain` (int64 scalar)."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(8, 16, num_layers=2, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, x, state, gain):
        out, new_state = self.gru(x, state)
        return self.head(out[:, -1]) * gain.float(), new_state


@pytest.fixture(scope="module")
def recurrent(tmp_path_factory):
    path = tmp_path_factory.mktemp("multi") / "recurrent.onnx"
    torch.manual_seed(0)
    example = (torch.randn(2, 5, 8), torch.zeros(2, 2, 16), torch.tensor(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Recurrent().eval(), example, str(path), dynamo=False, opset_version=17,
            input_names=["x", "state", "gain"], output_names=["y", "new_state"],
            dynamic_axes={"x": {0: "batch", 1: "sequence"}, "state": {1: "batch"}, "y": {0: "batch"}, "new_state": {1: "batch"}},
        )  # fmt: skip
    return path


def _settings(**fields) -> BenchSettings:
    fields.setdefault("timing", TimingConfig(warmup=2, rounds=2, min_iters=5, min_time_s=0))
    return BenchSettings(target={"name": "ort-cpu", "threads": 1}, **fields)


def test_inputs_are_read_from_the_file_and_the_batch_follows_its_symbolic_name(recurrent):
    import onnx

    inputs = input_specs(onnx.load(str(recurrent)).graph)
    assert [i.describe() for i in inputs] == ["x [batch, sequence, 8]", "state [2, batch, 16]", "gain []"]
    assert [i.dtype for i in inputs] == ["float32", "float32", "int64"]
    assert batch_axes(inputs) == {"x": (0,), "state": (1,), "gain": ()}
    feeds = feeds_for(inputs, _settings(input_shapes={"x": (1, 10, 8)}, input_values={"gain": 3}), 4)
    assert isinstance(feeds, Feeds) and len(feeds) == 4
    assert {n: a.shape for n, a in feeds.arrays.items()} == {"x": (4, 10, 8), "state": (2, 4, 16), "gain": ()}
    assert feeds.arrays["gain"] == 3 and feeds.arrays["x"].std() > 0.5


def test_bench_times_every_batch_and_records_the_inputs_it_made(recurrent, tmp_path):
    out = tmp_path / "m.json"
    result = cli(
        "bench", recurrent, *FAST, "--input-shape", "x=1x10x8", "--input-value", "gain=3", "--batch-sizes", "1", "4", "--json", out
    )
    assert result.returncode == 0, result.stderr
    assert "inputs at batch 1: x 1x10x8 float32 (normal(0, 1), seed 0), state 2x1x16 float32" in result.stdout
    data = json.loads(out.read_text())
    assert data["model"]["inputs"]["gain"] == {"shape": [], "dtype": "int64", "values": "all 3"}
    assert data["model"]["input_shape"] == [10, 8] and data["settings"]["input_shapes"] == {"x": [1, 10, 8]}
    assert data["latency"]["1"]["p50"] > 0 and data["latency"]["4"]["p50"] > 0


def test_an_open_dimension_without_a_shape_is_one_line_naming_the_option(recurrent):
    result = cli("bench", recurrent, *FAST)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "input x [batch, sequence, 8] has dimensions the file leaves open" in result.stderr
    assert "--input-shape x=1x<sequence>x8" in result.stderr


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"input_shapes": {"x": (4, 10, 8)}}, DataError, r"axis 0 of input 'x' is the batch axis"),
        ({"input_shapes": {"x": (1, 10, 9)}}, DataError, r"input x \[batch, sequence, 8\] cannot take the shape 1x10x9"),
        ({"input_shapes": {"x": (1, 10)}}, DataError, r"cannot take the shape 1x10"),
        ({"input_shapes": {"x": (1, 10, 8), "h": (2, 1, 16)}}, DataError, r"has no input 'h'; it takes x \[batch, sequence, 8\]"),
        ({"input_shapes": {"x": (1, 10, 8)}, "task": {"name": "digits"}}, RecipeError, r"takes 3 inputs and a task gives one"),
    ],
)
def test_shapes_that_do_not_fit_are_one_line(recurrent, fields, error, message):
    with pytest.raises(error, match=message) as err:
        bench_model(recurrent, _settings(**fields))
    assert len(str(err.value).splitlines()) == 1


def test_a_per_sample_shape_sets_the_first_input_and_a_baseline_replays_it(recurrent, tmp_path):
    baseline = tmp_path / "base.json"
    saved = cli("bench", recurrent, *FAST, "--input-shape", "10,8", "--batch-sizes", "2", "--save-baseline", baseline)
    assert saved.returncode == 0, saved.stderr
    replay = cli("regress", recurrent, "--baseline", baseline, "--max-slowdown", "100%")
    assert replay.returncode == 0 and "PASS latency[batch=2]" in replay.stdout, replay.stdout + replay.stderr


def test_a_reference_comparison_feeds_one_input_and_says_so(recurrent):
    from compress.bench.regress import against_reference

    settings = _settings(input_shape=(10, 8), timing=TimingConfig(rounds=6, min_time_s=0))
    with pytest.raises(DataError, match=r"recurrent.onnx takes 3 inputs \(x, state, gain\); this command feeds one"):
        against_reference(recurrent, recurrent, settings, max_slowdown=0.1)


def test_a_single_integer_input_keeps_its_type(tmp_path):
    """Token ids (int64) are fed as int64 zeros, not cast to float32 as a single float input would be."""
    path = tmp_path / "ids.onnx"
    model = nn.Sequential(nn.Embedding(100, 8), nn.Flatten(), nn.Linear(8 * 16, 2)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.zeros(1, 16, dtype=torch.long),), str(path), dynamo=False, opset_version=17,
            input_names=["ids"], output_names=["y"], dynamic_axes={"ids": {0: "batch"}, "y": {0: "batch"}},
        )  # fmt: skip
    result = bench_model(path, _settings(batch_sizes=[1, 4]))
    assert result["model"]["inputs"] == {"ids": {"shape": [1, 16], "dtype": "int64", "values": "zeros"}}
    assert result["latency"]["4"]["p50"] > 0
