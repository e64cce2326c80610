"""Judging a client's receipts, check by check: pure functions over what arrived.

Every function takes the receipts that named the check's identifiers, in the order they
arrived, and returns a `CheckResult` (`pass`, `fail` or `skip`) whose reason says what was
seen and, on a failure, what a correct client does instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from alertsim.domain.messages import Alert, Receipt

__all__ = ["CheckResult", "ConformanceReport", "judge_duplicate", "judge_late_join",
           "judge_receipts", "judge_reorder", "judge_stage", "short"]

Verdict = Literal["pass", "fail", "skip"]


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    check: str
    verdict: Verdict
    reason: str


class ConformanceReport(BaseModel):
    """What `alertsim conformance --json FILE` writes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str
    prefecture: str
    topic_root: str
    broker: str
    run: str
    checks: tuple[CheckResult, ...]
    passed: bool


def short(alert: Alert) -> str:
    """An alert as reasons name it: `shelter #1 (Alert)`."""
    return f"{alert.stage} #{alert.alertsim.sequence} ({alert.msgType})"


def _of(receipts: Sequence[Receipt], alert: Alert) -> list[Receipt]:
    return [r for r in receipts if r.identifier == alert.identifier]


def _believed(receipt: Receipt) -> str:
    belief = receipt.belief
    return "nothing" if belief is None else f"{belief.stage} ({belief.identifier})"


def _fail(check: str, reason: str) -> CheckResult:
    return CheckResult(check=check, verdict="fail", reason=reason)


def judge_stage(check: str, alert: Alert, receipts: Sequence[Receipt],
                timeout_s: float) -> CheckResult:
    """The alert was shown, and the client then believes its stage."""
    mine = _of(receipts, alert)
    if not mine:
        return _fail(check, f"no receipt for {short(alert)} within {timeout_s:g} s")
    first = mine[0]
    if first.outcome != "shown":
        return _fail(check, f"{short(alert)}: outcome {first.outcome}, expected shown")
    belief = first.belief
    if belief is None or belief.stage != alert.stage or belief.identifier != alert.identifier:
        return _fail(check, f"after {short(alert)} the client believes {_believed(first)}, "
                            f"expected {alert.stage} ({alert.identifier})")
    sheltering = alert.stage in ("shelter", "imminent")
    if belief.sheltering != sheltering:
        return _fail(check, f"after {short(alert)} belief.sheltering is "
                            f"{belief.sheltering}, expected {sheltering}")
    return CheckResult(check=check, verdict="pass",
                       reason=f"{short(alert)} shown; believed {alert.stage}")


def judge_duplicate(alert: Alert, update: Alert, receipts: Sequence[Receipt],
                    copies: int) -> CheckResult:
    """`alert` sent `copies` times (the last after `update`): shown once, then ignored."""
    check = "de-duplication"
    mine = _of(receipts, alert)
    if len(mine) < copies:
        return _fail(check, f"{len(mine)} receipt(s) for {copies} copies of {short(alert)}: "
                            "acknowledge every copy (a duplicate as ignored)")
    shown = [r for r in mine if r.outcome == "shown"]
    if len(shown) != 1:
        return _fail(check, f"{short(alert)} was shown {len(shown)} times for {copies} "
                            "copies: de-duplicate by identifier, show it once")
    last = mine[-1]
    if last.belief is None or last.belief.identifier != update.identifier:
        return _fail(check, f"after a late copy of {short(alert)} the client believes "
                            f"{_believed(last)}, expected {update.stage} "
                            f"({update.identifier}): a copy must not undo a later Update")
    return CheckResult(check=check, verdict="pass", reason=(
        f"{copies} copies of {short(alert)}: shown once, {copies - 1} ignored; belief "
        f"stayed {update.stage}"))


def judge_reorder(alert: Alert, update: Alert, receipts: Sequence[Receipt]) -> CheckResult:
    """`update` (referring to `alert`) arrived first: held until `alert`, or `alert` ignored."""
    check = "references (Update before its Alert)"
    both = [r for r in receipts if r.identifier in (alert.identifier, update.identifier)]
    upd = [i for i, r in enumerate(both) if r.identifier == update.identifier
           and r.outcome == "shown"]
    alr = [i for i, r in enumerate(both) if r.identifier == alert.identifier
           and r.outcome == "shown"]
    if not upd:
        return _fail(check, f"{short(update)} was never shown (no receipt with outcome "
                            "shown): an Update must be shown once its Alert is known")
    if alr and alr[0] > upd[0]:
        return _fail(check, f"{short(update)} was shown before the Alert it refers to, "
                            f"then {short(alert)} was shown too: the prefecture went back to "
                            f"{alert.stage}. Hold an Update until its Alert arrives, or "
                            "ignore an Alert a shown message already refers to")
    last = both[-1]
    if last.belief is None or last.belief.identifier != update.identifier:
        return _fail(check, f"after both the client believes {_believed(last)}, expected "
                            f"{update.stage} ({update.identifier})")
    how = "held until its Alert" if alr else "shown; the late Alert ignored"
    return CheckResult(check=check, verdict="pass",
                       reason=f"{short(update)} {how}; believed {update.stage}")


def judge_late_join(alert: Alert, cancel: Alert, receipts: Sequence[Receipt],
                    control_topic: str, waited_s: float) -> CheckResult:
    """`alert` was published while the client was away: learned from the retained state."""
    check = "late join (retained state)"
    mine = _of(receipts, alert)
    if not mine:
        return CheckResult(check=check, verdict="skip", reason=(
            f"no receipt for {short(alert)} within {waited_s:g} s: the client did not come "
            f"back after the rejoin request on {control_topic} (or never read the retained "
            "state)"))
    first = mine[0]
    if first.via != "state":
        return _fail(check, f"{short(alert)} arrived live (via {first.via}): the client did "
                            f"not leave when told to on {control_topic}, or came back with "
                            "its old session instead of a clean one")
    if first.outcome != "shown" or first.belief is None \
            or first.belief.identifier != alert.identifier:
        return _fail(check, f"from the retained state the client believes "
                            f"{_believed(first)} ({first.outcome}), expected "
                            f"{alert.stage} ({alert.identifier}) shown")
    after = [r for r in _of(receipts, cancel) if r.outcome == "shown"]
    if not after or after[0].belief is None or after[0].belief.stage != cancel.stage:
        return _fail(check, f"{short(cancel)}, which refers to the alert the client learned "
                            "from the retained state, was not shown: references known from "
                            "the retained state count as received")
    return CheckResult(check=check, verdict="pass", reason=(
        f"{short(alert)} learned from the retained state on rejoin; {short(cancel)} applied"))


def judge_receipts(receipts: Sequence[Receipt], problems: Sequence[str],
                   client_id: str) -> CheckResult:
    """Every receipt parses, names the client and says outcome and belief."""
    check = "receipt schema"
    if not receipts and not problems:
        return _fail(check, "no receipts at all: is the client subscribed, and does it "
                            f"publish on receipts/{client_id}?")
    found = list(problems)
    found += [f"{r.identifier}: client_id {r.client_id!r}" for r in receipts
              if r.client_id != client_id]
    found += [f"{r.identifier}: no outcome" for r in receipts if r.outcome is None]
    found += [f"{r.identifier}: no belief" for r in receipts if r.belief is None]
    if found:
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        return _fail(check, f"{len(found)} problem(s): " + "; ".join(found[:3]) + more)
    return CheckResult(check=check, verdict="pass",
                       reason=f"{len(receipts)} receipts, all valid with outcome and belief")
