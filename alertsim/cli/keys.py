"""`alertsim keygen`: an Ed25519 key pair for signing alerts, as two PEM files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from alertsim.cli.messages import say
from alertsim.cli.options import EXIT_BAD_INPUT, EXIT_OK

__all__ = ["keygen_command"]


def keygen_command(
    out: Annotated[Path, typer.Option(
        "--out", metavar="DIR",
        help="directory for signing.key (private, mode 0600) and signing.pub")],
) -> int:
    """Make a key pair for signing alerts (the service) and verifying them (receivers)."""
    from alertsim.signing import generate, save_key_pair

    key = generate()
    try:
        private, public = save_key_pair(key, out)
    except FileExistsError as exc:
        print(say("keygen.exists", error=exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(say("keygen.unwritable", out=out, error=exc.strerror or exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    print(say("keygen.id", key_id=key.key_id))
    print(say("keygen.private", path=private))
    print(say("keygen.public", path=public))
    print(say("keygen.sign", path=private))
    print(say("keygen.verify", path=public))
    return EXIT_OK
