"""Time several models interleaved, so that a change in the machine's load hits them alike: per batch
size, round r of every model runs before round r+1 of any, the order rotating each round (as
`compare_interleaved` alternates its two models). Each round runs on a fresh load when the sessions are
fresh, is warmed up, then sampled; the round medians of the models then pair.

Process memory cannot span one model's timing (other models' rounds run between its rounds), so it is
measured per model in a short window of its own before any timing: its load, the untimed first call and
the warm-up at each batch size. That window also turns inputs a model cannot take into a one-line error
before anything is timed."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from compress.bench.memory import peak_rss
from compress.bench.model_bench import Feeds, note_peak, timed_call, try_inputs
from compress.bench.runners import Sessions
from compress.bench.timing import TimingConfig, sample_round, summarize, warm_up

__all__ = ["time_interleaved", "memory_window", "rotation"]

Batch = np.ndarray | Feeds
Timed = tuple[dict[str, dict[str, Any]], dict[str, Any]]
"""(latency statistics per batch key, memory) of one model."""


def time_interleaved(sessions: dict[str, Sessions], batches: dict[str, Batch], timing: TimingConfig) -> dict[str, Timed]:
    """Per model name: (latency statistics per batch key, memory). With two models or more, every
    statistics dict has `interleaved: True` and a `round_group` id shared by the models of this call at
    that batch: its round medians pair with theirs, and with no other timing's."""
    memory = {name: memory_window(s, batches, timing) for name, s in sessions.items()}
    latency: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in sessions}
    for key, x in batches.items():
        for name, stats in _time_batch(sessions, x, timing).items():
            latency[name][key] = stats
    return {name: (latency[name], memory[name]) for name in sessions}


def memory_window(sessions: Sessions, batches: dict[str, Batch], timing: TimingConfig) -> dict[str, Any]:
    """Peak and growth of the process's resident memory over one load of the model, its untimed first
    call and warm-up at each batch size."""
    with peak_rss() as rss:
        loaded = sessions.next()
        for x in batches.values():
            try_inputs(loaded, x, sessions.source.label)
            warm_up(timed_call(loaded, x), timing)
    _release(sessions)
    return {"peak_rss_mb": rss.peak_mb, "rss_growth_mb": rss.growth_mb, "scope": rss.scope}


def rotation(names: list[str], round_index: int) -> list[str]:
    """The order of `names` in round `round_index`: the first moves to the end each round."""
    shift = round_index % len(names) if names else 0
    return names[shift:] + names[:shift]


def _time_batch(sessions: dict[str, Sessions], x: Batch, timing: TimingConfig) -> dict[str, dict[str, Any]]:
    names = list(sessions)
    rounds: dict[str, list[np.ndarray]] = {name: [] for name in names}
    peaks: dict[str, list[int]] = {name: [] for name in names}
    loads = {name: s.loads for name, s in sessions.items()}
    group = uuid.uuid4().hex[:12] if len(names) > 1 else None  # these rounds pair with each other, not with another timing's
    for r in range(timing.rounds):
        for name in rotation(names, r):
            rounds[name].append(_round(sessions[name], x, timing, peaks[name]))
    return {name: _stats(rounds[name], peaks[name], sessions[name].loads - loads[name], len(x), timing, group) for name in names}


def _round(sessions: Sessions, x: Batch, timing: TimingConfig, peaks: list[int]) -> np.ndarray:
    """One round of one model: (fresh) load, warm-up, samples; its device peak goes in `peaks`."""
    loaded = sessions.next()
    loaded.reset_device_peak()
    call = timed_call(loaded, x)
    warm_up(call, timing)
    samples = sample_round(call, timing, loaded.clock)
    note_peak(loaded, peaks)
    _release(sessions)
    return samples


def _stats(rounds: list[np.ndarray], peaks: list[int], loads: int, batch: int, timing: TimingConfig, group: str | None) -> dict[str, Any]:
    stats = summarize(rounds, batch_size=batch, noise_threshold=timing.noise_threshold)
    stats["device_peak_mb"] = max(peaks) / 1024**2 if peaks else None
    stats["loads"] = max(loads, 1)  # without fresh sessions, every round ran on the one load made before the timing
    stats["interleaved"], stats["round_group"] = group is not None, group
    return stats


def _release(sessions: Sessions) -> None:
    """Let a fresh session's load go once its round is done: its next round loads anew anyway, and the
    other models' rounds (and their device peaks) should not run beside it."""
    if sessions.fresh:
        sessions.current = None
