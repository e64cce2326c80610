"""Identifiers under a shared identity secret: the same in every redundant service, per secret."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from alertsim.cli import main
from alertsim.domain.identifiers import shared_identity
from alertsim.domain.lifecycle import DEFAULT_CONFIRM_AFTER
from alertsim.domain.messages import Alert
from alertsim.domain.prefectures import Atlas
from alertsim.domain.timeline import Engine, OperatorAction
from alertsim.testing import DEFAULT_LAUNCH_TIME, make_detection

# Warns 03 (window ends 22:52:58 JST) and 05 (22:51:59).
TRACK = ((40.6, 126.4), (38.0, 150.0))
SECRET = b"a shared secret of at least 32 bytes, for tests"
FIRST = DEFAULT_LAUNCH_TIME + timedelta(minutes=2)
AFTER_WINDOWS = DEFAULT_LAUNCH_TIME + timedelta(minutes=10, seconds=30)
# Unconfirmed, "passed" is due confirm_after past the last window (22:52:58).
PASSED_DUE = DEFAULT_LAUNCH_TIME + timedelta(minutes=9, seconds=58) + DEFAULT_CONFIRM_AFTER


def engine(atlas: Atlas, secret: bytes | None = SECRET) -> Engine:
    """A fresh engine; `secret` is the shared identity secret (None: per-run identifiers)."""
    return Engine(atlas=atlas, policy="prefecture", status="Exercise", sender="s@x.invalid",
                  close_after=timedelta(minutes=10), events={}, identity_secret=secret)


def ids(alerts: list[Alert]) -> list[tuple[str | None, str, str]]:
    """(prefecture, stage, identifier) of each alert, sorted."""
    return sorted((a.prefecture, a.stage, a.identifier) for a in alerts)


def play(e: Engine, *, tick_at: datetime | None, nonce: str = "n") -> list[Alert]:
    """Sequence 1, an optional tick, then the final sequence 2 (flew over, fell far out at
    sea); `nonce` (and a secret made from it) is what the service would pass for a new
    event."""
    sent: list[Alert] = []
    first = make_detection(*TRACK, 30, 100, event_id="ev")
    sent += e.detection(first, now=FIRST, nonce=nonce, secret=f"secret-{nonce}").alerts
    if tick_at is not None:
        sent += [a for t in e.tick(now=tick_at) for a in t.alerts]
    final = make_detection(*TRACK, 30, 100, event_id="ev", sequence=2, outcome="impact")
    later = max(AFTER_WINDOWS, (tick_at or AFTER_WINDOWS) + timedelta(minutes=1))
    sent += e.detection(final, now=later, nonce="unused", secret="unused").alerts
    return sent


def test_two_engines_with_the_secret_mint_the_same_identifiers(atlas: Atlas) -> None:
    """One service sends "passed" when it falls due unconfirmed, the other on the final
    detection (and a different random nonce): with the shared secret every identifier
    matches; without it, none does."""
    ticked = play(engine(atlas), tick_at=PASSED_DUE, nonce="random1")
    untimed = play(engine(atlas), tick_at=None, nonce="random2")
    assert [(p, s) for p, s, _ in ids(ticked)] == [
        ("03", "passed"), ("03", "shelter"), ("05", "passed"), ("05", "shelter")]
    assert ids(ticked) == ids(untimed)
    assert len({i for _, _, i in ids(ticked)}) == 4
    legacy_ticked = ids(play(engine(atlas, None), tick_at=PASSED_DUE, nonce="random1"))
    legacy_untimed = ids(play(engine(atlas, None), tick_at=None, nonce="random2"))
    assert all(one != two for one, two in zip(legacy_ticked, legacy_untimed, strict=True))


def test_different_secrets_give_different_identifiers(atlas: Atlas) -> None:
    """Another secret changes every identifier, nonce and MAC alike."""
    mine = ids(play(engine(atlas), tick_at=None))
    theirs = ids(play(engine(atlas, b"another secret of at least 32 bytes!!"), tick_at=None))
    for (_, _, one), (_, _, two) in zip(mine, theirs, strict=True):
        assert one.split(".")[1] != two.split(".")[1]
        assert one.rsplit(".", 1)[1] != two.rsplit(".", 1)[1]


def test_shared_identifiers_cannot_be_guessed_without_the_secret(atlas: Atlas) -> None:
    """Knowing the shelter alerts, a forger guesses the readable part of "passed" but not its
    MAC, even with the derivation code and another secret."""
    e = engine(atlas)
    shelter = e.detection(make_detection(*TRACK, 30, 100, event_id="ev"), now=FIRST,
                          nonce="x", secret="y").alerts
    public = shelter[-1].identifier.split(".")
    passed = [a for t in e.tick(now=PASSED_DUE) for a in t.alerts if a.prefecture == "05"]
    assert passed[0].identifier.rsplit(".", 1)[0] == ".".join([*public[:4], "passed", "05"])
    forger = engine(atlas, b"a guess at the secret, 32 bytes or more")
    forged = forger.detection(make_detection(*TRACK, 30, 100, event_id="ev"), now=FIRST,
                              nonce="x", secret="y").alerts
    assert {a.identifier for a in forged}.isdisjoint({a.identifier for a in shelter})
    assert passed[0].identifier.rsplit(".", 1)[1] != public[-1]


def test_a_place_cancelled_is_not_warned_again(atlas: Atlas) -> None:
    """Shelter, cancel (no longer warned), then warned again by a later sequence: nothing
    more goes to that place (the flow's one closing message), the rest is withheld with its
    reason, and no identifier repeats."""
    e = engine(atlas)
    sent: list[Alert] = []
    withheld = []
    for sequence, impact in ((1, TRACK[1]), (2, (43.0, 145.0)), (3, TRACK[1])):
        detection = make_detection(TRACK[0], impact, 30, 100, event_id="ev", sequence=sequence)
        moved = e.detection(detection, now=FIRST, nonce="n", secret="s")
        sent += moved.alerts
        withheld += moved.withheld
    transition = e.action(OperatorAction(action="cancel", event_id="ev"), now=FIRST)
    assert transition is not None
    sent += transition.alerts
    stages = [(a.prefecture, a.stage) for a in sent if a.prefecture == "05"]
    assert stages == [("05", "shelter"), ("05", "cancel")]
    assert {w.prefecture for w in withheld} >= {"05"}
    assert len({a.identifier for a in sent}) == len(sent)


def test_identity_follows_event_and_launch() -> None:
    """The derived nonce and secret depend on the event id and launch time, not on the
    sequence: every detection of one launch maps to one identity."""
    base = shared_identity(make_detection(*TRACK, 30, 100, event_id="ev"), SECRET)
    assert base == shared_identity(make_detection(*TRACK, 10, 50, event_id="ev", sequence=7),
                                   SECRET)
    assert base != shared_identity(make_detection(*TRACK, 30, 100, event_id="ev2"), SECRET)
    later = make_detection(*TRACK, 30, 100, event_id="ev",
                           launch_time=DEFAULT_LAUNCH_TIME + timedelta(hours=1))
    assert base != shared_identity(later, SECRET)
    assert len(base[0]) == 8
    assert len(base[1]) == 64


def test_serve_refuses_a_short_or_missing_secret_file(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`serve --identity-secret-file` exits 2 before connecting when the file is missing or
    under 32 bytes, naming the file but never echoing its content."""
    short = tmp_path / "short.secret"
    short.write_text("tiny-secret-value\n", "utf-8")
    assert main(["serve", "--identity-secret-file", str(short),
                 "--broker", "mqtt://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert str(short) in err
    assert "at least 32 bytes (found 17)" in err
    assert "tiny-secret-value" not in err
    assert main(["serve", "--identity-secret-file", str(tmp_path / "absent"),
                 "--broker", "mqtt://127.0.0.1:1"]) == 2
    assert "identity_secret_file" in capsys.readouterr().err
