"""Runners, timing and static profiles used by the benchmark stage."""

from compress.bench.profile import params_and_macs
from compress.bench.runners import RUNNERS, Runner, make_runner
from compress.bench.timing import TimingConfig, measure

__all__ = ["RUNNERS", "Runner", "make_runner", "TimingConfig", "measure", "params_and_macs"]
