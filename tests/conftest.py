"""Shared helpers: tiny recipes that run in seconds on the built-in tasks."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["pytester"]  # runs a user-style test suite against the latency_regression fixture

TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "task": {"name": "digits"},
    "target": {"threads": 1},
    "stages": [
        {"train": {"name": "teacher", "model": {"arch": "mlp", "hidden": [64]}, "epochs": 3}},
        {"distill": {"teacher": "teacher", "name": "student", "model": {"arch": "mlp", "hidden": [8]}, "epochs": 3}},
        {"export": {}},
        {"benchmark": {"batch_sizes": [1, 4], "timing": {"warmup": 1, "min_iters": 5, "min_time_s": 0}}},
        {"report": {}},
    ],
}


@pytest.fixture
def tiny_recipe() -> dict[str, Any]:
    """A fresh copy of a recipe that trains, distills, exports, benchmarks and reports in seconds."""
    return copy.deepcopy(TINY)


@pytest.fixture
def write_recipe(tmp_path: Path):
    def write(data: dict[str, Any], name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="compress")
