"""Golden values computed by hand (see each comment), not by the code under test."""

import math

import pytest
import torch

from compress.distill.losses import LOSSES, distill_objective, kd_loss, regression_response_loss, task_loss


def test_kd_loss_golden_value_two_classes():
    # T=2: student logits [0, 0] -> p_s = [0.5, 0.5]; teacher logits [2, 0] / 2 = [1, 0]
    # -> p_t = [e/(e+1), 1/(e+1)] = [0.731059, 0.268941].
    # KL(p_t || p_s) = sum p_t * log(p_t / 0.5) = 0.731059*ln(1.462117) + 0.268941*ln(0.537883) = 0.110944
    # times T^2 = 4 -> 0.443776.
    p = math.e / (math.e + 1)
    expected = 4 * (p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5))
    got = kd_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, 0.0]]), temperature=2.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert got.item() == pytest.approx(0.443776, abs=1e-6)


def test_kd_loss_is_mean_over_batch_and_zero_for_equal_logits():
    s = torch.tensor([[0.0, 0.0], [1.0, 3.0]])
    t = torch.tensor([[2.0, 0.0], [1.0, 3.0]])  # second row identical: contributes 0
    batch = kd_loss(s, t, temperature=2.0)
    assert batch.item() == pytest.approx(0.443776 / 2, abs=1e-6)
    assert kd_loss(t, t, temperature=3.0).item() == pytest.approx(0.0, abs=1e-7)


def test_kd_loss_temperature_one_equals_plain_kl():
    # T=1 has no scaling: KL([0.9, 0.1] || [0.5, 0.5]) = 0.9 ln 1.8 + 0.1 ln 0.2 = 0.368064
    t = torch.log(torch.tensor([[0.9, 0.1]]))
    got = kd_loss(torch.zeros(1, 2), t, temperature=1.0)
    assert got.item() == pytest.approx(0.9 * math.log(1.8) + 0.1 * math.log(0.2), abs=1e-6)


def test_regression_response_and_task_losses():
    assert regression_response_loss(torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [0.0]])).item() == pytest.approx(5.0)
    # cross-entropy of logits [0, ln 3] for class 1: -ln(3/4) = 0.287682
    ce = task_loss(torch.tensor([[0.0, math.log(3)]]), torch.tensor([1]), "classification")
    assert ce.item() == pytest.approx(-math.log(0.75), abs=1e-6)
    mse = task_loss(torch.tensor([[2.0]]), torch.tensor([0.5]), "regression")  # target reshaped to (1, 1)
    assert mse.item() == pytest.approx(2.25)


def test_huber_response_loss_golden():
    from compress.distill.losses import huber_response_loss

    # |diff| 0.5 -> 0.5 * 0.5^2 = 0.125 (quadratic); |diff| 3 -> 3 - 0.5 = 2.5 (linear); mean 1.3125
    got = huber_response_loss(torch.tensor([[0.0], [3.0]]), torch.tensor([[0.5], [0.0]]))
    assert got.item() == pytest.approx(1.3125)
    assert LOSSES.get("huber") is huber_response_loss


def test_objective_mixes_terms_and_registry_names_losses():
    assert distill_objective(torch.tensor(2.0), torch.tensor(10.0), alpha=0.75).item() == pytest.approx(0.75 * 2 + 0.25 * 10)
    assert LOSSES.get("kd") is kd_loss
    assert LOSSES.get("mse") is regression_response_loss


def test_combine_teachers_mean_and_weighted_golden():
    from compress.distill.losses import combine_teachers

    t1 = torch.tensor([[math.log(3), 0.0]])  # p = [0.75, 0.25]
    t2 = torch.zeros(1, 2)  # p = [0.5, 0.5]
    mean = combine_teachers([t1, t2], mode="mean", temperature=1.0)
    assert torch.allclose(mean.softmax(1), torch.tensor([[0.625, 0.375]]))
    weighted = combine_teachers([t1, t2], mode="weighted", weights=[3, 1], temperature=1.0)
    assert torch.allclose(weighted.softmax(1), torch.tensor([[0.6875, 0.3125]]))
    # T = 2: t1 / 2 -> p = [sqrt3 / (sqrt3 + 1), 1 / (sqrt3 + 1)] = [0.633975, 0.366025]; mean with [0.5, 0.5]
    tempered = combine_teachers([t1, t2], mode="mean", temperature=2.0)
    assert torch.allclose((tempered / 2).softmax(1), torch.tensor([[0.566987, 0.433013]]), atol=1e-6)
    # the response loss sees exactly the mixed distribution: KL(mix || uniform) at T = 2, times T^2
    p = torch.tensor([0.566987, 0.433013])
    expected = 4 * float((p * (p / 0.5).log()).sum())
    assert kd_loss(torch.zeros(1, 2), tempered, temperature=2.0).item() == pytest.approx(expected, abs=1e-5)


def test_combine_teachers_confident_and_regression():
    from compress.distill.losses import combine_teachers

    sure = torch.tensor([[5.0, 0.0], [0.0, 0.1]])
    unsure = torch.tensor([[0.1, 0.0], [0.0, 5.0]])
    picked = combine_teachers([sure, unsure], mode="confident", temperature=4.0)
    assert torch.equal(picked, torch.tensor([[5.0, 0.0], [0.0, 5.0]]))  # row 0 from the first, row 1 from the second
    reg = combine_teachers(
        [torch.tensor([[1.0]]), torch.tensor([[3.0]])], mode="weighted", weights=[1, 3], temperature=1.0, classification=False
    )
    assert reg.item() == pytest.approx(2.5)
    with pytest.raises(ValueError, match="needs a classification task"):
        combine_teachers([torch.zeros(1, 1), torch.zeros(1, 1)], mode="confident", temperature=1.0, classification=False)
    single = torch.randn(3, 4)
    assert combine_teachers([single], mode="mean", temperature=3.0) is single
