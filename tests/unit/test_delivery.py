"""The one delivery judge (alertsim.domain.delivery): the definitions the drill report and
the process fleet share."""

from __future__ import annotations

from alertsim.domain.delivery import ReceiverCopies, judge_deliveries

SENT = {"a1": "01", "a2": "01", "n1": "national", "t1": "13"}


def test_a_listener_that_got_nothing_missed_every_alert_of_its_places() -> None:
    """Expected at every listener of the place; missed when never got, in sending order."""
    verdict = judge_deliveries(SENT, [ReceiverCopies("r", ("01", "national"), first=())])
    (receiver,) = verdict.receivers
    assert receiver.missed == ("a1", "a2", "n1")
    assert {a.identifier: (a.expected, a.missed) for a in verdict.alerts} == {
        "a1": (1, 1), "a2": (1, 1), "n1": (1, 1), "t1": (0, 0)}


def test_first_copies_deliver_and_further_copies_are_duplicates() -> None:
    """A first copy is a delivery, each further copy a duplicate of that alert."""
    verdict = judge_deliveries(SENT, [
        ReceiverCopies("r", ("01",), first=("a2", "a1"), extra={"a1": 2})])
    (receiver,) = verdict.receivers
    assert receiver.delivered == ("a2", "a1")  # arrival order
    assert receiver.missed == ()
    assert receiver.duplicates == {"a1": 2}
    by_id = {a.identifier: a for a in verdict.alerts}
    assert (by_id["a1"].delivered, by_id["a1"].duplicates) == (1, 2)


def test_an_alert_for_another_place_is_wrong_area_and_not_counted_delivered() -> None:
    """A delivery of an alert for a place the receiver does not listen to is wrong area,
    and does not make up for the place's own listeners."""
    verdict = judge_deliveries(SENT, [ReceiverCopies("r01", ("01",), first=("t1",)),
                                      ReceiverCopies("r13", ("13",), first=())])
    r01, r13 = verdict.receivers
    assert r01.wrong_area == ("t1",)
    assert r13.missed == ("t1",)
    t1 = next(a for a in verdict.alerts if a.identifier == "t1")
    assert (t1.expected, t1.delivered, t1.missed) == (1, 0, 1)


def test_copies_of_alerts_not_sent_are_left_out() -> None:
    """Only the alerts judged count: a copy of anything else is neither delivered nor a
    duplicate (the report judges one drill's window of the record)."""
    verdict = judge_deliveries({"a1": "01"}, [
        ReceiverCopies("r", ("01",), first=("old", "a1"), extra={"old": 3})])
    (receiver,) = verdict.receivers
    assert receiver.delivered == ("a1",)
    assert receiver.duplicates == {}
