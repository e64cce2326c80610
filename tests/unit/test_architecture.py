"""The tree's rules, read from the source: imports point inward and there are no cycles.

    domain       imports nothing else of alertsim
    mqtt         (transport) imports no service, adapters, clients, brokers, drills, cli,
                 web, fleet or conformance
    brokers      imports no service, adapters, clients, drills, cli, web, fleet, conformance
    clients      imports no service, adapters, drills, cli, web or fleet
    fleet        imports no service, adapters, drills, cli, web or conformance
    conformance  imports no service, adapters, clients, brokers, drills, cli, web or fleet
    web          imports no adapters, cli, drills, fleet, conformance, brokers, clients or
                 mqtt (its data comes from service events)
    service      imports no cli, drills, adapters, web or mqtt: the composition root is
                 `alertsim.bootstrap`, which only cli and drills import
    adapters     import no cli and no drills
    cli          imported by nothing but itself (settings are read at the edge)
    everything   no import cycles (sizes: tests/unit/test_sizes.py)

A rule that fails only because a move is not done yet is xfail(strict): it must start to
pass (and lose its mark) when the move lands.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "alertsim"


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
            "alertsim.drills.runner"} <= set(edges)
    for layer in ("mqtt", "brokers", "clients", "fleet", "conformance", "web", "adapters"):
        assert any(in_layer(m, f"alertsim.{layer}") for m in edges), layer
    assert "alertsim.domain.vocabulary" in edges["alertsim.domain.messages"]
    assert "alertsim.domain.topics" in edges["alertsim.service.config"]
    assert any(in_layer(t, "alertsim.mqtt") for m, ts in edges.items()
               if in_layer(m, "alertsim.brokers") for t in ts)


def test_domain_imports_nothing_else_of_alertsim() -> None:
    """The pure core depends on no other part of the package."""
    outside = [f"{m} -> {t}" for m, targets in graph().items() if in_layer(m, "alertsim.domain")
               for t in sorted(targets) if not in_layer(t, "alertsim.domain")]
    assert outside == []


# (layer, packages it must not import, xfail reason while a move is pending or None)
RULES = [
    ("alertsim.mqtt", ("service", "adapters", "clients", "brokers", "drills", "cli", "web",
                       "fleet", "conformance", "signing", "bootstrap"), None),
    ("alertsim.signing", ("service", "adapters", "clients", "brokers", "drills", "cli", "web",
                          "fleet", "conformance", "bootstrap"), None),
    ("alertsim.brokers", ("service", "adapters", "clients", "drills", "cli", "web", "fleet",
                          "conformance"), None),
    ("alertsim.clients", ("service", "adapters", "drills", "cli", "web", "fleet"), None),
    ("alertsim.fleet", ("service", "adapters", "drills", "cli", "web", "conformance"), None),
    ("alertsim.conformance", ("service", "adapters", "clients", "brokers", "drills", "cli",
                              "web", "fleet"), None),
    ("alertsim.web", ("adapters", "cli", "drills", "fleet", "conformance", "brokers",
                      "clients", "mqtt"), None),
    ("alertsim.service", ("cli", "drills", "bootstrap", "adapters", "web", "mqtt"), None),
    ("alertsim.adapters", ("cli", "drills", "bootstrap", "web", "clients", "fleet",
                           "conformance"), None),
]


@pytest.mark.parametrize(("layer", "forbidden"), [
    pytest.param(layer, forbidden, id=f"{layer.removeprefix('alertsim.')}-not-"
                 + "-".join(forbidden),
                 marks=[pytest.mark.xfail(strict=True, reason=why)] if why else [])
    for layer, forbidden, why in RULES])
def test_layer_imports_none_of(layer: str, forbidden: tuple[str, ...]) -> None:
    """The layer reaches into none of the forbidden packages, even from inside functions."""
    assert violations(layer, tuple(f"alertsim.{f}" for f in forbidden)) == []


def test_only_cli_and_drills_import_the_composition_root() -> None:
    """`alertsim.bootstrap` wires the adapters in; only the entry points use it."""
    callers = ("alertsim.cli", "alertsim.__main__", "alertsim.drills", "alertsim.bootstrap")
    inward = [f"{m} -> {t}" for m, targets in graph().items()
              if not any(in_layer(m, c) for c in callers)
              for t in sorted(targets) if in_layer(t, "alertsim.bootstrap")]
    assert inward == []


def test_the_composition_root_is_bootstrap() -> None:
    """The root exists where the rules above expect it, and the old one is gone."""
    assert "alertsim.bootstrap" in modules()
    assert "alertsim.service" + ".run" not in modules()  # split so a rename sed skips it


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
