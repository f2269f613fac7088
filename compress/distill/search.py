"""The search baseline beside the learned controller: Optuna's TPE over the same knobs, one training
run per constant setting. Thin adapter: it knows how to ask for settings and remember trials, not how
to train (the caller's `train_trial` does that)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compress.distill.controller import ControllerConfig
from compress.errors import RecipeError

__all__ = ["tpe_search"]

TrainTrial = Callable[[int, dict[str, Any]], tuple[float, Any]]
"""(trial index, {temperature, alpha, feature_pair}) -> (validation metric, whatever the caller keeps)."""


def _optuna():
    try:
        import optuna
    except ImportError:
        raise RecipeError("controller kind 'search' needs optuna, which is not installed", fix="pip install 'edge-compress[rl]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _distributions(cfg: ControllerConfig, pairs: int) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    space: dict[str, Any] = {
        "temperature": FloatDistribution(*cfg.temperature, log=True),
        "alpha": FloatDistribution(*cfg.alpha),
    }
    if cfg.choose_feature and pairs > 1:
        space["feature_pair"] = CategoricalDistribution(list(range(pairs)))
    return space


def tpe_search(
    train_trial: TrainTrial,
    cfg: ControllerConfig,
    *,
    pairs: int,
    seed: int,
    maximize: bool,
    done: list[dict[str, Any]] | None = None,
    on_trial: Callable[[dict[str, Any], Any], None] | None = None,
) -> list[dict[str, Any]]:
    """Run `cfg.trials` trials (TPE after `trials // 2` random ones); returns every trial's
    {index, params, value}. `done` are trials finished before an interruption: replayed into the study,
    not re-run. `on_trial(record, kept)` is called after each new trial (to save progress)."""
    optuna = _optuna()
    space = _distributions(cfg, pairs)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, cfg.trials // 2))
    study = optuna.create_study(direction="maximize" if maximize else "minimize", sampler=sampler)
    records = list(done or [])
    for record in records:
        study.add_trial(optuna.trial.create_trial(params=record["params"], distributions=space, value=record["value"]))
    for index in range(len(records), cfg.trials):
        trial = study.ask(space)
        value, kept = train_trial(index, dict(trial.params))
        study.tell(trial, value)
        record = {"index": index, "params": dict(trial.params), "value": value}
        records.append(record)
        if on_trial is not None:
            on_trial(record, kept)
    return records
