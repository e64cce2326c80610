"""`alertsim keygen`: an Ed25519 key pair for signing alerts, as two PEM files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

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
        print(f"alertsim keygen: {exc}; refusing to overwrite a key (choose another --out, "
              "or remove the old files first)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"alertsim keygen: cannot write to {out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"key id {key.key_id} (ed25519)")
    print(f"  private key: {private} (mode 0600; keep it secret, for the service only)")
    print(f"  public key:  {public} (give it to every receiver)")
    print(f"sign:   alertsim serve --signing-key {private}   (or ALERTSIM_SIGNING_KEY)")
    print(f"verify: alertsim subscribe --prefecture 47 --trust {public}")
    return EXIT_OK
