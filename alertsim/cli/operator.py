"""`alertsim cancel EVENT_ID` and `alertsim close EVENT_ID`: an operator action sent to a
running service, and its outcome (applied, or the service's refusal): exit 0 / 1, and 2 for
an EVENT_ID that is not one (1-64 characters of A-Z a-z 0-9 . _ -)."""

import asyncio
from typing import Annotated

import typer
from pydantic import TypeAdapter, ValidationError

from alertsim.cli.messages import say
from alertsim.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    BrokerOption,
    CaFileOption,
    TopicRootOption,
    positive_number,
)
from alertsim.cli.settings import broker_url_of, settings_and_logging
from alertsim.domain.detection import EventId

__all__ = ["cancel_command", "close_command"]

_EVENT_ID: TypeAdapter[str] = TypeAdapter(EventId)


def event_id(text: str) -> str:
    """An event id as the detection contract has it."""
    try:
        return _EVENT_ID.validate_python(text)
    except ValidationError:
        raise typer.BadParameter(say("operator.bad_event_id", got=repr(text))) from None


EventIdArgument = Annotated[str, typer.Argument(
    parser=event_id, metavar="EVENT_ID", help="the event, as its detections name it")]
TimeoutOption = Annotated[float, typer.Option(
    parser=positive_number, metavar="SECONDS",
    help="how long to wait for the service's answer")]


def _act(action: str, event: str, broker: str | None, topic_root: str | None,
         ca_file: object, timeout: float) -> int:
    from alertsim.clients.operator import send_operator_action
    from alertsim.domain.operator import operator_name
    from alertsim.domain.topics import TopicTree
    from alertsim.mqtt.url import parse_broker_url

    settings = settings_and_logging(quiet=True, broker_url=broker, topic_root=topic_root,
                                    mqtt_ca_file=ca_file)
    url = broker_url_of(settings)
    # `by` in the audit log: the broker user this command connects as
    by = operator_name(parse_broker_url(url).username)
    outcome = asyncio.run(send_operator_action(
        "cancel" if action == "cancel" else "close", event, url=url,
        tree=TopicTree(settings.topic_root), timeout_s=timeout, ca_file=settings.mqtt_ca_file,
        by=by))
    print(say("operator.outcome", action=action, event=event, detail=outcome.detail))
    return EXIT_OK if outcome.applied else EXIT_FAILED


def cancel_command(event: EventIdArgument, broker: BrokerOption = None,
                   topic_root: TopicRootOption = None, ca_file: CaFileOption = None,
                   timeout: TimeoutOption = 10.0) -> int:
    """Cancel an event on a running service: every prefecture still told to shelter gets
    a Cancel. Exit 0 when applied, 1 when refused or unanswered."""
    return _act("cancel", event, broker, topic_root, ca_file, timeout)


def close_command(event: EventIdArgument, broker: BrokerOption = None,
                  topic_root: TopicRootOption = None, ca_file: CaFileOption = None,
                  timeout: TimeoutOption = 10.0) -> int:
    """Close an event on a running service: nothing more is sent for it and its retained
    state is cleared. Exit 0 when applied, 1 when refused or unanswered."""
    return _act("close", event, broker, topic_root, ca_file, timeout)
