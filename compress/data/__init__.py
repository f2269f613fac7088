"""Tasks: built-in offline datasets and the `TaskData` contract for users' own data."""

from compress.data.builtin import TASKS
from compress.data.metrics import Metric
from compress.data.task import TaskData

__all__ = ["TASKS", "TaskData", "Metric"]
