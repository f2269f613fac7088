import json

import numpy as np
import pytest

from compress.bench.timing import TimingConfig, measure, summarize
from compress.fsio import atomic_path, sha256_file, write_json


def test_summarize_percentiles_and_spread():
    stats = summarize(np.arange(1, 101, dtype=float))
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p90"] == pytest.approx(90.1)
    assert stats["mean"] == pytest.approx(50.5)
    assert stats["std"] == pytest.approx(29.011, abs=1e-3)
    assert stats["n"] == 100


def test_measure_warms_up_then_times_at_least_min_iters():
    calls = []
    stats = measure(lambda: calls.append(1), TimingConfig(warmup=3, min_iters=20, min_time_s=0, max_iters=1000))
    assert stats["n"] == 20 and len(calls) == 23


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
