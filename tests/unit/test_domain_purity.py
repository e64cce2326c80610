"""The domain core does no I/O: no I/O modules imported, no clock read."""

from __future__ import annotations

import ast
from pathlib import Path

import alertsim.domain

FORBIDDEN_MODULES = {"asyncio", "aiomqtt", "aiosqlite", "structlog", "sqlite3", "socket", "time",
                     "os", "subprocess", "pathlib", "io", "shutil", "urllib", "http",
                     "logging", "random", "paho", "amqtt", "importlib"}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "open", "print", "input"}
DOMAIN = Path(alertsim.domain.__file__).parent


def violations(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        found += [f"import {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in FORBIDDEN_CALLS:
                found.append(f"call {name}() at line {node.lineno}")
    return found


def test_checker_catches_io() -> None:
    """The checker itself flags I/O imports and clock reads (so the next test can fail)."""
    bad = "import asyncio\nfrom time import sleep\nimport datetime\nx = datetime.datetime.now()\n"
    assert violations(bad) == ["import asyncio", "import time", "call now() at line 4"]


def test_domain_modules_do_no_io() -> None:
    """No module under alertsim/domain imports an I/O module or reads the clock."""
    files = sorted(DOMAIN.glob("*.py"))
    assert len(files) >= 5
    problems = {f.name: v for f in files if (v := violations(f.read_text("utf-8")))}
    assert problems == {}
