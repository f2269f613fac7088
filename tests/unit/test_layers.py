"""Imports run one way: api (cli, testing) -> pipeline (pipeline, recipe) -> stages -> engines (distill,
prune, quant, bench, report, rl, deploy) -> core (context, records, manifest, registry, data, models, ...).
The graph is read from the source (every import statement, also those inside functions; `if
TYPE_CHECKING:` blocks are skipped, they never run), so a violation fails here before it confuses anyone."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "compress"

LAYERS = {
    "api": ["compress.cli", "compress.cli_bench", "compress.cli_quick", "compress.starter", "compress.testing", "compress.__main__"],
    "pipeline": ["compress.pipeline", "compress.recipe"],
    "stages": ["compress.stages"],
    "engines": [
        "compress.distill",
        "compress.prune",
        "compress.quant",
        "compress.bench",
        "compress.report",
        "compress.rl",
        "compress.deploy",
    ],
    "core": [
        "compress.context",
        "compress.records",
        "compress.manifest",
        "compress.migrate",
        "compress.rundir",
        "compress.registry",
        "compress.data",
        "compress.models",
        "compress.config",
        "compress.errors",
        "compress.fsio",
        "compress.imports",
        "compress.cpu",
        "compress.cores",
        "compress.progress",
        "compress.distributed",
        "compress",
    ],
}
ORDER = list(LAYERS)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """The layer of a module: the longest declared prefix wins (compress.data.env is core, compress.deploy an engine)."""
    best = max(
        (
            (prefix, layer)
            for layer, prefixes in LAYERS.items()
            for prefix in prefixes
            if module == prefix or (prefix != "compress" and module.startswith(prefix + "."))  # the root only as itself
        ),
        key=lambda found: len(found[0]),
        default=None,
    )
    if best is None:
        raise AssertionError(f"{module} is in no declared layer: add it to LAYERS (and the README's layout section)")
    return best[1]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            lines |= {n.lineno for child in node.body for n in ast.walk(child) if hasattr(n, "lineno")}
    return lines


def imports_of(path: Path) -> set[str]:
    """Every `compress` module `path` imports (`from compress.x import y` counts y when it is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped, found = _type_checking_lines(tree), set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "compress"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "compress":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _exists(sub) else node.module)
    return found


def _exists(module: str) -> bool:
    rel = Path(*module.split("."))
    return (REPO / rel).with_suffix(".py").is_file() or (REPO / rel / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package_face(importer: str, imported: str) -> bool:
    """A package's __init__ re-exports its own modules; that is not an upward import."""
    return imported.startswith(importer + ".")


def violations(edges: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, imported in edges.items():
        for target in imported:
            if _is_package_face(module, target) or (target == "compress" and module != "compress"):
                continue  # `import compress` reads only __version__: the package face imports lazily
            if ORDER.index(layer_of(target)) < ORDER.index(layer_of(module)):
                wrong.append(f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})")
    return sorted(wrong)


def test_every_import_follows_the_layer_order():
    wrong = violations(graph())
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle in `edges` as a path, or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles_between_modules():
    edges = {m: {t for t in imported if not _is_package_face(m, t) and t != "compress"} for m, imported in graph().items()}
    cycle = _cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_cycles_between_engines():
    """Engines may use each other (prune times models with bench), but never both ways round."""
    engines = LAYERS["engines"]

    def engine(module: str) -> str | None:
        return next((e for e in engines if module == e or module.startswith(e + ".")), None)

    edges: dict[str, set[str]] = {e: set() for e in engines}
    for module, imported in graph().items():
        source = engine(module)
        edges.setdefault(source, set()).update(t for t in map(engine, imported) if source and t and t != source)
    cycle = _cycle({k: v for k, v in edges.items() if k})
    assert cycle is None, "engines import each other both ways: " + " -> ".join(cycle)


def test_the_checker_sees_a_violation_and_a_cycle():
    assert layer_of("compress.data.env") == "core" and layer_of("compress.deploy") == "engines"
    assert violations({"compress.context": {"compress.bench.runners"}}) == [
        "compress.context (core) imports compress.bench.runners (engines)"
    ]
    assert violations({"compress.stages.prune": {"compress.bench.runners", "compress.stages.base"}}) == []
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    with pytest.raises(AssertionError, match="in no declared layer"):
        layer_of("compress.somewhere_new")


def test_the_readme_declares_the_same_order():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    line = next((line for line in readme.splitlines() if re.search(r"cli\b.*->.*pipeline.*->.*stages.*->.*engines.*->.*core", line)), None)
    assert line is not None, "README.md's layout section must state the import order"
    for name in ("distill", "prune", "quant", "bench", "report", "rl", "deploy", "context", "records", "manifest", "data", "models"):
        assert name in line, f"README's import-order line does not name {name}"
