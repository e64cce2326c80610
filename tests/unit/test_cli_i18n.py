"""The CLI's own messages come from the `cli` catalogue (alertsim/i18n/cli.json), in
Japanese or English: no literal text printed or raised as a problem in alertsim/cli, every
key said exists, every key of the catalogue is said somewhere."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from alertsim.cli import main
from alertsim.i18n import catalogue

CLI = Path(__file__).resolve().parents[2] / "alertsim" / "cli"
# Files of other engineers this round, to be brought under the rule by them.
PENDING: set[str] = set()
OUTPUT = {"print", "echo", "secho", "write"}
PROBLEMS = {"InputError", "BadParameter"}
WORDS = re.compile(r"[A-Za-z]{2,}|[\u3040-\u30ff\u4e00-\u9fff]")


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(CLI.glob("*.py")):
        if path.name not in PENDING:
            yield path.name, ast.parse(path.read_text("utf-8"))


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _literal_text(node: ast.AST) -> bool:
    """A string literal or f-string whose own text has words (not only punctuation)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return WORDS.search(node.value) is not None
    if isinstance(node, ast.JoinedStr):
        return any(_literal_text(part) for part in node.values)
    if isinstance(node, ast.BinOp):
        return _literal_text(node.left) or _literal_text(node.right)
    if isinstance(node, ast.IfExp):
        return _literal_text(node.body) or _literal_text(node.orelse)
    return False


def literal_messages(tree: ast.Module) -> list[int]:
    """Lines where user-facing text is written as a literal instead of `say(KEY)`."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node)
        args: list[ast.AST] = []
        if name in OUTPUT:
            args = list(node.args[:1])
        elif name in PROBLEMS:
            args = [*node.args, *(k.value for k in node.keywords if k.arg != "source")]
            args = [e for a in args for e in (a.elts if isinstance(a, ast.List) else [a])]
            if name == "InputError" and node.args:
                args = args[1:] if node.args[0] is args[0] else args  # the source: a path
        found += [node.lineno for a in args if _literal_text(a)]
    return found


def said_keys() -> tuple[set[str], set[str]]:
    """Keys passed to `say` as literals, and prefixes of keys made with f-strings."""
    keys: set[str] = set()
    prefixes: set[str] = set()
    for _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node) == "say" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    keys.add(first.value)
                elif isinstance(first, ast.JoinedStr) and isinstance(
                        first.values[0], ast.Constant):
                    prefixes.add(str(first.values[0].value))
    return keys, prefixes


def test_no_literal_messages_in_the_cli() -> None:
    """Every printed line and every problem raised in alertsim/cli goes through `say`."""
    found = {name: lines for name, tree in _modules() if (lines := literal_messages(tree))}
    assert found == {}


def test_the_scan_sees_literals() -> None:
    """A planted print, problem and bad parameter with literal text are all found."""
    planted = ast.parse('print(f"wrote {n} files")\nInputError(str(p), ["no such file"])\n'
                        'raise typer.BadParameter("bad")\nprint(say("ok"))\nprint(x)\n'
                        'print("  ", end="")\n')
    assert literal_messages(planted) == [1, 2, 3]


def test_every_key_said_exists_and_every_key_is_said() -> None:
    """The catalogue and the code agree: no missing key, no unused one."""
    keys, prefixes = said_keys()
    known = set(catalogue("cli"))
    assert keys - known == set()
    unused = {k for k in known - keys if not any(k.startswith(p) for p in prefixes)}
    assert unused == set()


def test_detect_answers_cover_every_answer() -> None:
    """Each answer `detect` can get has its line in the catalogue."""
    from typing import get_args

    from alertsim.clients.detection import Answer

    assert {f"detect.{a}" for a in get_args(Answer)} <= set(catalogue("cli"))


@pytest.mark.parametrize(("lang", "expected"), [
    ("ja", "alertsim detect: /no/such.json の入力が不正です:"),
    ("en", "alertsim detect: invalid input in /no/such.json:"),
])
def test_lang_chooses_the_language(lang: str, expected: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`--lang ja|en` picks the language of the CLI's own messages; the next run is English."""
    assert main(["--lang", lang, "detect", "/no/such.json"]) == 2
    assert capsys.readouterr().err.splitlines()[0] == expected
    assert main(["detect", "/no/such.json"]) == 2
    assert "invalid input in" in capsys.readouterr().err


def test_lang_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """ALERTSIM_LANG=ja speaks Japanese without the flag."""
    monkeypatch.setenv("ALERTSIM_LANG", "ja")
    assert main(["detect", "/no/such.json"]) == 2
    assert "の入力が不正です" in capsys.readouterr().err
