"""Scenario YAML read with the line of every field, and validation errors told as
`FILE:LINE: field.path: what is wrong` (the loader in drills/scenario.py uses both)."""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from yaml.constructor import ConstructorError

from alertsim.drills.scenario_fields import Located
from alertsim.errors import Location, describe_validation_error, dotted

__all__ = ["Lines", "describe", "parse", "yaml_problem"]

# --- YAML with positions -------------------------------------------------------------

FieldPath = tuple[str, ...]
Lines = dict[FieldPath, int]  # field path -> 1-based line


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode,
                          deep: bool = False) -> dict[Hashable, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           f"found duplicate key {key_node.value!r}",
                                           key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _index_lines(node: yaml.Node, path: FieldPath, lines: Lines) -> None:
    """Record the 1-based line of every mapping key and sequence item under `node`."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, str(key_node.value))
            lines[child] = key_node.start_mark.line + 1
            _index_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*path, str(i))
            lines[child] = item.start_mark.line + 1
            _index_lines(item, child, lines)


def parse(text: str) -> tuple[object, Lines]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {(): 1}
        lines: Lines = {(): node.start_mark.line + 1}
        _index_lines(node, (), lines)
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


_KEY = re.compile(r"^\s*(?:-\s+)?([A-Za-z_][\w-]*)\s*:")


def _nearest_key(text: str, line: int) -> str | None:
    """The last `key:` at or before `line`, to point a reader at a syntax error."""
    for raw in reversed(text.splitlines()[:line]):
        match = _KEY.match(raw)
        if match:
            return match[1]
    return None


def yaml_problem(source: str, text: str, exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is not None:
            line = mark.line + 1
            key = _nearest_key(text, line)
            near = f" near '{key}'" if key else ""
            context = ""
            if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
                context = f" ({exc.context} started at line {exc.context_mark.line + 1})"
            return (f"{source}:{line}: invalid YAML{near} (column {mark.column + 1}): "
                    f"{problem}{context}")
        return f"{source}: invalid YAML: {problem}"
    return f"{source}: invalid YAML: {exc}"


# --- validation errors, located ------------------------------------------------------

def _line_of(loc: tuple[int | str, ...], lines: Lines) -> int:
    """Line of the deepest part of `loc` found in the document (a missing key's parent)."""
    key = tuple(str(p) for p in loc)
    while key not in lines:
        key = key[:-1]
    return lines[key]


def describe(source: str, exc: ValidationError, lines: Lines,
             skip: frozenset[str] = frozenset(), limit: int = 10) -> str:
    """`FILE:LINE: field.path: what is wrong` lines, through the one shared formatter."""

    def locate(loc: Location, err: ErrorDetails) -> str:
        loc = tuple(part for part in loc if str(part) not in skip)
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, Located):
            loc = (*loc, *error.loc)
        return f"{source}:{_line_of(loc, lines)}: {dotted(loc)}"

    problems = describe_validation_error(exc, limit, locate=locate, echo=False)
    return "\n".join(f"{source}: {line}" if line.startswith("... and") else line
                     for line in problems)
