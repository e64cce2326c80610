"""`alertsim subscribe`: a receiver that prints each alert for a person to read.

With `--trust FILE` (repeatable) only alerts and states signed by one of those public keys
are shown; each other one is reported on stderr as `rejected TOPIC: REASON`, never its
text. Without it the subscriber says once, on stderr, that it cannot verify what it shows.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TextIO

import typer

from alertsim.adapters.mqtt.url import redacted
from alertsim.cli.options import (
    EXIT_OK,
    BrokerOption,
    CaFileOption,
    QuietLogLevelOption,
    StatusOption,
    TopicRootOption,
    prefecture,
)
from alertsim.cli.render import Lang, default_client_id, render_alert, render_state
from alertsim.cli.settings import broker_url_of, settings_and_logging
from alertsim.domain.messages import PrefectureState
from alertsim.domain.topics import V1, TopicTree
from alertsim.domain.vocabulary import Status

if TYPE_CHECKING:
    from alertsim.adapters.mqtt.client import Protocol
    from alertsim.adapters.mqtt.receiver import Delivery
    from alertsim.adapters.mqtt.signing import TrustedKeys

__all__ = ["UNVERIFIED_WARNING", "run_subscriber", "subscribe_command"]

UNVERIFIED_WARNING = ("alertsim subscribe: WARNING: no --trust key given, so what is shown "
                      "here is NOT verified; anyone who can publish to this broker can forge "
                      "it. Give the service's public key with --trust FILE.")


async def run_subscriber(*, url: str, codes: Sequence[str], lang: Lang, status: Status,
                         client_id: str, protocol: Protocol | Literal["auto"] = "auto",
                         tree: TopicTree = V1, out: TextIO | None = None,
                         trust: TrustedKeys | None = None, err: TextIO | None = None,
                         ca_file: Path | None = None) -> None:
    """Print the retained state of `codes`, then every new alert, until cancelled.

    With `trust`, only what one of its keys signed is printed; `rejected TOPIC: REASON` goes
    to `err` (default stderr) for the rest. Without it, `err` gets UNVERIFIED_WARNING once.
    """
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

    def complain(text: str) -> None:
        errors = err or sys.stderr
        errors.write(text + "\n")
        errors.flush()

    def show_rejected(topic: str, reason: str) -> None:
        complain(f"rejected {topic}: {reason}")

    chosen: Protocol = (await negotiate_protocol(url, ca_file=ca_file) if protocol == "auto"
                        else protocol)
    receiver = Receiver(url=url, protocol=chosen, client_id=client_id, codes=codes,
                        status=status, national=True, persistent=True, tree=tree,
                        on_delivery=show_alert, on_state=show_state,
                        trust=trust, on_rejected=show_rejected, ca_file=ca_file)
    if trust is None:
        complain(UNVERIFIED_WARNING)
    write(f"alertsim subscriber {client_id}: {status} alerts for {', '.join(receiver.codes)} "
          f"and national, under {tree.root}/ on {redacted(url)} (MQTT {chosen}); "
          "Ctrl-C to stop")
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
    trust_files: Annotated[list[Path] | None, typer.Option(
        "--trust", metavar="FILE",
        help="show only what this Ed25519 public key (PEM) signed; repeat for more")] = None,
    ca_file: CaFileOption = None,
) -> int:
    """Print alerts for some prefectures as people read them."""
    from alertsim.adapters.mqtt.client import wait_for_protocol

    settings = settings_and_logging(quiet=True, broker_url=broker, status=status,
                                    topic_root=topic_root, log_level=log_level,
                                    mqtt_ca_file=ca_file)
    url = broker_url_of(settings)
    wanted = sorted(set(codes))
    trust = None
    if trust_files:
        from alertsim.adapters.mqtt.signing import load_trusted

        trust = load_trusted(trust_files)

    async def go() -> None:
        protocol = await wait_for_protocol(url, "auto", ca_file=settings.mqtt_ca_file)
        await run_subscriber(url=url, codes=wanted, lang=lang, ca_file=settings.mqtt_ca_file,
                             status=settings.status, protocol=protocol,
                             tree=TopicTree(settings.topic_root),
                             client_id=client_id or default_client_id(wanted),
                             trust=trust)

    asyncio.run(go())
    return EXIT_OK
