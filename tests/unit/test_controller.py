"""The learned distillation controller: its actions never leave their bounds, it learns from reward,
it resumes exactly, and the distillation objective applies its decisions."""

from __future__ import annotations

import math

import pytest
import torch

from compress.distill.controller import STATE, ControllerConfig, LearnedController, squash, unsquash


def controller(cfg: ControllerConfig | None = None, pairs: int = 1, seed: int = 0, start=(4.0, 0.9)) -> LearnedController:
    return LearnedController(cfg or ControllerConfig(), pairs=pairs, start=start, seed=seed, higher_is_better=True, scale=1.0)


@pytest.mark.parametrize("bias", [-1e6, -30.0, 0.0, 30.0, 1e6])
@pytest.mark.parametrize("bounds", [((0.5, 8.0), (0.0, 1.0)), ((1.0, 2.0), (0.3, 0.4))])
def test_actions_stay_inside_the_bounds_whatever_the_agent_learned(bias, bounds):
    cfg = ControllerConfig(temperature=bounds[0], alpha=bounds[1], exploration=5.0)
    agent = controller(cfg, pairs=3)
    with torch.no_grad():
        agent.actor.bias.fill_(bias)
        agent.actor.weight.normal_(0, 100)
    for step in range(50):
        decision = agent.decide(progress=step / 50)
        assert bounds[0][0] <= decision.temperature <= bounds[0][1]
        assert bounds[1][0] <= decision.alpha <= bounds[1][1]
        assert decision.pair in (0, 1, 2)
        agent.observe({"val_accuracy": 0.5 + step / 100, "train_loss": 1e6 if step % 2 else 1e-9}, agreement=1.0, val_key="val_accuracy")


def test_squash_inverts_unsquash_and_the_agent_starts_at_the_recipe_setting():
    cfg = ControllerConfig()
    t, a = squash(unsquash(2.0, 0.3, cfg), cfg)
    assert t == pytest.approx(2.0, rel=1e-5) and a == pytest.approx(0.3, rel=1e-5)
    agent = controller(cfg, start=(2.0, 0.3))
    mean = squash(agent.actor(agent.state(0.0)).detach(), cfg)
    assert mean == pytest.approx((2.0, 0.3), rel=1e-4)
    assert len(agent.state(0.0)) == len(STATE)


def test_a_single_pair_is_not_a_choice():
    assert controller(pairs=1).decide(0.0).pair is None
    assert controller(ControllerConfig(choose_feature=False), pairs=3).decide(0.0).pair is None


def test_it_moves_towards_the_rewarded_temperature():
    """A synthetic epoch outcome: the validation metric rises more the higher the temperature is; after
    40 decisions the agent's mean temperature has gone up from where it started."""
    agent = controller(ControllerConfig(lr=0.1, exploration=0.7), start=(2.0, 0.5))
    start = squash(agent.actor(agent.state(0.0)).detach(), agent.cfg)[0]
    val = 0.0
    agent.prime(val, None)  # without it the first gain has nothing to be measured from (reward 0)
    for epoch in range(40):
        decision = agent.decide(epoch / 40)
        val += math.log(decision.temperature)  # gain = log T: higher temperature, higher reward
        agent.observe({"val_accuracy": val, "train_loss": 1.0}, agreement=None, val_key="val_accuracy")
    end = squash(agent.actor(agent.state(1.0)).detach(), agent.cfg)[0]
    assert end > start * 1.5, (start, end)
    rewards = [d["reward"] for d in agent.decisions]
    assert rewards[0] == pytest.approx(math.log(agent.decisions[0]["temperature"]))


def test_reward_is_the_gain_and_lower_is_better_flips_it():
    agent = LearnedController(ControllerConfig(), pairs=1, start=(4.0, 0.9), seed=0, higher_is_better=False, scale=2.0)
    agent.prime(1.0, None)
    agent.decide(0.0)
    reward = agent.observe({"val_mse": 0.6, "train_loss": 1.0}, agreement=None, val_key="val_mse")
    assert reward == pytest.approx((1.0 - 0.6) / 2.0)


def test_a_resumed_agent_decides_exactly_as_the_uninterrupted_one():
    a, b = controller(pairs=2, seed=3), controller(pairs=2, seed=3)
    for agent in (a, b):
        for epoch in range(3):
            agent.decide(epoch / 6)
            agent.observe({"val_accuracy": 0.1 * epoch, "train_loss": 1.0 / (epoch + 1)}, agreement=0.5, val_key="val_accuracy")
    state = a.state_dict()
    resumed = controller(pairs=2, seed=99)
    resumed.load_state_dict(state)
    assert [resumed.decide(0.5), resumed.decide(0.6)] == [b.decide(0.5), b.decide(0.6)]


def test_the_objective_applies_the_decision_and_only_the_chosen_pair():
    from compress.distill.objective import DistillObjective
    from compress.models.zoo import resnet_cnn
    from compress.stages.distill import DistillConfig

    pairs = [
        {"student": "layer1", "teacher": "layer1", "loss": "hint", "weight": 2.0},
        {"student": "layer2", "teacher": "layer2", "loss": "hint"},
    ]
    cfg = DistillConfig(model={"arch": "resnet_cnn", "width": 8, "blocks": [1, 1]}, features=pairs, controller={"kind": "learned"})
    student, teacher = resnet_cnn((1, 8, 8), 10, width=8, blocks=(1, 1)), resnet_cnn((1, 8, 8), 10, width=16, blocks=(1, 1))
    objective = DistillObjective(student, [teacher], cfg, kind="classification", example=torch.zeros(2, 1, 8, 8))
    objective.controller = controller(cfg.controller, pairs=2)
    knobs = objective.start_epoch(0.0)
    chosen = knobs["feature_pair"]
    assert knobs["temperature"] != cfg.temperature
    assert knobs[f"weight_{chosen}_hint"] == (2.0 if chosen == 0 else 1.0) and knobs[f"weight_{1 - chosen}_hint"] == 0.0
    row = {"epoch": 1, "train_loss": 1.0, "val_accuracy": 0.5}
    objective.observe(row)
    assert "reward" in row and len(objective.controller.decisions) == 1
    restored = DistillObjective(student, [teacher], cfg, kind="classification", example=torch.zeros(2, 1, 8, 8))
    restored.controller = controller(cfg.controller, pairs=2, seed=7)
    restored.load_state_dict(objective.state_dict())
    assert restored.controller.decisions == objective.controller.decisions
