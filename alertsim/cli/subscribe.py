"""`alertsim subscribe`: a receiver that prints each alert for a person to read.

With `--trust FILE` (repeatable) only alerts and states signed by one of those public keys
are shown, and only a signature v2 for the topic they arrive on, not expired and not older
than what is held for that topic (v1 signatures too with `--accept-v1`); each other one is
reported on stderr as `rejected TOPIC: REASON`, never its text. Without it the subscriber
says once, on stderr, that it cannot verify what it shows.

What it holds (identifiers handled, the last sent time per topic, its own client id) is
kept in a state file (`--state-file`; default under `~/.local/share/alertsim/subscribe/`),
so a restart shows nothing twice. The file is locked: two
subscribers never share one. The default client id is `alertsim-sub-CODES-RANDOM`, the
random part made once and kept in that file: stable across restarts (its persistent
session), never shared by two subscribers (a second one with the same prefectures takes
the next free default file, `sub-CODES.2.json`, and so another id).

`--format json` prints, instead, one JSON object per message as it arrived (duplicates
included, flushed per line, for scripts and `jq`): `topic`, `received_at`, `retained`,
`user_properties` (MQTT 5) and `payload` (the JSON, unwrapped from a 3.1.1 signature
envelope; null when empty), or `payload_text` / `payload_base64` when it is not JSON.
Either way the subscriber is a full receiver: de-duplication, receipts, held Updates.
`--conformance` makes it obey `alertsim conformance`'s control topic.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Literal, TextIO

import typer

from alertsim.cli.messages import say
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
from alertsim.errors import InputError
from alertsim.mqtt.url import parse_broker_url, redacted
from alertsim.signing import claim, load_memory, save_memory

if TYPE_CHECKING:
    from alertsim.clients.receiver import Delivery, RawMessage
    from alertsim.mqtt.protocol import Protocol
    from alertsim.signing import TrustedKeys

__all__ = ["UNVERIFIED_WARNING", "claim_state_file", "json_line", "run_subscriber",
           "subscribe_command"]

OutputFormat = Literal["human", "json"]

UNVERIFIED_WARNING = ("alertsim subscribe: WARNING: no --trust key given, so what is shown "
                      "here is NOT verified; anyone who can publish to this broker can forge "
                      "it. Give the service's public key with --trust FILE.")


def json_line(message: RawMessage) -> str:
    """One message as one line of JSON (see the module docstring)."""
    line: dict[str, object] = {
        "topic": message.topic, "received_at": message.received_at.isoformat(),
        "retained": message.retained, "user_properties": dict(message.user_properties)}
    if not message.payload:
        line["payload"] = None
    else:
        try:
            line["payload"] = json.loads(message.payload)
        except ValueError:  # not JSON (or not UTF-8)
            try:
                line["payload_text"] = message.payload.decode("utf-8")
            except UnicodeDecodeError:
                line["payload_base64"] = base64.b64encode(message.payload).decode("ascii")
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class _Console:
    """Where the subscriber writes: alerts and states for people, or JSON lines."""

    out: TextIO
    err: TextIO
    lang: Lang
    output: OutputFormat

    def write(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def complain(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    def state(self, state: PrefectureState | None, code: str) -> None:
        if self.output == "human":
            self.write(render_state(state, code))

    def alert(self, delivery: Delivery) -> None:
        if self.output == "human":
            self.write("\n" + render_alert(delivery.alert, self.lang) + "\n")

    def raw(self, message: RawMessage) -> None:
        self.write(json_line(message))

    def rejected(self, topic: str, reason: str) -> None:
        self.complain(f"rejected {topic}: {reason}")


async def run_subscriber(*, url: str, codes: Sequence[str], lang: Lang, status: Status,
                         client_id: str, protocol: Protocol | Literal["auto"] = "auto",
                         tree: TopicTree = V1, out: TextIO | None = None,
                         trust: TrustedKeys | None = None, err: TextIO | None = None,
                         ca_file: Path | None = None, output: OutputFormat = "human",
                         control: bool = False, state_file: Path | None = None,
                         accept_v1: bool = False) -> None:
    """Print the retained state of `codes`, then every new alert, until cancelled.

    `output="json"`: one `json_line` per alert or state message instead. `control`: obey
    the conformance control topic (rejoin when asked). `state_file`: what it holds, kept
    across restarts (None: in memory only). `accept_v1`: v1 signatures pass `trust` too.

    With `trust`, only what one of its keys signed is printed; `rejected TOPIC: REASON` goes
    to `err` (default stderr) for the rest. Without it, `err` gets UNVERIFIED_WARNING once.
    """
    from alertsim.clients.receiver import Receiver, ReceiverOptions
    from alertsim.mqtt.negotiation import negotiate_protocol

    console = _Console(out or sys.stdout, err or sys.stderr, lang, output)
    chosen: Protocol = (await negotiate_protocol(url, ca_file=ca_file) if protocol == "auto"
                        else protocol)
    options = ReceiverOptions(url=url, protocol=chosen, client_id=client_id, codes=codes,
                              status=status, national=True, persistent=True, tree=tree,
                              trust=trust, ca_file=ca_file, control=control,
                              state_file=state_file, accept_v1=accept_v1)
    receiver = Receiver(options, on_delivery=console.alert, on_state=console.state,
                        on_rejected=console.rejected,
                        on_message=console.raw if output == "json" else None)
    if trust is None:
        console.complain(UNVERIFIED_WARNING)
    banner = (f"alertsim subscriber {client_id}: {status} alerts for "
              f"{', '.join(receiver.codes)} and national, under {tree.root}/ on "
              f"{redacted(url)} (MQTT {chosen})"
              f"{f', holding what it showed in {state_file}' if state_file else ''}"
              "; Ctrl-C to stop")
    # JSON lines on stdout stay pure JSON: the banner goes to stderr then.
    (console.write if output == "human" else console.complain)(banner)
    await receiver.run()


STATE_SLOTS = 32  # default state files per set of prefectures: subscribers side by side


def _data_dir() -> Path:
    # The XDG default data directory (only cli/settings.py reads the environment, so
    # $XDG_DATA_HOME is not followed: give --state-file to put it elsewhere).
    return Path.home() / ".local" / "share" / "alertsim" / "subscribe"


def _candidates(state_file: Path | None, client_id: str | None,
                codes: Sequence[str]) -> list[Path]:
    if state_file is not None:
        return [state_file]
    if client_id is not None:
        return [_data_dir() / f"{client_id}.json"]
    stem = "sub-" + "-".join(codes)
    return [_data_dir() / (f"{stem}.json" if n == 1 else f"{stem}.{n}.json")
            for n in range(1, STATE_SLOTS + 1)]


def _client_id_in(path: Path, client_id: str | None, codes: Sequence[str]) -> str:
    """`client_id`, else the one kept in the state file, else a new one kept there."""
    if client_id is not None:
        return client_id
    memory = load_memory(path)
    if memory.client_id is None:
        memory.client_id = default_client_id(codes, secrets.token_hex(4))
        save_memory(path, memory)
    return memory.client_id


def claim_state_file(state_file: Path | None, client_id: str | None,
                     codes: Sequence[str]) -> tuple[Path, str, IO[bytes]]:
    """The state file this subscriber uses, its client id and the lock to hold while it
    runs: `state_file`, else the default for `client_id`, else the first free default
    for `codes`. InputError when the file is locked by another subscriber."""
    paths = _candidates(state_file, client_id, codes)
    for path in paths:
        lock = claim(path)
        if lock is not None:
            return path, _client_id_in(path, client_id, codes), lock
    raise InputError(source=str(paths[-1]), problems=[
        say("subscribe.state_file_in_use")])


def subscribe_command(
    codes: Annotated[list[str], typer.Option(
        "--prefecture", parser=prefecture, metavar="CODE",
        help="JIS code 01..47; repeat for more")],
    lang: Annotated[Lang, typer.Option(help="language of the alert texts")] = "ja",
    broker: BrokerOption = None,
    status: StatusOption = None,
    client_id: Annotated[str | None, typer.Option(
        metavar="ID", help="persistent session id (default: ALERTSIM_CLIENT_ID, else the "
                           "broker user name, else alertsim-sub-CODES-RANDOM kept in the "
                           "state file)")] = None,
    topic_root: TopicRootOption = None,
    log_level: QuietLogLevelOption = None,
    trust_files: Annotated[list[Path] | None, typer.Option(
        "--trust", metavar="FILE",
        help="show only what this Ed25519 public key (PEM) signed; repeat for more")] = None,
    ca_file: CaFileOption = None,
    output: Annotated[OutputFormat, typer.Option(
        "--format", help="human: alerts as people read them; json: one line per message")
    ] = "human",
    conformance: Annotated[bool, typer.Option(
        "--conformance",
        help="obey `alertsim conformance` on {root}/conformance/control/CLIENT_ID")] = False,
    state_file: Annotated[Path | None, typer.Option(
        "--state-file", metavar="FILE",
        help="what it has shown, kept across restarts (default: under "
             "~/.local/share/alertsim/subscribe/)")] = None,
    accept_v1: Annotated[bool, typer.Option(
        "--accept-v1",
        help="with --trust, also show v1 signatures (not bound to topic or time)")] = False,
) -> int:
    """Print alerts for some prefectures as people read them (or as JSON lines)."""
    from alertsim.mqtt.negotiation import wait_for_protocol

    settings = settings_and_logging(quiet=True, broker_url=broker, status=status,
                                    topic_root=topic_root, log_level=log_level,
                                    mqtt_ca_file=ca_file)
    url = broker_url_of(settings)
    wanted = sorted(set(codes))
    # On the generated broker a receiver's client id is its user name (docs/security.md):
    # the flag, else ALERTSIM_CLIENT_ID (its .env file sets it), else the user name.
    client_id = client_id or settings.client_id or parse_broker_url(url).username
    path, chosen_id, lock = claim_state_file(state_file, client_id, wanted)
    trust = None
    if trust_files:
        from alertsim.signing import load_trusted

        trust = load_trusted(trust_files)

    async def go() -> None:
        protocol = await wait_for_protocol(url, "auto", ca_file=settings.mqtt_ca_file)
        await run_subscriber(url=url, codes=wanted, lang=lang, ca_file=settings.mqtt_ca_file,
                             status=settings.status, protocol=protocol,
                             tree=TopicTree(settings.topic_root),
                             client_id=chosen_id, trust=trust, output=output,
                             control=conformance, state_file=path, accept_v1=accept_v1)

    with lock:  # held while it runs: no second subscriber on this state file
        asyncio.run(go())
    return EXIT_OK
