"""The benchmark's interleaved timing on fake runners with a fake clock: round r of every model runs
before round r+1 of any, in an order that rotates; each model's statistics are marked interleaved and
have the configured rounds; memory is measured per model before the timing; a model that cannot take
the inputs fails in one line before anything is timed."""

from __future__ import annotations

from itertools import groupby

import numpy as np
import pytest

from compress.bench.interleave import rotation, time_interleaved
from compress.bench.runners import Loaded, ModelSource, Sessions
from compress.bench.timing import TimingConfig
from compress.errors import ModelError

TIMING = TimingConfig(warmup=0, warmup_time_s=0, rounds=4, min_iters=5, min_time_s=0)
MS = {"teacher": 2.0, "student": 0.5, "student_int8": 0.25}


class FakeLoaded(Loaded):
    """A load whose clock logs which model (and which of its loads) was sampled and returns its time,
    doubled on odd rounds: a load spike that every model in that round sees."""

    def __init__(self, name: str, index: int, log: list[tuple]) -> None:
        super().__init__(lambda x: np.zeros((len(x), 2), dtype=np.float32))
        self.name, self.index, self.log = name, index, log
        self.clock = self._clock

    def _clock(self, call) -> int:
        call()
        self.log.append(("sample", self.name, self.index))
        spike = 2.0 if self.index % 2 == 0 else 1.0  # load 0 is the memory window's; load 1 times round 0
        return int(MS.get(self.name, 1.0) * spike * 1e6)

    def prepare(self, x: np.ndarray):
        if self.name == "broken":
            return lambda: (_ for _ in ()).throw(ValueError("Got invalid dimensions for input: x"))
        return super().prepare(x)


class FakeRunner:
    target = "fake-cpu"

    def __init__(self, reload_ok: bool = True) -> None:
        self.reload_ok = reload_ok
        self.log: list[tuple] = []

    def load(self, model: ModelSource) -> FakeLoaded:
        index = sum(1 for entry in self.log if entry[:2] == ("load", model.label))
        self.log.append(("load", model.label))
        return FakeLoaded(model.label, index, self.log)


def _sessions(runner: FakeRunner, names: list[str], fresh: bool = True) -> dict[str, Sessions]:
    return {name: Sessions(runner, ModelSource(label=name, onnx=None), fresh=fresh) for name in names}


def _round_order(log: list[tuple]) -> list[str]:
    """The models in the order their rounds were sampled (a round: consecutive samples of one load)."""
    return [key[1] for key, _ in groupby(entry for entry in log if entry[0] == "sample")]


def _loads(log: list[tuple]) -> list[str]:
    return [entry[1] for entry in log if entry[0] == "load"]


BATCHES = {"1": np.zeros((1, 4), dtype=np.float32), "8": np.zeros((8, 4), dtype=np.float32)}


def test_rounds_of_the_models_alternate_and_rotate():
    runner = FakeRunner()
    names = ["teacher", "student", "student_int8"]
    time_interleaved(_sessions(runner, names), BATCHES, TIMING)
    one_batch = [n for r in range(TIMING.rounds) for n in rotation(names, r)]
    assert one_batch[:6] == ["teacher", "student", "student_int8", "student", "student_int8", "teacher"]
    assert _round_order(runner.log) == one_batch * len(BATCHES)
    loads = _loads(runner.log)
    assert loads[:3] == names  # each model's memory window comes first, before any round
    assert loads[3:] == one_batch * len(BATCHES)  # then a fresh load for every round


def test_every_model_is_marked_interleaved_with_the_configured_rounds_and_its_own_memory():
    runner = FakeRunner()
    found = time_interleaved(_sessions(runner, ["teacher", "student"]), BATCHES, TIMING)
    for name, (latency, memory) in found.items():
        assert list(latency) == ["1", "8"] and memory["peak_rss_mb"] > 0 and memory["scope"] in ("window", "process lifetime")
        for stats in latency.values():
            assert stats["interleaved"] is True and len(stats["round_p50"]) == TIMING.rounds and stats["loads"] == TIMING.rounds
            assert stats["n"] == TIMING.rounds * TIMING.min_iters and stats["device_peak_mb"] is None
            # the spike on odd rounds is in both models' round medians, in the same rounds
            assert stats["round_p50"] == pytest.approx([MS[name], 2 * MS[name]] * (TIMING.rounds // 2))
    assert _round_order(runner.log) == ["teacher", "student", "student", "teacher"] * 2 * len(BATCHES)
    groups = {key: {found[name][0][key]["round_group"] for name in found} for key in BATCHES}
    assert all(len(g) == 1 and None not in g for g in groups.values()), "one group per batch size, shared by the models"
    again = time_interleaved(_sessions(FakeRunner(), ["teacher", "student"]), BATCHES, TIMING)
    assert again["teacher"][0]["1"]["round_group"] not in groups["1"], "another timing's rounds do not pair with these"


def test_one_model_alone_is_not_marked_interleaved():
    found = time_interleaved(_sessions(FakeRunner(), ["student"]), BATCHES, TIMING)
    assert all(stats["interleaved"] is False and stats["round_group"] is None for stats in found["student"][0].values())


def test_without_fresh_sessions_every_round_runs_on_the_one_load():
    runner = FakeRunner(reload_ok=False)
    found = time_interleaved(_sessions(runner, ["teacher", "student"]), BATCHES, TIMING)
    assert _loads(runner.log) == ["teacher", "student"]
    assert all(stats["loads"] == 1 for latency, _ in found.values() for stats in latency.values())


def test_a_model_that_cannot_take_the_inputs_fails_before_anything_is_timed():
    runner = FakeRunner()
    with pytest.raises(ModelError, match=r"broken fails on inputs of shape \(1, 4\): Got invalid dimensions"):
        time_interleaved(_sessions(runner, ["teacher", "broken"]), BATCHES, TIMING)
    assert _round_order(runner.log) == []
