"""EMQX access control from `alertsim broker-config`'s files (docker-compose `emqx` profile).

    python emqx_auth.py DIR

reads DIR/credentials.json and DIR/acl (what `alertsim broker-config --out DIR` writes)
and writes DIR/emqx-users.csv (EMQX's built-in database bootstrap file, plain passwords:
EMQX hashes them as it loads them) and DIR/emqx-acl.conf (EMQX's file authorizer): the same
users, passwords and topic rules as the generated Mosquitto, ending in `{deny, all}`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# Mosquitto's `topic ACCESS TOPIC` -> EMQX's action
ACTIONS = {"read": "subscribe", "write": "publish", "readwrite": "all"}


def users_csv(credentials: dict[str, object]) -> str:
    """EMQX's bootstrap CSV (`bootstrap_type = plain`): every user, none a superuser."""
    users = credentials["users"]
    assert isinstance(users, dict)
    lines = ["user_id,password,is_superuser"]
    lines += [f"{user},{entry['password']},false" for user, entry in users.items()]
    return "\n".join(lines) + "\n"


def emqx_acl(mosquitto_acl: str) -> str:
    """The rules of a Mosquitto acl_file as EMQX file-authorizer rules, then deny the rest."""
    rules: list[str] = []
    user = ""
    for line in mosquitto_acl.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "user":
            user = words[1]
        elif len(words) == 3 and words[0] == "topic" and user:
            rules.append(f'{{allow, {{username, "{user}"}}, {ACTIONS[words[1]]}, '
                         f'["{words[2]}"]}}.')
    return "\n".join([*rules, "{deny, all}."]) + "\n"


def main(directory: Path) -> None:
    credentials = json.loads((directory / "credentials.json").read_text("utf-8"))
    (directory / "emqx-users.csv").write_text(users_csv(credentials), "utf-8")
    (directory / "emqx-acl.conf").write_text(
        emqx_acl((directory / "acl").read_text("utf-8")), "utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
