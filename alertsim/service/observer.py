"""What the service tells an observer (metrics): a port, so the service imports no exporter.

`NullObserver` ignores everything (the default); `alertsim.metrics.PrometheusObserver`
counts it for `serve --metrics-port`. Calls are synchronous and cheap: an observer must
never block the event loop or raise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from alertsim.domain.topics import TopicTree

__all__ = ["DetectionOutcome", "InputKind", "NullObserver", "Observer", "input_kind"]

DetectionOutcome = Literal["accepted", "duplicate", "refused"]
InputKind = Literal["detection", "operator", "receipt", "other"]


class Observer(Protocol):
    def detection(self, outcome: DetectionOutcome) -> None:
        """A detection arrived and was accepted, taken as a duplicate, or refused."""
        ...

    def decision(self) -> None:
        """A decision was recorded."""
        ...

    def alerts(self, stages: Sequence[str]) -> None:
        """Alerts of these stages were written to the outbox (one entry per alert)."""
        ...

    def rejected(self, kind: InputKind) -> None:
        """An input was rejected (bad payload, or refused by admission)."""
        ...

    def receipts(self, count: int) -> None:
        """`count` receipts were recorded."""
        ...

    def published(self, kind: str, latency_s: float) -> None:
        """An outbox row of `kind` was acknowledged, `latency_s` after it was written."""
        ...

    def outbox_depth(self, depth: int) -> None:
        """Rows written and not yet acknowledged by the broker."""
        ...


class NullObserver:
    """Observes nothing."""

    def detection(self, outcome: DetectionOutcome) -> None:
        pass

    def decision(self) -> None:
        pass

    def alerts(self, stages: Sequence[str]) -> None:
        pass

    def rejected(self, kind: InputKind) -> None:
        pass

    def receipts(self, count: int) -> None:
        pass

    def published(self, kind: str, latency_s: float) -> None:
        pass

    def outbox_depth(self, depth: int) -> None:
        pass


def input_kind(tree: TopicTree, source: str) -> InputKind:
    """Which input a topic carries, as the rejected-inputs metric labels it."""
    if source == tree.detections:
        return "detection"
    if source == tree.operator:
        return "operator"
    return "receipt" if tree.is_receipt(source) else "other"
