"""Runners (one protocol for every runtime and device), timing, memory, statistics and static profiles."""

from compress.bench.profile import params_and_macs
from compress.bench.runners import RUNNERS, Loaded, ModelSource, Runner, TargetSpec, available_targets, make_runner
from compress.bench.timing import TimingConfig, measure

__all__ = [
    "RUNNERS",
    "Loaded",
    "ModelSource",
    "Runner",
    "TargetSpec",
    "TimingConfig",
    "available_targets",
    "make_runner",
    "measure",
    "params_and_macs",
]
