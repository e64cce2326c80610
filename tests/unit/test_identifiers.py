"""Alert identifiers: never reused, and not predictable from earlier public alerts."""

from __future__ import annotations

from datetime import timedelta

from alertsim.domain.prefectures import Atlas
from alertsim.domain.timeline import Engine
from alertsim.testing import DEFAULT_LAUNCH_TIME, make_detection

TSUGARU = ((40.6, 126.4), (34.33, 178.57))


def engine(atlas: Atlas) -> Engine:
    """A fresh engine with the default policy."""
    return Engine(atlas=atlas, policy="prefecture", status="Exercise", sender="s@x.invalid",
                  close_after=timedelta(minutes=10), events={})


def test_identifier_ends_in_a_keyed_mac(atlas: Atlas) -> None:
    """The same event under two secrets gets identifiers that differ only in the MAC."""
    detection = make_detection(*TSUGARU, 30, 100, event_id="ev")
    now = DEFAULT_LAUNCH_TIME + timedelta(minutes=2)
    first = engine(atlas).detection(detection, now=now, nonce="n", secret="a" * 32).alerts
    second = engine(atlas).detection(detection, now=now, nonce="n", secret="b" * 32).alerts
    for one, two in zip(first, second, strict=True):
        assert one.identifier.rsplit(".", 1)[0] == two.identifier.rsplit(".", 1)[0]
        assert one.identifier != two.identifier
        assert len(one.identifier.rsplit(".", 1)[1]) == 16


def test_next_identifier_cannot_be_guessed_from_earlier_ones(atlas: Atlas) -> None:
    """Knowing the shelter alerts, the readable part of the "passed" identifier is guessable
    but the whole identifier is not: a forgery under the guess cannot pre-empt it."""
    e = engine(atlas)
    detection = make_detection(*TSUGARU, 30, 100, event_id="ev")
    shelter = e.detection(detection, now=DEFAULT_LAUNCH_TIME + timedelta(minutes=2), nonce="n",
                          secret="s3cr3t" * 5).alerts
    public = shelter[-1].identifier.split(".")
    counter = int(public[3]) + 1
    guess = ".".join([*public[:3], f"{counter:04d}", "passed", "01", public[-1]])
    passed = [a for t in e.tick(now=DEFAULT_LAUNCH_TIME + timedelta(hours=1)) for a in t.alerts
              if a.stage == "passed"]
    assert passed[0].identifier.rsplit(".", 1)[0] == guess.rsplit(".", 1)[0]
    assert passed[0].identifier != guess
    identifiers = [a.identifier for a in (*shelter, *passed)]
    assert len(set(identifiers)) == len(identifiers)
