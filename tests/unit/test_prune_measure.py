"""Where the prune stage times its candidates."""


def test_pruning_times_models_on_the_whole_target(monkeypatch):
    """The prune stage's latencies use the run's target as given (its optimization level too), not a
    target rebuilt from its name and thread count."""
    import compress.prune.measure as measure
    from compress.bench.runners import TargetSpec

    seen = []
    monkeypatch.setattr(measure, "make_runner", lambda spec: seen.append(spec) or type("R", (), {})())
    target = TargetSpec(threads=1, optimization="basic", cpu="x86-avx2")
    ctx = type("Ctx", (), {"target": target})()
    assert measure.dominant_nodes(None, ctx, 1) == []  # the stub runner has no profiler
    assert seen == [target]
