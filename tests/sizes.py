"""Module and function sizes of alertsim/, and the exception file that allows a few more.

Shared by tests/unit/test_sizes.py and scripts/size_report. An exception line reads
`alertsim/x/y.py: <reason>` (a module over the line limit) or
`alertsim/x/y.py::Class.func: <reason>` (a function over the line limit).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "alertsim"
EXCEPTIONS = ROOT / "tests" / "size_exceptions.txt"
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 40


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(qualified name, lines) of every function, method and nested function."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + node.name
            assert node.end_lineno is not None
            # decorators are not counted: the body from `def` to its last line
            yield name, node.end_lineno - node.lineno + 1
            yield from functions(node, name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, prefix + node.name + ".")
        else:
            yield from functions(node, prefix)


def breaches(package: Path = PACKAGE) -> dict[str, str]:
    """Key (`path` or `path::func`) -> what is too long, for every breach under `package`."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).as_posix()
        source = path.read_text("utf-8")
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            found[rel] = f"{lines} lines > {MAX_MODULE_LINES}"
        for name, length in functions(ast.parse(source)):
            if length > MAX_FUNCTION_LINES:
                found[f"{rel}::{name}"] = f"{length} lines > {MAX_FUNCTION_LINES}"
    return found


def exceptions(text: str) -> dict[str, str]:
    """Key -> reason from the exception file (blank lines and `#` comments skipped)."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, reason = line.partition(": ")
        if not sep or not reason.strip():
            raise ValueError(f"line {number}: want `path[::func]: reason`, got {raw!r}")
        out[key.strip()] = reason.strip()
    return out


def problems(found: dict[str, str], allowed: dict[str, str], root: Path = ROOT) -> list[str]:
    """Every breach not excepted, then every stale exception (no longer a breach, or gone)."""
    out = [f"{key}: {what}" for key, what in sorted(found.items()) if key not in allowed]
    for key in sorted(allowed):
        if key in found:
            continue
        path = key.split("::", 1)[0]
        why = "no such file" if not (root / path).is_file() else "no longer a breach"
        out.append(f"stale exception {key}: {why}")
    return out
