"""Distillation: pure loss functions and the shared training loop."""

from compress.distill.losses import LOSSES, kd_loss, task_loss

__all__ = ["LOSSES", "kd_loss", "task_loss"]
