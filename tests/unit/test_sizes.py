"""Small modules and functions: every breach of the limits is listed or excepted by name.

No module in alertsim/ over 350 lines and no function (methods and nested ones too) over
40, unless tests/size_exceptions.txt names it with a reason. The test lists every breach
at once, and every exception that went stale; `scripts/size_report` prints the breaches.
"""

from __future__ import annotations

from pathlib import Path

from tests.sizes import EXCEPTIONS, breaches, exceptions, functions, problems


def test_sizes() -> None:
    """Every module and function within its limit, or named in the exception file."""
    found = problems(breaches(), exceptions(EXCEPTIONS.read_text("utf-8")))
    assert found == [], "size rules (fix, or edit tests/size_exceptions.txt):\n" + "\n".join(
        found)


def test_the_checker_sees_breaches_and_stale_exceptions(tmp_path: Path) -> None:
    """A planted long module and function are found; a stale or missing exception too."""
    package = tmp_path / "alertsim"
    package.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(45))
    (package / "big.py").write_text(
        "class A:\n    async def long(self):\n" + body.replace("    ", "        ") + "\n"
        + "def short():\n    return 1\n" + "\n" * 400, "utf-8")
    found = breaches(package)
    assert set(found) == {"alertsim/big.py", "alertsim/big.py::A.long"}
    allowed = exceptions("# comment\nalertsim/big.py: generated\n"
                         "alertsim/big.py::short: was long\nalertsim/gone.py: moved\n")
    assert problems(found, allowed, root=tmp_path) == [
        "alertsim/big.py::A.long: 46 lines > 40",
        "stale exception alertsim/big.py::short: no longer a breach",
        "stale exception alertsim/gone.py: no such file",
    ]


def test_nested_functions_are_named_by_their_path() -> None:
    """`outer.inner` and `Class.method` name what the exception file lists."""
    import ast

    tree = ast.parse("def outer():\n    def inner():\n        pass\nclass C:\n    def m(self):"
                     "\n        pass\n")
    assert [n for n, _ in functions(tree)] == ["outer", "outer.inner", "C.m"]
