"""Distillation losses as pure functions of tensors. `LOSSES` maps recipe names to response losses
`(student_out, teacher_out, *, temperature) -> scalar`; later issues add feature and relation losses."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from compress.data.task import NO_CLASS
from compress.registry import Registry

__all__ = [
    "LOSSES",
    "FEATURE_LOSSES",
    "ResponseLoss",
    "kd_loss",
    "regression_response_loss",
    "huber_response_loss",
    "task_loss",
    "distill_objective",
    "hint_loss",
    "attention_map",
    "attention_transfer_loss",
    "rkd_distance_loss",
    "rkd_angle_loss",
    "combine_teachers",
]

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


@LOSSES.register("huber")
def huber_response_loss(student_out: torch.Tensor, teacher_out: torch.Tensor, *, temperature: float = 1.0) -> torch.Tensor:
    """Huber loss (delta 1) to the teacher's prediction (regression): quadratic near it, linear far away,
    so a teacher's occasional large miss pulls less than under MSE; `temperature` has no effect."""
    del temperature
    return F.huber_loss(student_out, teacher_out, delta=1.0)


def task_loss(outputs: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """The hard-label loss: cross-entropy for classification, MSE for regression, over the labelled
    samples of the batch (unlabeled inputs carry NO_CLASS or NaN targets); zero when it has none."""
    if kind == "classification":
        labelled = targets != NO_CLASS
        return F.cross_entropy(outputs[labelled], targets[labelled]) if labelled.any() else outputs.sum() * 0.0
    targets = targets.reshape(outputs.shape)
    labelled = ~torch.isnan(targets).any(dim=-1) if targets.dim() > 1 else ~torch.isnan(targets)
    return F.mse_loss(outputs[labelled], targets[labelled]) if labelled.any() else outputs.sum() * 0.0


def distill_objective(soft: torch.Tensor, hard: torch.Tensor, *, alpha: float) -> torch.Tensor:
    """alpha * distillation term + (1 - alpha) * hard-label term."""
    return alpha * soft + (1.0 - alpha) * hard


def hint_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """FitNets (Romero et al. 2015): mean squared error between the projected student feature and the teacher's."""
    return F.mse_loss(student_feature, teacher_feature)


def attention_map(feature: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Activation-based spatial attention (Zagoruyko & Komodakis 2017): mean over channels of |A|^p,
    flattened and L2-normalised per sample."""
    return F.normalize(feature.abs().pow(p).mean(1).flatten(1), dim=1)


def attention_transfer_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor, *, p: float = 2.0) -> torch.Tensor:
    """Squared L2 distance between normalised attention maps, averaged over the batch; channel counts may differ."""
    return (attention_map(student_feature, p) - attention_map(teacher_feature, p)).pow(2).sum(1).mean()


def _pairwise_distances(embedding: torch.Tensor) -> torch.Tensor:
    flat = embedding.flatten(1)
    return torch.cdist(flat, flat)


def rkd_distance_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Relational KD, distance-wise (Park et al. 2019): Huber loss between the batch's pairwise distances,
    each normalised by its mean non-zero distance."""

    def normalised(e: torch.Tensor) -> torch.Tensor:
        d = _pairwise_distances(e)
        return d / d[d > 0].mean().clamp_min(1e-12)

    with torch.no_grad():
        target = normalised(teacher)
    return F.smooth_l1_loss(normalised(student), target)


def _angles(embedding: torch.Tensor) -> torch.Tensor:
    """cos of the angle at j between (e_i - e_j) and (e_k - e_j), for every triplet (i, j, k)."""
    flat = embedding.flatten(1)
    diff = F.normalize(flat.unsqueeze(0) - flat.unsqueeze(1), p=2, dim=2)  # diff[j, i] = e_i - e_j, unit length
    return torch.bmm(diff, diff.transpose(1, 2)).flatten()


def rkd_angle_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Relational KD, angle-wise (Park et al. 2019): Huber loss between the batch's triplet angle cosines."""
    with torch.no_grad():
        target = _angles(teacher)
    return F.smooth_l1_loss(_angles(student), target)


FEATURE_LOSSES: Registry[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = Registry("feature loss")
FEATURE_LOSSES.register("hint")(hint_loss)
FEATURE_LOSSES.register("attention")(attention_transfer_loss)
FEATURE_LOSSES.register("rkd_distance")(rkd_distance_loss)
FEATURE_LOSSES.register("rkd_angle")(rkd_angle_loss)


def combine_teachers(
    outputs: list[torch.Tensor], *, mode: str, temperature: float, weights: list[float] | None = None, classification: bool = True
) -> torch.Tensor:
    """Several teachers' outputs -> one teacher output for the response loss.

    Classification: `mean` / `weighted` mix the tempered probabilities and return `T * log(p)`, which the
    response loss turns back into exactly `p` at temperature T; `confident` takes, per sample, the logits
    of the teacher with the highest top-1 probability. Regression: the (weighted) mean of the outputs.
    """
    if len(outputs) == 1:
        return outputs[0]
    w = torch.tensor(weights if mode == "weighted" and weights else [1.0] * len(outputs), dtype=outputs[0].dtype)
    w = (w / w.sum()).reshape(-1, *([1] * outputs[0].dim()))
    stacked = torch.stack(outputs)  # (teachers, batch, outputs)
    if not classification:
        if mode == "confident":
            raise ValueError("ensemble 'confident' needs a classification task")
        return (w * stacked).sum(0)
    if mode == "confident":
        best = stacked.softmax(-1).amax(-1).argmax(0)  # (batch,) index of the most confident teacher
        return stacked[best, torch.arange(stacked.shape[1])]
    mixed = (w * (stacked / temperature).softmax(-1)).sum(0)
    return temperature * mixed.clamp_min(1e-12).log()
