"""`alertsim export-cap` (a record's alerts as CAP 1.2 XML files) and the `--cap` flag that
`serve` and `drill` share (publish every alert as CAP XML too)."""

import asyncio
import re
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from alertsim.cli.messages import say
from alertsim.cli.options import EXIT_OK
from alertsim.errors import InputError, StoreError, describe_validation_error

__all__ = ["CapOption", "export_cap_command"]

CapOption = Annotated[bool, typer.Option(
    "--cap", help="also publish every alert as CAP 1.2 XML on "
                  "ROOT/{status}/cap/{code} (and .../cap/national)")]

# What may name a file: the service's identifiers always fit; a record that holds others
# (written by something else) is refused rather than written outside --out.
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


async def _alert_payloads(db: Path) -> list[tuple[str, bytes]]:
    from alertsim.adapters.sqlite.store import Store

    try:
        async with await Store.open(db) as store:
            return [(row.message_id, row.payload) for row in await store.views.outbox(kind="alert")]
    except StoreError as exc:  # not a SQLite file, or not alertsim's
        raise InputError(str(db), [str(exc)]) from exc


def _documents(db: Path, rows: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """identifier -> CAP XML for every alert row; InputError naming each bad row."""
    from alertsim.data import load_atlas
    from alertsim.domain.cap import CapRenderer
    from alertsim.domain.messages import Alert

    renderer = CapRenderer(load_atlas())
    documents: dict[str, bytes] = {}
    problems: list[str] = []
    for message_id, payload in rows:
        if not _FILE_NAME.match(message_id):
            problems.append(say("cap.bad_identifier", identifier=repr(message_id)))
            continue
        try:
            documents[message_id] = renderer.render(Alert.model_validate_json(payload))
        except ValidationError as exc:
            problems += [say("cap.bad_alert", identifier=message_id, problem=p)
                         for p in describe_validation_error(exc)]
    if problems:
        raise InputError(str(db), problems)
    return documents


def export_cap_command(
    db: Annotated[Path, typer.Argument(metavar="DB", help="SQLite record (drill or serve)")],
    out: Annotated[Path, typer.Option(
        "--out", metavar="DIR", help="folder for the IDENTIFIER.xml files")],
) -> int:
    """Write every alert of a record as CAP 1.2 XML: one IDENTIFIER.xml each."""
    if not db.is_file():
        raise InputError(str(db), [say("record.missing")])
    documents = _documents(db, asyncio.run(_alert_payloads(db)))
    try:
        out.mkdir(parents=True, exist_ok=True)
        for identifier, document in documents.items():
            (out / f"{identifier}.xml").write_bytes(document)
    except OSError as exc:
        raise InputError(str(out), [say("file.unwritable", error=exc.strerror or exc)]) from exc
    print(say("cap.wrote", count=len(documents), out=out))
    return EXIT_OK
