"""No block of more than 10 lines copied in alertsim/.

Each line is normalised (whitespace stripped; blank lines and `#`-only comment lines
dropped); a window of 11 consecutive normalised lines that appears twice, in one file or
two, is a copy. Windows made only of imports and bare punctuation (`)`, `]`, ...) do not
count.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "alertsim"
WINDOW = 11
_TRIVIAL = re.compile(r"^(?:import\s|from\s\S+\simport\s|[()\[\]{},:;]+$)")


def normalised(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of the lines that count."""
    out = []
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append((number, line))
    return out


def copies(paths: Iterable[Path], root: Path) -> list[str]:
    """'a.py:3-15 = b.py:40-52' for each window that appears more than once."""
    seen: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for path in paths:
        lines = normalised(path)
        name = path.relative_to(root).as_posix()
        for i in range(len(lines) - WINDOW + 1):
            window = lines[i:i + WINDOW]
            key = tuple(text for _, text in window)
            if all(_TRIVIAL.match(text) for text in key):
                continue
            seen[key].append(f"{name}:{window[0][0]}-{window[-1][0]}")
    return [" = ".join(where) for where in seen.values() if len(where) > 1]


def test_no_copied_blocks() -> None:
    """No window of 11 normalised lines appears twice in alertsim/."""
    found = copies(sorted(PACKAGE.rglob("*.py")), PACKAGE.parent)
    assert found == [], "copied blocks (overlapping windows of one copy are listed each):\n" \
        + "\n".join(found)


def test_a_planted_copy_is_found(tmp_path: Path) -> None:
    """A block pasted into a second file (reindented, with a comment) is reported; the
    same imports in both files are not."""
    block = [f"total += {i} * factor" for i in range(11)]
    imports = [f"import mod{i}" for i in range(12)]
    a = tmp_path / "a.py"
    b = tmp_path / "b.py"
    a.write_text("\n".join([*imports, "def f():", *("    " + x for x in block), ""]), "utf-8")
    b.write_text("\n".join([*imports, "", "x = 1", "# pasted", *("        " + x for x in block),
                            ""]), "utf-8")
    assert copies([a, b], tmp_path) == ["a.py:14-24 = b.py:16-26"]


def test_a_copy_within_one_file_is_found(tmp_path: Path) -> None:
    """The same 11 lines twice in one file count too; 10 lines do not."""
    block = [f"y = call({i})" for i in range(11)]
    one = tmp_path / "one.py"
    one.write_text("\n".join([*block, "", "z = 0", *block]), "utf-8")
    assert copies([one], tmp_path) == ["one.py:1-11 = one.py:14-24"]
    one.write_text("\n".join([*block[:10], "z = 0", *block[:10]]), "utf-8")
    assert copies([one], tmp_path) == []
