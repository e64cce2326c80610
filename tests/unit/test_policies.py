"""The rule of each era: `block-2017` reproduces the public record of 2012 to 2017, and
`auto` picks the rule in force on the launch date (docs/jalert.md, "Which areas get it").

The four launches, times JST; the uncertainty figures are alertsim's choice, not public:
- 2017-08-29 Hwasong-12: Sunan 05:58; fell 06:12 about 1,180 km east of Cape Erimo
  (estimate 41.0N 157.4E, jalert.md worked example 2); apogee about 550 km.
- 2017-09-15 Hwasong-12: Sunan 06:57; over Hokkaido about 07:04 to 07:06; fell about 07:16
  some 2,200 km east of Cape Erimo (Ministry of Defense). The point 42.0N 169.8E is ours:
  2,192 km east of Cape Erimo (41.93N 143.25E) on the WGS84 ellipsoid, checked below.
- 2016-02-07 Kwangmyongsong-4: Sohae 09:31; over Sakishima about 09:41; the object
  reaching orbit went on ~2,000 km south of Japan (16.0N 124.5E at 09:46 is ours).
- 2012-12-12 Unha-3: Sohae 09:49, southward; the government announced it passed over the
  Okinawa region about 10:01 and fell about 10:05 in the Pacific about 300 km east of the
  Philippines, and J-Alert went to every municipality of Okinawa (NTV, Jiji, 2012-12-12).
  The point 15.0N 126.0E is ours: the track crosses Miyakojima (Sakishima) at about
  125.5E; the nearest Philippine coasts (Catanduanes, Samar) are about 200 to 280 km away.
Both 2017 launches went to the same 12 prefectures; 2012 and 2016 to Okinawa alone.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from alertsim.cli import main
from alertsim.cli.service import _service_config
from alertsim.cli.settings import load_settings
from alertsim.domain.blocks import BLOCKS, block_of, warned_with
from alertsim.domain.detection import Detection
from alertsim.domain.model import JST
from alertsim.domain.policies import resolve_policy
from alertsim.domain.prefectures import Atlas
from alertsim.domain.vocabulary import PREFECTURE_CODES, Policy, PolicyChoice
from alertsim.domain.warnings import decide
from alertsim.testing import make_detection

GEOD = Geod(ellps="WGS84")
NOW = datetime(2024, 1, 1, tzinfo=UTC)
SOHAE = (39.660, 124.705)
SUNAN = (39.224, 125.670)
CAPE_ERIMO = (41.93, 143.25)
IMPACT_2017_09_15 = (42.0, 169.8)
# Hokkaido, the Tohoku block, Ibaraki, Tochigi, Gunma, Niigata and Nagano.
TWELVE = ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "15", "20"]
OKINAWA = ["47"]

LAUNCHES: dict[str, Detection] = {
    "2017-08-29": make_detection(
        SUNAN, (41.0, 157.4), 50, 200, event_id="2017-08-29-sunan", apogee_km=550,
        launch_time=datetime(2017, 8, 29, 5, 58, tzinfo=JST), flight=timedelta(minutes=14)),
    "2017-09-15": make_detection(
        SUNAN, IMPACT_2017_09_15, 50, 200, event_id="2017-09-15-sunan",
        launch_time=datetime(2017, 9, 15, 6, 57, tzinfo=JST), flight=timedelta(minutes=19)),
    "2016-02-07": make_detection(
        SOHAE, (16.0, 124.5), 50, 300, event_id="2016-02-07-sohae",
        launch_time=datetime(2016, 2, 7, 9, 31, tzinfo=JST), flight=timedelta(minutes=15),
        object_kind="space_launch_vehicle"),
    "2012-12-12": make_detection(
        SOHAE, (15.0, 126.0), 50, 300, event_id="2012-12-12-sohae",
        launch_time=datetime(2012, 12, 12, 9, 49, tzinfo=JST), flight=timedelta(minutes=16),
        object_kind="space_launch_vehicle"),
}
RECORD = {"2017-08-29": TWELVE, "2017-09-15": TWELVE, "2016-02-07": OKINAWA,
          "2012-12-12": OKINAWA}


def cli_decide(tmp_path: Path, capsys: pytest.CaptureFixture[str], launch: str,
               policy: PolicyChoice) -> dict[str, object]:
    """The JSON `alertsim decide --policy POLICY` prints for one of LAUNCHES."""
    path = tmp_path / f"{launch}.json"
    path.write_text(LAUNCHES[launch].model_dump_json(), "utf-8")
    assert main(["decide", str(path), "--policy", policy]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


@pytest.mark.parametrize("launch", list(RECORD))
def test_block_2017_reproduces_the_record(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          launch: str) -> None:
    """`decide --policy block-2017` warns exactly the prefectures J-Alert warned that day."""
    out = cli_decide(tmp_path, capsys, launch, "block-2017")
    assert out["shelter"] == RECORD[launch]
    assert out["policy"] == "block-2017"


@pytest.mark.parametrize("launch", list(RECORD))
def test_auto_takes_the_rule_of_the_launch_date(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], launch: str) -> None:
    """`decide --policy auto` on a launch before 2018-01-08 applies block-2017."""
    out = cli_decide(tmp_path, capsys, launch, "auto")
    assert (out["policy"], out["shelter"]) == ("block-2017", RECORD[launch])


def test_2017_09_15_impact_is_about_2200_km_east_of_cape_erimo() -> None:
    """The impact point chosen for 2017-09-15 lies ~2,200 km east of Cape Erimo."""
    azimuth, _, metres = GEOD.inv(CAPE_ERIMO[1], CAPE_ERIMO[0], IMPACT_2017_09_15[1],
                                  IMPACT_2017_09_15[0])
    assert 2150 < metres / 1000 < 2250
    assert 60 < azimuth < 120


def test_block_members_carry_reason_via_and_window(atlas: Atlas) -> None:
    """On 2017-08-29 the corridor hits Hokkaido and Aomori; the other ten come in as
    `block`, via both, over the span of both windows."""
    decision = decide(LAUNCHES["2017-08-29"], atlas, policy="block-2017", now=NOW)
    hokkaido, aomori = decision.warned("01"), decision.warned("02")
    assert hokkaido is not None
    assert aomori is not None
    assert (hokkaido.reason, aomori.reason) == ("overflight", "overflight")
    assert hokkaido.overflown
    for code in sorted(set(TWELVE) - {"01", "02"}):
        added = decision.warned(code)
        assert added is not None
        assert (added.reason, added.via, added.overflown) == ("block", ("01", "02"), False)
        assert added.window.start == min(hokkaido.window.start, aomori.window.start)
        assert added.window.end == max(hokkaido.window.end, aomori.window.end)
    assert decision.course == "flies_over"


@pytest.mark.parametrize(("day", "policy"), [
    (date(2017, 8, 29), "block-2017"),
    (date(2018, 1, 7), "block-2017"),
    (date(2018, 1, 8), "prefecture"),
    (date(2022, 10, 4), "prefecture"),
    (date(2023, 11, 21), "prefecture+adjacent"),
    # A datetime counts by its JST date: 2018-01-07 23:30 UTC is 08:30 on the 8th in Japan.
    (datetime(2018, 1, 7, 23, 30, tzinfo=UTC), "prefecture"),
])
def test_auto_resolves_by_era(day: date, policy: Policy) -> None:
    """`resolve_policy("auto", day)` is the rule in force on that day."""
    assert resolve_policy("auto", day) == policy


def test_a_named_policy_resolves_to_itself() -> None:
    """A named policy is kept whatever the date."""
    assert resolve_policy("block-2017", date(2024, 5, 27)) == "block-2017"


@pytest.mark.parametrize(("launch", "policy"), [
    ("2017-08-29", "block-2017"),
    ("2016-02-07", "block-2017"),
])
def test_serve_resolves_auto_per_launch_date(atlas: Atlas, launch: str, policy: Policy) -> None:
    """`serve --policy auto` decides each detection under the rule of its launch's date."""
    config = _service_config(load_settings(policy="auto"))
    assert config.policy == "auto"
    engine = config.engine(atlas)
    detection = LAUNCHES[launch]
    moved = engine.detection(detection, now=detection.observed_at, nonce="n")
    assert moved.state.decision is not None
    assert moved.state.decision.policy == policy


def test_blocks_partition_the_prefectures(atlas: Atlas) -> None:
    """Nine blocks hold every prefecture once and follow the atlas's regions, Okinawa alone."""
    members = [code for block in BLOCKS for code in block.members]
    assert sorted(members) == list(PREFECTURE_CODES)
    assert len(BLOCKS) == 9
    assert block_of("47").members == ("47",)
    for pref in atlas.prefectures:
        expected = "Okinawa" if pref.code == "47" else pref.region.removesuffix("-Okinawa")
        assert block_of(pref.code).name == expected


def test_only_the_northern_blocks_have_related_areas() -> None:
    """Related areas are on record for Hokkaido and Tohoku only; each warns the same 12."""
    assert {b.name for b in BLOCKS if b.related} == {"Hokkaido", "Tohoku"}
    for block in BLOCKS:
        assert not set(block.related) & set(block.members)
    assert sorted(warned_with("01")) == sorted(warned_with("02")) == TWELVE
    assert warned_with("13") == frozenset(block_of("13").members)


launches = st.tuples(st.floats(33.0, 42.0), st.floats(123.0, 130.0))
impacts = st.tuples(st.floats(22.0, 46.0), st.floats(122.0, 160.0))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(launches, impacts, st.floats(0.0, 150.0), st.floats(0.0, 300.0))
def test_block_2017_keeps_every_direct_hit(atlas: Atlas, launch: tuple[float, float],
                                           impact: tuple[float, float], cross: float,
                                           along: float) -> None:
    """block-2017 warns a superset of `prefecture`'s hits, keeps each as it is, and adds
    only block members or related areas of those hits, with reason `block`."""
    assume(abs(launch[0] - impact[0]) + abs(launch[1] - impact[1]) > 0.5)
    detection = make_detection(launch, impact, cross, along, flight=timedelta(minutes=12))
    direct = decide(detection, atlas, policy="prefecture", now=NOW)
    block = decide(detection, atlas, policy="block-2017", now=NOW)
    assert set(direct.shelter) <= set(block.shelter)
    for hit in direct.prefectures:
        assert block.warned(hit.code) == hit
    for added in block.prefectures:
        if added.code in direct.shelter:
            continue
        assert added.reason == "block"
        assert added.via
        assert set(added.via) == {c for c in direct.shelter if added.code in warned_with(c)}
