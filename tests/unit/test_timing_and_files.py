import json

import numpy as np
import pytest

from compress.bench.memory import peak_rss
from compress.bench.timing import TimingConfig, measure, robust_cv, summarize
from compress.fsio import atomic_path, sha256_file, write_json


def test_summarize_percentiles_and_spread():
    stats = summarize(np.arange(1, 101, dtype=float))
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p90"] == pytest.approx(90.1)
    assert stats["mean"] == pytest.approx(50.5)
    assert stats["std"] == pytest.approx(29.011, abs=1e-3)
    assert stats["n"] == 100


def test_measure_warms_up_then_times_at_least_min_iters_per_round():
    calls = []
    cfg = TimingConfig(warmup=3, warmup_time_s=0, rounds=2, min_iters=20, min_time_s=0, max_iters=1000)
    stats = measure(lambda: calls.append(1), cfg)
    assert stats["n"] == 40 and len(calls) == 43 and len(stats["round_p50"]) == 2


def test_summarize_tail_throughput_and_round_medians():
    rounds = [np.full(100, 2.0), np.full(100, 2.0)]
    rounds[0][-1] = 50.0  # one slow call: in p99's reach, not the median's
    stats = summarize(rounds, batch_size=8)
    assert stats["p50"] == 2.0 and stats["p99"] == pytest.approx(2.0) and stats["quantiles"][-1] == 50.0
    assert stats["throughput"] == pytest.approx(8 * 200 / ((199 * 2.0 + 50.0) / 1000))
    assert stats["round_p50"] == [2.0, 2.0] and not stats["noisy"]


def test_noisy_flag_follows_the_spread_of_round_medians_not_one_bad_round():
    steady = [np.full(50, 1.0 + 0.01 * i) for i in range(8)] + [np.full(50, 3.0)]  # one disturbed round
    assert not summarize(steady)["noisy"]
    drifting = [np.full(50, 1.0 + 0.1 * i) for i in range(9)]
    stats = summarize(drifting)
    assert stats["noisy"] and stats["round_cv"] > 0.05
    one_round = summarize(np.concatenate([np.full(50, 1.0), np.full(50, 2.0)]))  # blocks of one round show the drift
    assert one_round["noisy"]


def test_robust_cv_matches_std_for_normal_data():
    values = np.random.default_rng(0).normal(100, 5, 20000)
    assert robust_cv(values) == pytest.approx(0.05, rel=0.05)


def test_peak_rss_sees_an_allocation_inside_the_window():
    with peak_rss() as m:
        block = np.ones(64 * 1024**2 // 8)  # 64 MiB, touched
        block[::512] = 2.0
    assert m.peak_mb >= m.start_mb and m.growth_mb > 40, (m, block.sum() > 0)


def test_atomic_write_keeps_old_content_when_writing_fails(tmp_path):
    path = tmp_path / "a.json"
    write_json(path, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text('{"v": 2, "half')
        raise RuntimeError("killed mid-write")
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary left behind


def test_sha256_of_known_content(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
