"""Writing benchmark results: a Markdown table and a JSON file, each with the date, machine,
versions and the exact command that reproduces them."""

from __future__ import annotations

import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from compress.fsio import write_json, write_text
from compress.manifest import environment

RESULTS = Path(__file__).resolve().parent / "results"


def provenance() -> dict[str, Any]:
    from compress.cpu import resolve_cpu

    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "environment": environment(resolve_cpu().as_dict()),
    }


def save(stem: str, title: str, header: list[str], rows: list[list[Any]], data: dict[str, Any], notes: str = "") -> Path:
    """Write results/<stem>.md and results/<stem>.json; returns the Markdown path."""
    info = provenance()
    env = info["environment"]
    lines = [f"# {title}", "", f"- date: {info['date']}", f"- machine: {env['cpu']}, {env['cores']} cores, {env['platform']}"]
    cpu = env["deploy_cpu"]
    lines += [f"- CPU kind: {cpu['host']} (INT8 kernels); features: {' '.join(cpu['host_features'])}"]
    lines += ["- versions: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)]
    lines += [f"- command: `{info['command']}`", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    if notes:
        lines += ["", notes]
    md = RESULTS / f"{stem}.md"
    write_text(md, "\n".join(lines) + "\n")
    write_json(RESULTS / f"{stem}.json", {**info, "results": data})
    return md
