import math

import pytest
from pydantic import ValidationError

from compress.distill.schedules import Schedule, adaptive, cosine, linear, step, value_of


def test_schedule_functions_by_hand():
    assert linear(0.5, 8, 1) == pytest.approx(4.5)
    assert cosine(0.0, 8, 1) == pytest.approx(8) and cosine(1.0, 8, 1) == pytest.approx(1)
    assert cosine(0.25, 8, 1) == pytest.approx(1 + 7 * 0.5 * (1 + math.sqrt(0.5)))  # 6.97487
    assert [step(p, 8, 2, 4) for p in (0.0, 0.3, 0.6, 0.8, 1.0)] == [8, 6, 4, 2, 2]
    assert linear(1.7, 8, 1) == pytest.approx(1)  # progress is clipped to [0, 1]


def test_adaptive_weight_falls_as_the_gap_closes():
    assert adaptive(None, None, 0.9, 0.1) == 0.9  # no measurement yet
    assert adaptive(0.05, 0.10, 0.9, 0.1) == pytest.approx(0.5)
    assert adaptive(-0.01, 0.10, 0.9, 0.1) == pytest.approx(0.1)  # student passed the teacher
    assert adaptive(0.2, 0.10, 0.9, 0.1) == pytest.approx(0.9)  # worse than at first: stays at start
    assert adaptive(0.05, -0.02, 0.9, 0.1) == pytest.approx(0.1)  # ahead of the teacher from the first epoch
    assert adaptive(0.0, 0.10, 0.9, 0.1) == pytest.approx(0.1)


def test_schedule_model_and_plain_numbers():
    assert value_of(3.0, 0.7) == 3.0
    assert value_of(Schedule(kind="linear", start=4, end=2), 0.5) == pytest.approx(3.0)
    assert Schedule(kind="constant", start=2).at(0.9) == 2
    assert Schedule(kind="adaptive", start=1, end=0).at(0.3, gap=0.25, initial_gap=1.0) == pytest.approx(0.25)
    with pytest.raises(ValidationError, match="a cosine schedule needs 'end'"):
        Schedule(kind="cosine", start=8)
    with pytest.raises(ValidationError):
        Schedule(kind="exponential", start=1, end=2)
