"""The drill's refusal notes: inputs the service refused and messages it withheld (they
would have come after the fact), each a row of the record's `rejected` table, judged
against the scenario's `expect.refused`.

A drill's notes are the rows received from its `started_at` up to the next drill's
`started_at` (or the end of the record), the same window as its alerts. A count that
differs from `expect.refused` fails the drill, so a refused input never reads as a clean
pass. Pure: rows in, results and failure lines out.
"""

from __future__ import annotations

from collections.abc import Sequence

from alertsim.adapters.sqlite.rows import RejectedRow
from alertsim.domain.model import JST
from alertsim.drills.report.model import Refusal, RefusalResults

__all__ = ["judge_refusals", "refusals_text"]


def refusals_text(count: int, expected: int | None) -> str:
    """'2 refusals, 0 expected' (or '1 refusal' with nothing expected to compare)."""
    said = f"{count} refusal{'' if count == 1 else 's'}"
    return said if expected is None else f"{said}, {expected} expected"


def judge_refusals(rows: Sequence[RejectedRow],
                   expected: int | None) -> tuple[RefusalResults, list[str]]:
    """The drill's refusal notes and, when `expected` is given, the count judged against
    it, with the failure line when it differs."""
    refusals = tuple(Refusal(received_at=r.received_at.astimezone(JST), source=r.source,
                             reason=r.reason) for r in rows)
    if expected is None:
        return RefusalResults(rows=refusals), []
    passed = len(refusals) == expected
    failures = [] if passed else [f"refusals: {refusals_text(len(refusals), expected)}"]
    return RefusalResults(rows=refusals, expected=expected, passed=passed), failures
