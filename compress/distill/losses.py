"""Distillation losses as pure functions of tensors. `LOSSES` maps recipe names to response losses
`(student_out, teacher_out, *, temperature) -> scalar`; later issues add feature and relation losses."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from compress.registry import Registry

__all__ = ["LOSSES", "ResponseLoss", "kd_loss", "regression_response_loss", "task_loss", "distill_objective"]

ResponseLoss = Callable[..., torch.Tensor]
LOSSES: Registry[ResponseLoss] = Registry("distillation loss")


@LOSSES.register("kd")
def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """Hinton et al. (2015): KL(softmax(t/T) || softmax(s/T)) per sample, times T^2 so gradients keep
    their scale as T changes."""
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True) * temperature**2


@LOSSES.register("mse")
def regression_response_loss(student_out: torch.Tensor, teacher_out: torch.Tensor, *, temperature: float = 1.0) -> torch.Tensor:
    """Mean squared error to the teacher's prediction (regression); `temperature` has no effect."""
    del temperature
    return F.mse_loss(student_out, teacher_out)


def task_loss(outputs: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """The hard-label loss: cross-entropy for classification, MSE for regression."""
    if kind == "classification":
        return F.cross_entropy(outputs, targets)
    return F.mse_loss(outputs, targets.reshape(outputs.shape))


def distill_objective(soft: torch.Tensor, hard: torch.Tensor, *, alpha: float) -> torch.Tensor:
    """alpha * distillation term + (1 - alpha) * hard-label term."""
    return alpha * soft + (1.0 - alpha) * hard
