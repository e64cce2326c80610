"""The tree's rules, read from the source: imports point inward, no cycles, small modules.

    domain     imports nothing else of alertsim
    service    imports no cli and no drills; no adapters either, but for its composition
               root `alertsim.service.run`
    adapters   import no cli and no drills
    web        (the map and dashboard, an adapter) imports no cli and no drills; service
               imports it only in its composition root `alertsim.service.run`
    cli        imported by nothing but itself (settings are read at the edge)
    everything no import cycles; modules up to 400 lines, functions up to 50
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "alertsim"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def module_name(path: Path) -> str:
    """`alertsim.adapters.mqtt.link` for alertsim/adapters/mqtt/link.py."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path) -> Iterator[str]:
    """Names of alertsim modules `path` imports anywhere (top level or inside functions)."""
    tree = ast.parse(path.read_text("utf-8"))
    known = modules()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from alertsim.domain import topics` imports the module alertsim.domain.topics
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if n in known else node.module for n in names]
        else:
            continue
        yield from (n for n in names if n == "alertsim" or n.startswith("alertsim."))


@cache
def graph() -> dict[str, frozenset[str]]:
    """Module -> the alertsim modules it imports (resolved to modules that exist)."""
    known = modules()

    def resolve(name: str) -> str:
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    return {name: frozenset(resolve(n) for n in imported(path)) - {name}
            for name, path in known.items()}


def in_layer(module: str, layer: str) -> bool:
    """True when `module` is `layer` or inside it."""
    return module == layer or module.startswith(layer + ".")


def violations(source_layer: str, forbidden: tuple[str, ...],
               exempt: tuple[str, ...] = ()) -> list[str]:
    """'a -> b' for every import from `source_layer` into a forbidden layer."""
    found = []
    for module, targets in graph().items():
        if not in_layer(module, source_layer) or module in exempt:
            continue
        found += [f"{module} -> {t}" for t in sorted(targets)
                  if any(in_layer(t, layer) for layer in forbidden)]
    return found


def test_the_graph_sees_the_layers() -> None:
    """The parser finds the layers and real edges, so the rules below cannot pass vacuously."""
    edges = graph()
    assert {"alertsim.domain.warnings", "alertsim.service.service", "alertsim.cli",
            "alertsim.adapters.mqtt.link", "alertsim.drills.runner"} <= set(edges)
    assert "alertsim.domain.vocabulary" in edges["alertsim.domain.messages"]
    assert "alertsim.service.service" in edges["alertsim.adapters.mqtt.link"]
    assert "alertsim.domain.topics" in edges["alertsim.service.config"]


def test_domain_imports_nothing_else_of_alertsim() -> None:
    """The pure core depends on no other part of the package."""
    outside = [f"{m} -> {t}" for m, targets in graph().items() if in_layer(m, "alertsim.domain")
               for t in sorted(targets) if not in_layer(t, "alertsim.domain")]
    assert outside == []


def test_service_and_adapters_import_no_cli_or_drills() -> None:
    """The application and its adapters never reach out to the CLI or the drill tools."""
    forbidden = ("alertsim.cli", "alertsim.drills")
    assert violations("alertsim.service", forbidden) == []
    assert violations("alertsim.adapters", forbidden) == []


def test_web_is_an_adapter() -> None:
    """The map and dashboard reach no CLI or drill code; only `service.run` wires them in."""
    assert violations("alertsim.web", ("alertsim.cli", "alertsim.drills")) == []
    assert violations("alertsim.service", ("alertsim.web",),
                      exempt=("alertsim.service.run",)) == []


def test_service_core_imports_no_adapter() -> None:
    """Only the composition root `service.run` wires adapters in; the service sees ports."""
    assert violations("alertsim.service", ("alertsim.adapters",),
                      exempt=("alertsim.service.run",)) == []


def test_nothing_below_the_cli_imports_it() -> None:
    """Settings and flags stay at the edge: no module but `python -m alertsim` imports it."""
    entry_points = ("alertsim.cli", "alertsim.__main__")
    inward = [f"{m} -> {t}" for m, targets in graph().items()
              if not any(in_layer(m, e) for e in entry_points)
              for t in sorted(targets) if in_layer(t, "alertsim.cli")]
    assert inward == []


def find_cycle(edges: dict[str, frozenset[str]]) -> list[str] | None:
    """One import cycle as a path of module names, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    """The cycle finder reports a planted cycle (so an empty answer means something)."""
    planted = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}),
               "d": frozenset({"a"})}
    assert find_cycle(planted) == ["a", "b", "c", "a"]
    assert find_cycle({"a": frozenset({"b"}), "b": frozenset()}) is None


def test_no_import_cycles() -> None:
    """No module of the package imports itself through others, even from inside functions.

    A package's `__init__` re-exporting its own modules is not a cycle of design, so edges
    from a package to its own submodules are left out.
    """
    edges = {m: frozenset(t for t in targets if not in_layer(t, m))
             for m, targets in graph().items()}
    assert find_cycle(edges) is None


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_is_small_enough(name: str) -> None:
    """Every module reads in one sitting: at most 400 lines, functions at most 50."""
    source = modules()[name].read_text("utf-8")
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno is not None
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []
