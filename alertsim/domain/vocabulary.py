"""alertsim's vocabulary: every closed set of words and codes, defined once.

The domain, the service, the adapters, the drills and the CLI import these names; none of
them spells a stage, a status, a policy, an operator action or the prefecture code rule
again. Pure: no I/O.

    Stage            shelter imminent passed fell_land fell_sea cancel national
    PrefectureStage  every Stage but national (what a prefecture can receive)
    MsgType          CAP msgType: Alert Update Cancel
    Status           topic tree and settings: exercise test (never actual)
    AlertStatus      CAP status: Exercise Test (never Actual)
    Policy           block-2017 prefecture prefecture+adjacent (the rule of each era)
    PolicyChoice     a Policy, or auto (the rule in force on the launch's date)
    Action           operator actions: cancel close
    PrefectureCode   JIS X 0401 two-digit code 01..47
    Reference        CAP reference triplet "sender,identifier,sent"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Final, Literal, get_args

from pydantic import Field

Stage = Literal["shelter", "imminent", "passed", "fell_land", "fell_sea", "cancel", "national"]
STAGES: Final[tuple[Stage, ...]] = get_args(Stage)
PrefectureStage = Literal["shelter", "imminent", "passed", "fell_land", "fell_sea", "cancel"]
PREFECTURE_STAGES: Final[tuple[PrefectureStage, ...]] = get_args(PrefectureStage)

MsgType = Literal["Alert", "Update", "Cancel"]

Status = Literal["exercise", "test"]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
AlertStatus = Literal["Exercise", "Test"]
_CAP_STATUS: Final[dict[Status, AlertStatus]] = {"exercise": "Exercise", "test": "Test"}

Policy = Literal["block-2017", "prefecture", "prefecture+adjacent"]
POLICIES: Final[tuple[Policy, ...]] = get_args(Policy)
DEFAULT_POLICY: Final[Policy] = "prefecture"
PolicyChoice = Literal["auto", "block-2017", "prefecture", "prefecture+adjacent"]
POLICY_CHOICES: Final[tuple[PolicyChoice, ...]] = get_args(PolicyChoice)

Action = Literal["cancel", "close"]
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)

PREFECTURE_CODE_PATTERN: Final = r"^(0[1-9]|[1-3][0-9]|4[0-7])$"
PREFECTURE_CODES: Final[tuple[str, ...]] = tuple(f"{n:02d}" for n in range(1, 48))
PrefectureCode = Annotated[str, Field(pattern=PREFECTURE_CODE_PATTERN,
                                      description="JIS X 0401 prefecture code, 01..47")]
_PREFECTURE_CODE = re.compile(PREFECTURE_CODE_PATTERN)

ACTUAL_REFUSED: Final = ("status Actual is refused: alertsim is a simulator and never sends "
                         "Actual alerts; use exercise or test")


def alert_status(status: Status) -> AlertStatus:
    """The CAP status (Exercise/Test) of a topic-tree status (exercise/test)."""
    return _CAP_STATUS[status]


def is_prefecture_code(text: str) -> bool:
    """True for a two-digit JIS X 0401 code, 01 to 47."""
    return _PREFECTURE_CODE.match(text) is not None


def prefecture_code(text: str) -> str:
    """`text` as a two-digit code ("1" -> "01"); ValueError when it is not one of 01..47."""
    code = text.strip().zfill(2)
    if not is_prefecture_code(code):
        raise ValueError(f"not a prefecture code 01..47: {text!r}")
    return code


def refuse_actual(value: object) -> object:
    """Validator guard: any spelling of 'actual' is refused with one clear message."""
    if isinstance(value, str) and value.strip().lower() == "actual":
        raise ValueError(ACTUAL_REFUSED)
    return value


@dataclass(frozen=True)
class Reference:
    """A CAP reference to an earlier message: `sender,identifier,sent` (CAP 1.2, 3.2.1).

    Identifiers and senders cannot contain commas (CAP forbids them), so the text splits
    unambiguously; `sent` is kept as written.
    """

    sender: str
    identifier: str
    sent: str

    @classmethod
    def parse(cls, text: str) -> Reference:
        """The reference in `text`; ValueError when it is not three comma-separated parts."""
        parts = text.split(",", 2)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"not a CAP reference 'sender,identifier,sent': {text!r}")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.sender},{self.identifier},{self.sent}"
