"""The marks match what each test file starts, read from the files' source.

A file that constructs `MosquittoBroker(` carries `pytest.mark.mosquitto` (a test that only
uses the `mosquitto` fixture gets the mark from tests/conftest.py); a file that starts
nats-server (`NatsCluster(`, the `nats-server` binary) carries `pytest.mark.nats` (the
`nats_cluster` fixture marks its users). Unit files start nothing: no broker fixture, no
broker constructed, no real (not --dry-run) drill.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
BROKER_FIXTURES = {"mosquitto", "amqtt_broker", "nats_cluster"}
BROKER_CLASSES = {"MosquittoBroker", "EmbeddedBroker", "NatsCluster"}


@cache
def scanned_files() -> tuple[Path, ...]:
    return tuple(p for p in sorted(TESTS.rglob("test_*.py")) if p != Path(__file__).resolve())


def called(tree: ast.AST) -> set[str]:
    """Names of what the module calls (`X(...)` and `m.X(...)` both give X)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                out.add(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                out.add(node.func.attr)
    return out


def parameters(tree: ast.AST) -> set[str]:
    """Parameter names of every function in the module (tests and fixtures ask by name)."""
    return {arg.arg for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for arg in node.args.args + node.args.kwonlyargs}


def marks(tree: ast.AST) -> set[str]:
    """Names `X` of every `pytest.mark.X` in the module (pytestmark or decorators)."""
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "mark"}


def strings(tree: ast.AST) -> set[str]:
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text("utf-8"))


def test_files_that_start_mosquitto_carry_the_mark() -> None:
    """`MosquittoBroker(` in a file means `pytest.mark.mosquitto` in it."""
    unmarked = [str(p.relative_to(TESTS)) for p in scanned_files()
                if "MosquittoBroker" in called(tree := parsed(p))
                and "mosquitto" not in marks(tree)]
    assert unmarked == []


def test_files_that_start_nats_carry_the_mark() -> None:
    """`NatsCluster(` or the nats-server binary in a file means `pytest.mark.nats` in it."""
    unmarked = [str(p.relative_to(TESTS)) for p in scanned_files()
                if ("NatsCluster" in called(tree := parsed(p))
                    or any("nats-server" in s for s in strings(tree)))
                and "nats" not in marks(tree)]
    assert unmarked == []


def test_unit_files_start_no_broker() -> None:
    """No unit test asks for a broker fixture or constructs a broker."""
    found = []
    for path in scanned_files():
        if path.relative_to(TESTS).parts[0] != "unit":
            continue
        tree = parsed(path)
        found += [f"{path.name}: fixture {f}" for f in sorted(parameters(tree) & BROKER_FIXTURES)]
        found += [f"{path.name}: {c}(" for c in sorted(called(tree) & BROKER_CLASSES)]
        found += [f"{path.name}:{line}: a drill that is not --dry-run" for line in drills(tree)]
    assert found == []


def drills(tree: ast.AST) -> list[int]:
    """Lines of command lines (list literals) running `drill` without `--dry-run`: a real
    drill starts a broker (its embedded amqtt, or the one given)."""
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.List)
            and "drill" in (words := {e.value for e in node.elts if isinstance(e, ast.Constant)})
            and "--dry-run" not in words]


def test_the_scan_sees_what_it_looks_for() -> None:
    """The readers find calls, fixture parameters and marks (so the rules are not vacuous)."""
    tree = ast.parse("import pytest\npytestmark = pytest.mark.nats\n"
                     "@pytest.mark.mosquitto\nasync def test_x(mosquitto):\n"
                     "    MosquittoBroker()\n    brokers.NatsCluster(nodes=3)\n")
    assert {"MosquittoBroker", "NatsCluster"} <= called(tree)
    assert parameters(tree) == {"mosquitto"}
    assert marks(tree) == {"nats", "mosquitto"}
    assert drills(ast.parse('run([SCRIPT, "drill", "x.yaml"])\nmain(["drill", "--dry-run"])'
                            )) == [1]
    assert any("MosquittoBroker" in called(parsed(p)) for p in scanned_files())
