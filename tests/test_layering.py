"""The house's import arrows (docs/architecture.md): every arrow runs down, none goes round.

Every module's imports are read from its source (``ast``), those inside functions
included (a lazy import is still an arrow; only ``if TYPE_CHECKING:`` blocks are left
out, as they never run). Three rules:

1. No import runs up :data:`LAYERS`: a package imports only its own layer and those
   below it. ``bench/``, ``tests/`` and ``examples/`` stand outside and may import
   anything. Inside the env, ``dialog_env.lm`` and ``dialog_env.wrappers`` import no
   task's module (they know tasks only through the protocols of ``dialog_env.tasks`` and
   ``dialog_env.voicing``), and ``dialog_env.lm`` does not import ``dialog_env.tasks``
   at all.
2. No module imports a private name (``_x``) from another module: a name another module
   needs is public where it belongs. :data:`PRIVATE_IMPORTS_ALLOWED` lists the ones still
   waiting for a home, each with its reason.
3. No import circle among the packages' modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The packages, lowest first: each imports only its own layer and those below it. The
#: leaderboard plays agents through the Agent protocol and never trains; the trainers
#: evaluate on the leaderboard's episode sets (``leaderboard.episodes``,
#: ``leaderboard.rollout``); the CLI is above everything.
LAYERS = ("dialog_env", "agents", "leaderboard", "baselines", "dialog_bench")
#: Folders outside the layers, free to import any package.
OUTSIDE = ("bench", "tests", "examples")
#: Parts of the env that import no task's module (dialog_env.tasks.<task>...).
TASK_FREE = ("dialog_env.lm", "dialog_env.wrappers")

#: ``(importing module, "module:name")`` -> why the private import is still there; the
#: test fails on an entry that is no longer needed.
PRIVATE_IMPORTS_ALLOWED: dict[tuple[str, str], str] = {
    ("tests.leaderboard.test_chat_board", "leaderboard.store:_gold_scores"): (
        "trust: leaderboard/store.py is being changed; make it public or test it through the store"
    ),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _sources() -> dict[str, Path]:
    """Every module of the packages and of the folders outside them, by dotted name."""
    found = {}
    for top in (*LAYERS, *OUTSIDE):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[_module_name(path)] = path
    return found


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node``, bar those of ``if TYPE_CHECKING:`` bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif _is_type_checking(child):
            for other in child.orelse:
                yield from _import_nodes(other)
        else:
            yield from _import_nodes(child)


def _resolve(name: str) -> str | None:
    """The longest known module that ``name`` (a dotted import path) names or lies in."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in _sources():
            return candidate
    return None


@cache
def _imports(module: str) -> tuple[tuple[str, str | None, int], ...]:
    """``(imported module, name or None, line)`` for each import of one of ours."""
    path = _sources()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [(alias.name, None) for alias in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [(f"{base}.{alias.name}", alias.name) for alias in node.names]
            targets = [
                (full, None) if full in _sources() else (base, name) for full, name in targets
            ]
        for target, name in targets:
            resolved = _resolve(target)
            if resolved is not None:
                found.append((resolved, name, node.lineno))
    return tuple(found)


def _layer(module: str) -> int | None:
    top = module.split(".")[0]
    return LAYERS.index(top) if top in LAYERS else None


def _package_modules() -> list[str]:
    return [m for m in _sources() if _layer(m) is not None]


def test_the_scan_reads_lazy_imports_and_skips_type_checking_blocks():
    imports = {m for m, _, _ in _imports("leaderboard.render")}
    assert "leaderboard.html_page" in imports  # imported inside leaderboard_html()
    assert "dialog_env.tasks" not in {m for m, _, _ in _imports("dialog_env.lm.user_model")}
    assert len(_package_modules()) > 100


def test_no_import_runs_up_the_layers():
    upward = [
        f"{_sources()[m].relative_to(ROOT)}:{line} imports {target}"
        for m in _package_modules()
        for target, _, line in _imports(m)
        if _layer(target) is not None and _layer(target) > _layer(m)
    ]
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


@pytest.mark.parametrize("package", TASK_FREE)
def test_the_lm_and_the_wrappers_import_no_task(package):
    allowed = () if package == "dialog_env.lm" else ("dialog_env.tasks",)
    offending = [
        f"{_sources()[m].relative_to(ROOT)}:{line} imports {target}"
        for m in _package_modules()
        if m == package or m.startswith(package + ".")
        for target, _, line in _imports(m)
        if target.startswith("dialog_env.tasks") and target not in allowed
    ]
    assert not offending, "\n".join(offending)


def test_no_module_imports_a_private_name_from_another():
    found = {
        (m, f"{target}:{name}"): f"{_sources()[m].relative_to(ROOT)}:{line}"
        for m in _sources()
        for target, name, line in _imports(m)
        if name and name.startswith("_") and not name.startswith("__") and target != m
    }
    new = {key: where for key, where in found.items() if key not in PRIVATE_IMPORTS_ALLOWED}
    assert not new, "private names imported across modules:\n" + "\n".join(
        f"{where} imports {what}" for (_, what), where in sorted(new.items())
    )
    stale = sorted(set(PRIVATE_IMPORTS_ALLOWED) - set(found))
    assert not stale, f"allowed private imports that are gone (drop them from the list): {stale}"


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def test_circles_are_found():
    assert _circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle():
    modules = _package_modules()
    graph = {m: {t for t, _, _ in _imports(m) if t in modules and t != m} for m in modules}
    circles = _circles(graph)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)
