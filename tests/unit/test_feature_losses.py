"""Golden values for the feature and relational losses, worked out by hand in the comments."""

import math

import pytest
import torch

from compress.distill.losses import FEATURE_LOSSES, attention_map, attention_transfer_loss, hint_loss, rkd_angle_loss, rkd_distance_loss

RIGHT = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # a right angle at the first point
LINE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])  # collinear


def test_hint_loss_is_mse():
    assert hint_loss(torch.tensor([[1.0, 2.0]]), torch.zeros(1, 2)).item() == pytest.approx(2.5)


def test_attention_transfer_golden():
    # student (1, 2, 1, 2): both channels [1, 0] -> mean |A|^2 = [1, 0] -> normalised [1, 0]
    # teacher (1, 1, 1, 2): [1, 1] -> [1/sqrt2, 1/sqrt2]; loss = (1 - 1/sqrt2)^2 + (1/sqrt2)^2 = 2 - sqrt2
    s = torch.tensor([[[[1.0, 0.0]], [[-1.0, 0.0]]]])
    t = torch.tensor([[[[1.0, 1.0]]]])
    assert torch.allclose(attention_map(s), torch.tensor([[1.0, 0.0]]))
    assert attention_transfer_loss(s, t).item() == pytest.approx(2 - math.sqrt(2), abs=1e-6)
    assert attention_transfer_loss(t * 5, t).item() == pytest.approx(0.0, abs=1e-7)  # scale-free


def test_rkd_distance_golden():
    # student distances (01, 02, 12) = (1, 1, sqrt2), mean over the 6 off-diagonal entries mu = (2 + sqrt2) / 3
    # teacher distances (1, 2, 1), mu = 4/3 -> (0.75, 1.5, 0.75)
    # Huber (beta 1) of each difference, each pair counted twice, averaged over the 9 matrix entries.
    mu = (2 + math.sqrt(2)) / 3
    diffs = [1 / mu - 0.75, 1 / mu - 1.5, math.sqrt(2) / mu - 0.75]
    expected = 2 * sum(0.5 * d * d for d in diffs) / 9  # 0.0716991
    assert rkd_distance_loss(RIGHT, LINE).item() == pytest.approx(expected, abs=1e-6)
    assert rkd_distance_loss(RIGHT * 3 + 1, RIGHT).item() == pytest.approx(0.0, abs=1e-7)  # scale and shift free


def test_rkd_angle_golden():
    # cos at each vertex between the other two points: student (A: 0, B: 1/sqrt2, C: 1/sqrt2), teacher (1, -1, 1).
    # Huber: |0-1| = 1 -> 0.5; |0.7071+1| -> 1.2071; |0.7071-1| -> 0.5*0.2929^2 = 0.0429; sum 1.75, twice, over 27.
    assert rkd_angle_loss(RIGHT, LINE).item() == pytest.approx(3.5 / 27, abs=1e-6)
    assert rkd_angle_loss(RIGHT * 2 - 5, RIGHT).item() == pytest.approx(0.0, abs=1e-6)


def test_relational_losses_send_gradients_to_the_student_only():
    s = RIGHT.clone().requires_grad_(True)
    t = LINE.clone().requires_grad_(True)
    (rkd_distance_loss(s, t) + rkd_angle_loss(s, t)).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0 and t.grad is None


def test_feature_loss_registry():
    assert list(FEATURE_LOSSES) == ["attention", "hint", "rkd_angle", "rkd_distance"]
