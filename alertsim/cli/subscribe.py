"""`alertsim subscribe`: a receiver that prints each alert for a person to read."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal, TextIO

import typer

from alertsim.cli.options import (
    EXIT_OK,
    BrokerOption,
    QuietLogLevelOption,
    StatusOption,
    TopicRootOption,
    prefecture,
)
from alertsim.cli.render import Lang, default_client_id, render_alert, render_state
from alertsim.cli.settings import settings_and_logging
from alertsim.domain.messages import PrefectureState
from alertsim.domain.topics import V1, TopicTree
from alertsim.domain.vocabulary import Status

if TYPE_CHECKING:
    from alertsim.adapters.mqtt.client import Protocol
    from alertsim.adapters.mqtt.receiver import Delivery

__all__ = ["run_subscriber", "subscribe_command"]


async def run_subscriber(*, url: str, codes: Sequence[str], lang: Lang, status: Status,
                         client_id: str, protocol: Protocol | Literal["auto"] = "auto",
                         tree: TopicTree = V1, out: TextIO | None = None) -> None:
    """Print the retained state of `codes`, then every new alert, until cancelled."""
    from alertsim.adapters.mqtt.client import negotiate_protocol
    from alertsim.adapters.mqtt.receiver import Receiver

    stream = out or sys.stdout

    def write(text: str) -> None:
        stream.write(text + "\n")
        stream.flush()

    def show_state(state: PrefectureState | None, code: str) -> None:
        write(render_state(state, code))

    def show_alert(delivery: Delivery) -> None:
        write("\n" + render_alert(delivery.alert, lang) + "\n")

    chosen: Protocol = await negotiate_protocol(url) if protocol == "auto" else protocol
    receiver = Receiver(url=url, protocol=chosen, client_id=client_id, codes=codes,
                        status=status, national=True, persistent=True, tree=tree,
                        on_delivery=show_alert, on_state=show_state)
    write(f"alertsim subscriber {client_id}: {status} alerts for {', '.join(receiver.codes)} "
          f"and national, under {tree.root}/ on {url} (MQTT {chosen}); Ctrl-C to stop")
    await receiver.run()


def subscribe_command(
    codes: Annotated[list[str], typer.Option(
        "--prefecture", parser=prefecture, metavar="CODE",
        help="JIS code 01..47; repeat for more")],
    lang: Annotated[Lang, typer.Option(help="language of the alert texts")] = "ja",
    broker: BrokerOption = None,
    status: StatusOption = None,
    client_id: Annotated[str | None, typer.Option(
        metavar="ID", help="persistent session id (default: from the prefectures)")] = None,
    topic_root: TopicRootOption = None,
    log_level: QuietLogLevelOption = None,
) -> int:
    """Print alerts for some prefectures as people read them."""
    from alertsim.adapters.mqtt.client import wait_for_protocol

    settings = settings_and_logging(quiet=True, broker_url=broker, status=status,
                                    topic_root=topic_root, log_level=log_level)
    wanted = sorted(set(codes))

    async def go() -> None:
        protocol = await wait_for_protocol(settings.broker_url, "auto")
        await run_subscriber(url=settings.broker_url, codes=wanted, lang=lang,
                             status=settings.status, protocol=protocol,
                             tree=TopicTree(settings.topic_root),
                             client_id=client_id or default_client_id(wanted))

    asyncio.run(go())
    return EXIT_OK
