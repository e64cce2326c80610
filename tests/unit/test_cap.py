"""CAP 1.2 XML: every stage of every shipped scenario renders as a document the OASIS CAP 1.2
XSD accepts (lxml), with the content CAP consumers rely on; invalid documents are refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import get_args

import pytest
from lxml import etree
from shapely.geometry import Polygon

from alertsim.data import load_atlas
from alertsim.domain.cap import (
    CAP_NAMESPACE,
    MAX_POLYGONS,
    POINTS_PER_POLYGON,
    CapRenderer,
    cap_time,
    render_cap,
)
from alertsim.domain.messages import Alert
from alertsim.domain.prefectures import Atlas
from alertsim.domain.timeline import simulate
from alertsim.domain.vocabulary import Stage
from alertsim.drills.dry_run import service_config
from alertsim.drills.scenario import load_scenario
from tests.cap_xsd import NS, cap_errors, polygon_errors, xsd_errors

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))
CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


@cache
def renderer() -> CapRenderer:
    return CapRenderer(load_atlas())


def scenario_alerts(path: Path) -> Iterator[Alert]:
    """Every alert the scenario produces, from the in-process timeline the dry run uses."""
    scenario = load_scenario(path)
    engine = service_config(scenario).engine(load_atlas())
    for sent in simulate(scenario.timeline_inputs(), engine, nonce="captest"):
        yield sent.alert


def texts(root: etree._Element, path: str) -> list[str]:
    return [e.text or "" for e in root.iterfind(path, NS)]


def check_content(alert: Alert, document: bytes) -> None:
    """What the XSD cannot see: the CAP says what the JSON alert says."""
    root = etree.fromstring(document)
    assert root.tag == f"{{{CAP_NAMESPACE}}}alert"
    assert texts(root, "cap:identifier") == [alert.identifier]
    assert texts(root, "cap:status") == [alert.status] != ["Actual"]
    assert texts(root, "cap:msgType") == [alert.msgType]
    assert texts(root, "cap:sent") == [alert.sent.isoformat()]
    assert CAP_TIME.match(texts(root, "cap:sent")[0])
    assert texts(root, "cap:references") == ([" ".join(alert.references)] if alert.references
                                             else [])
    infos = root.findall("cap:info", NS)
    assert [texts(i, "cap:language")[0] for i in infos] == ["ja-JP", "en-US"]
    for info, source in zip(infos, alert.info, strict=True):
        assert texts(info, "cap:headline") == [source.headline]
        assert all(CAP_TIME.match(t) for t in texts(info, "cap:expires"))
        geocodes = dict(zip(texts(info, "cap:area/cap:geocode/cap:valueName"),
                            texts(info, "cap:area/cap:geocode/cap:value"), strict=True))
        polygons = texts(info, "cap:area/cap:polygon")
        if alert.prefecture is None:
            assert geocodes == {}
            assert polygons == []
        else:
            assert geocodes == {"JIS X 0401": alert.prefecture,
                                "ISO 3166-2": f"JP-{alert.prefecture}"}
            assert 1 <= len(polygons) <= MAX_POLYGONS


def _sends_something(path: Path) -> bool:
    expect = load_scenario(path).expect
    return bool(expect.prefectures or expect.national)


# Every scenario but those where, as J-Alert, nothing is sent (2017-11-29).
SENDING = [p for p in SCENARIOS if _sends_something(p)]


@pytest.mark.parametrize("path", SENDING, ids=[p.stem for p in SENDING])
def test_every_stage_of_the_scenario_is_valid_cap(path: Path) -> None:
    """Each alert of the scenario: XSD-valid CAP 1.2 with its polygons well formed."""
    alerts = list(scenario_alerts(path))
    assert alerts
    for alert in alerts:
        document = renderer().render(alert)
        assert cap_errors(document) == [], (alert.identifier, document.decode())
        check_content(alert, document)


def test_the_scenarios_cover_every_stage() -> None:
    """Together the shipped scenarios render every stage, national included."""
    stages = {a.stage for path in SCENARIOS for a in scenario_alerts(path)}
    assert stages == set(get_args(Stage))


def _valid_document() -> tuple[Alert, bytes]:
    alert = next(a for path in SCENARIOS for a in scenario_alerts(path)
                 if a.references and a.msgType == "Update")
    document = renderer().render(alert)
    assert xsd_errors(document) == []
    return alert, document


@pytest.mark.parametrize(("what", "old", "new"), [
    ("sent in UTC written with Z", rb"<sent>(\S+?)\+09:00</sent>", rb"<sent>\1Z</sent>"),
    ("status in lower case", rb"<status>Exercise</status>", rb"<status>exercise</status>"),
    ("unknown msgType", rb"<msgType>Update</msgType>", rb"<msgType>Replace</msgType>"),
    ("no urgency", rb"<urgency>[A-Za-z]+</urgency>", b""),
    ("elements out of order", rb"(<scope>Public</scope>)\s*(<code>[^<]+</code>)", rb"\2\1"),
    ("expires without offset", rb"<expires>(\S+?)\+09:00</expires>", rb"<expires>\1</expires>"),
    ("another namespace", CAP_NAMESPACE.encode(), b"urn:oasis:names:tc:emergency:cap:1.1"),
])
def test_invalid_documents_are_rejected(what: str, old: bytes, new: bytes) -> None:
    """The XSD refuses a document broken in one way (so a passing check means something)."""
    _, document = _valid_document()
    broken, count = re.subn(old, new, document, count=1)
    assert count == 1, what
    assert xsd_errors(broken) != [], what


@pytest.mark.parametrize(("polygon", "problem"), [
    ("35.0,139.0 35.1,139.1 35.0,139.2", "at least 4"),
    ("35.0,139.0 35.1,139.1 35.0,139.2 35.0,139.3", "first and last points differ"),
    ("35.0 139.0 35.1,139.1 35.0,139.2 35.0 139.0", "not a lat,lon pair"),
    ("95.0,139.0 35.1,139.1 35.0,139.2 95.0,139.0", "out of range"),
])
def test_polygon_check_catches_bad_polygons(polygon: str, problem: str) -> None:
    """The polygon check used above fails on each kind of bad CAP polygon."""
    assert any(problem in p for p in polygon_errors(polygon))


def test_cap_times_have_numeric_offsets() -> None:
    """JST keeps +09:00, UTC becomes -00:00 (never Z), fractions go, naive times are refused."""
    moment = datetime(2023, 11, 21, 13, 46, 0, 123456, tzinfo=UTC)
    assert cap_time(moment) == "2023-11-21T13:46:00-00:00"
    jst = timezone(timedelta(hours=9))
    assert cap_time(moment.astimezone(jst)) == "2023-11-21T22:46:00+09:00"
    assert cap_time(moment.astimezone(timezone(timedelta(hours=-3, minutes=-30)))) == \
        "2023-11-21T10:16:00-03:30"
    with pytest.raises(ValueError, match="offset"):
        cap_time(moment.replace(tzinfo=None))


def _shape(polygon: str) -> Polygon:
    return Polygon([(float(lon), float(lat)) for lat, lon in
                    (pair.split(",") for pair in polygon.split(" "))])


def test_every_prefecture_outline_fits_and_resembles_its_land(atlas: Atlas) -> None:
    """At most MAX_POLYGONS well-formed, simple polygons of at most POINTS_PER_POLYGON
    points; the first covers most of the largest land part and little else."""
    outlines = CapRenderer(atlas).outlines()
    assert set(outlines) == set(atlas.by_code)
    for code, polygons in outlines.items():
        assert 1 <= len(polygons) <= MAX_POLYGONS, code
        for polygon in polygons:
            assert polygon_errors(polygon) == [], code
            assert len(polygon.split(" ")) <= POINTS_PER_POLYGON, code
            assert _shape(polygon).is_valid, code  # no self-intersection after rounding
        largest = max(atlas.by_code[code].land.geoms, key=lambda g: g.area)
        first = _shape(polygons[0]).buffer(0)
        overlap = first.intersection(largest).area / first.union(largest).area
        assert overlap > 0.8, (code, overlap)


def test_okinawa_keeps_its_island_groups(atlas: Atlas) -> None:
    """Okinawa (warned in 2023 for its southern islands) gets more than its main island."""
    polygons = CapRenderer(atlas).polygons("47")
    southernmost = min(_shape(p).centroid.y for p in polygons)
    assert len(polygons) >= 3
    assert southernmost < 25.0  # Miyako / Yaeyama, not only Okinawa Island (26.5N)


def test_national_alerts_get_no_polygon_even_if_given() -> None:
    """A national message covers the country: polygons are not drawn for it."""
    national = next(a for path in SCENARIOS for a in scenario_alerts(path)
                    if a.prefecture is None)
    document = render_cap(national, ("35.0,139.0 35.1,139.1 35.0,139.2 35.0,139.0",))
    assert b"<polygon>" not in document
    assert xsd_errors(document) == []
