"""Read manifests of schema 1 (edge-compress before typed records): their model records kept everything
in a `metrics` dict and the stages' metrics repeated it per model. `upgrade_manifest` rewrites such a
manifest's data into the current schema, so `report` and `--resume` keep working on old run folders."""

from __future__ import annotations

from typing import Any

__all__ = ["upgrade_manifest"]

_TRAINING_KEYS = ("epochs_run", "best_epoch", "history", "resumed_after_epoch", "data_parallel", "teacher_cache", "params_vs_teacher")


def upgrade_manifest(data: dict[str, Any]) -> dict[str, Any]:
    """Manifest data of any known schema, as the current schema reads it."""
    if data.get("schema_version", 1) >= 2:
        return data
    metric = _task_metric(data)
    stages, training = [], {}
    for stage in data.get("stages", []):
        per_model = stage.get("metrics") or {}
        models = {name: _record(rec, per_model.get(name) or {}, metric) for name, rec in (stage.get("models") or {}).items()}
        for name, rec in models.items():  # schema 1 kept training facts in the training stage's metrics only
            rec["training"] = training[name] = rec["training"] or training.get(name)
        kept = {k: v for k, v in per_model.items() if k not in models}  # per-model facts now live in the records
        stages.append({**stage, "models": models, "metrics": _stage_metrics(stage.get("type"), kept)})
    info = {"name": metric, "higher_is_better": _higher_is_better(data, metric)} if metric else None
    return {**data, "schema_version": 2, "metric": info, "stages": stages}


def _higher_is_better(data: dict[str, Any], metric: str) -> bool:
    for stage in data.get("stages", []):
        for rec in (stage.get("models") or {}).values():
            for found in ((rec.get("metrics") or {}).get("metric_by_target") or {}).values():
                if "higher_is_better" in found:
                    return bool(found["higher_is_better"])
    return metric not in ("mse", "mae", "rmse", "loss")


def _task_metric(data: dict[str, Any]) -> str | None:
    """The task's metric name, from the first v1 record that names it."""
    for stage in data.get("stages", []):
        for rec in (stage.get("models") or {}).values():
            found = (rec.get("metrics") or {}).get("metric")
            if found:
                return found["name"]
            torch_test = (rec.get("metrics") or {}).get("torch_test")
            if torch_test:
                return next(iter(torch_test))
    return None


def _stage_metrics(kind: str | None, metrics: dict[str, Any]) -> dict[str, Any]:
    if kind == "benchmark":
        return {k: v for k, v in metrics.items() if k == "environment"}
    return metrics


def _record(rec: dict[str, Any], stage_facts: dict[str, Any], metric: str | None) -> dict[str, Any]:
    m = dict(rec.get("metrics") or {})
    quant = m.get("quant")
    out = {k: rec[k] for k in ("name", "stage", "spec", "checkpoint", "onnx") if k in rec}
    out |= {"kind": "int8" if quant else "fp32", "params": m.get("params"), "macs": m.get("macs"), "size_bytes": m.get("size_bytes")}
    if quant:  # schema 1 gave INT8 models their source's checkpoint; they exist as their ONNX file only
        out |= {"parent": quant.get("source"), "checkpoint": None}
    out["scores"] = _scores(m, quant, metric)
    out["parity"] = m.get("parity")
    out["training"] = _training(stage_facts, quant, m.get("distill"), metric)
    out["prune"] = _prune(m["prune"], metric) if m.get("prune") else None
    out["quant"] = _quant(quant) if quant else None
    out["bench"] = _bench(m)
    return out


def _scores(m: dict[str, Any], quant: dict[str, Any] | None, metric: str | None) -> list[dict[str, Any]]:
    scores = [{"split": "test", "runtime": "torch", "metric": k, "value": v} for k, v in (m.get("torch_test") or {}).items()]
    for target, found in (m.get("metric_by_target") or {}).items():
        split = found.get("split", "test")
        scores += [{"split": split, "runtime": target, "metric": k, "value": v} for k, v in (found.get("scores") or {}).items()]
    if quant and metric:
        runtimes = {"onnx": "onnxruntime", "fake_quant": "fake-quant", "calibrated_only": "calibrated-only"}
        for suffix, runtime in runtimes.items():
            if f"test_{metric}_{suffix}" in quant:
                scores.append({"split": "test", "runtime": runtime, "metric": metric, "value": quant[f"test_{metric}_{suffix}"]})
    return scores


def _training(
    facts: dict[str, Any], quant: dict[str, Any] | None, distill: dict[str, Any] | None, metric: str | None
) -> dict[str, Any] | None:
    source = facts if "epochs_run" in facts else (quant or {})
    found = {k: source[k] for k in _TRAINING_KEYS if k in source}
    if metric and f"best_val_{metric}" in source:
        found["best_val"] = source[f"best_val_{metric}"]
    controller = (distill or {}).get("controller") or facts.get("controller")
    if controller:
        found["controller"] = controller
    if facts.get("dagger"):
        found["dagger"] = facts["dagger"]
    return found or None


def _prune(prune: dict[str, Any], metric: str | None) -> dict[str, Any]:
    curve = [{**{k: v for k, v in p.items() if not k.startswith("val_")}, "val": p.get(f"val_{metric}")} for p in prune.get("curve", [])]
    return {**prune, "curve": curve}


def _quant(q: dict[str, Any]) -> dict[str, Any]:
    qad = q.get("mode") == "qad"
    out = {
        k: q[k]
        for k in ("source", "teacher", "calibration", "format", "format_reason", "integer_ops", "float_ops", "float_nodes")
        if k in q
    }
    out |= {"method": q.get("mode", "static"), "backend": "qad" if qad else q.get("backend", "ort")}
    out |= {
        "exclude_nodes": q.get("exclude_nodes") or [],
        "deployed": q.get("deployed"),
        "speed": q.get("speed"),
        "tuning": q.get("tuning"),
    }
    out |= {"reference": "fake-quant" if qad else "fp32 onnx", "vs_reference": q.get("vs_fake_quant") if qad else q.get("vs_fp32_onnx")}
    return out


def _bench(m: dict[str, Any]) -> dict[str, Any]:
    runners = m.get("runners") or {}
    targets = list(dict.fromkeys([*runners, *(m.get("latency_ms") or {}), *(m.get("skipped_targets") or {})]))
    return {
        t: {
            "runner": runners.get(t) or {"target": t},
            "latency_ms": (m.get("latency_ms") or {}).get(t, {}),
            "memory": (m.get("memory") or {}).get(t),
            "skipped": (m.get("skipped_targets") or {}).get(t),
        }
        for t in targets
    }
