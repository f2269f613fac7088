"""Stages, registered by name. Importing this package registers every built-in stage."""

from compress.stages.base import STAGES, Stage, StageConfig, register_stage
from compress.stages.benchmark import Benchmark
from compress.stages.distill import Distill
from compress.stages.export import Export
from compress.stages.prune import Prune
from compress.stages.qad import Qad
from compress.stages.quantize import Quantize
from compress.stages.report import Report
from compress.stages.train import Load, Train
from compress.stages.train_policy import TrainPolicy

__all__ = [
    "STAGES",
    "Stage",
    "StageConfig",
    "register_stage",
    "Train",
    "Load",
    "TrainPolicy",
    "Distill",
    "Prune",
    "Quantize",
    "Qad",
    "Export",
    "Benchmark",
    "Report",
]
