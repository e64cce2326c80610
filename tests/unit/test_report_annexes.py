"""The report's annexes and the document's parts, pure: the texts sent grouped by wording,
the audit log and refusal counters kept per drill and event, the zoomed map of the warned
area, and labels in both languages."""

from __future__ import annotations

from datetime import datetime, timedelta

from alertsim.adapters.sqlite.rows import AuditRow, RefusalCountRow
from alertsim.domain import texts
from alertsim.domain.messages import build_alert
from alertsim.domain.model import JST
from alertsim.domain.vocabulary import Stage
from alertsim.drills.report.annexes import message_texts, with_annexes
from alertsim.drills.report.labels import place_name, stage_words
from alertsim.drills.report.model import DrillReport
from alertsim.service.records import OutboxRow
from alertsim.web.map_zoom import render_zoom_svg, zoom_box

T0 = datetime(2025, 1, 1, 10, 0, tzinfo=JST)


def row(n: int, stage: Stage, code: str, bilingual: texts.Bilingual) -> OutboxRow:
    """An outbox alert row as the service writes it."""
    alert = build_alert(identifier=f"A{n}", sender="alertsim", status="Exercise", sent=T0,
                        msg_type="Alert", stage=stage, texts=bilingual,
                        event_id="ev", sequence=1, object_kind="ballistic_missile", code=code,
                        name_ja="県", name_en="Pref")
    return OutboxRow(message_id=f"A{n}", event_id="ev", kind="alert", msg_type="Alert",
                     prefecture=code, stage=stage, topic=f"x/alerts/{code}",
                     payload=alert.model_dump_json().encode(), qos=1, retain=False,
                     sim_time=T0, created_at=T0, expires_at=None, seq=n, published_at=T0)


def test_texts_are_grouped_by_wording_with_their_places() -> None:
    """One shelter text sent to two prefectures is one entry naming both; a cancel naming
    a place is its own; a payload that does not parse is left out."""
    shelter = texts.shelter()
    rows = [row(1, "shelter", "01", shelter), row(2, "shelter", "02", shelter),
            row(3, "cancel", "02", texts.cancel("青森県", "Aomori")),
            OutboxRow(**{**row(4, "shelter", "03", shelter).__dict__, "payload": b"{"})]
    found = message_texts(rows)
    assert [(m.stage, m.places) for m in found] == [("shelter", ("01", "02")),
                                                   ("cancel", ("02",))]
    assert found[0].ja.description == shelter.ja.description
    assert found[1].en.description.startswith("The missile is no longer expected to reach Aomori")


def test_annexes_follow_the_reported_event() -> None:
    """Restricted to one event, the report keeps that event's actions alone; the counters
    are kept with their times in JST."""
    report = DrillReport.model_validate({
        "drill_id": "d", "scenario": None, "policy": None, "status": None, "speed": None,
        "broker": None, "started_at": None, "finished_at": None, "event_id": "ev",
        "receivers": {}, "receivers_source": "drill settings", "timeline": [],
        "per_prefecture": [], "latency": {"count": 0},
        "national": {"place": "national", "sent": False, "stages_sent": [], "receivers": [],
                     "deliveries": 0, "missed": 0, "duplicates": 0,
                     "latency": {"count": 0}},
        "unmatched_receipts": 0, "expectations": {"judged": False}, "passed": None,
        "failures": []})
    audit = [AuditRow(T0, "operator", "cancel", "ev", "applied", "r/operator"),
             AuditRow(T0 + timedelta(seconds=1), None, "close", "other", None, "r/operator")]
    counted = [RefusalCountRow("r/detections", 3, 30, T0, T0)]
    annexed = with_annexes(report, [], counted, audit)
    assert [(a.action, a.by, a.answer) for a in annexed.audit] == [
        ("cancel", "operator", "applied")]
    assert annexed.refusals.counted[0].count == 3
    assert annexed.refusals.counted[0].first_at.utcoffset() == timedelta(hours=9)


def test_the_zoom_frames_okinawa_large_and_coloured() -> None:
    """Okinawa, a few pixels in the full map's inset, fills a zoomed figure of its own,
    coloured by its state, labelled in the page's language."""
    box = zoom_box(["47"])
    assert box is not None
    assert box.scale > 1.5  # larger than the full map's main frame, whose inset is 0.8
    svg = render_zoom_svg({"47": "shelter"}, ["47"], lang="ja")
    assert '<g class="prefecture" data-code="47" data-state="shelter">' in svg
    assert ">沖縄県</text>" in svg
    assert render_zoom_svg({}, []) == ""
    assert zoom_box(["national"]) is None


def test_labels_name_stages_and_places_in_both_languages() -> None:
    """The judge's words and stage codes read in Japanese; English keeps the judge's own."""
    assert stage_words("r1: shelter, passed", "ja") == (
        "r1: ミサイル発射（避難の呼びかけ）, ミサイル通過")
    assert stage_words("nothing to others (46 prefectures)", "ja") == "他の 46 都道府県へは送信なし"
    assert stage_words("nothing to others (46 prefectures)", "en") == (
        "nothing to others (46 prefectures)")
    assert (place_name("47", "ja"), place_name("47", "en")) == ("47 沖縄県", "47 Okinawa")
    assert place_name("national", "ja") == "全国"
