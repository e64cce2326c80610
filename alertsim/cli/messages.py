"""The CLI's own words (errors, progress lines, summaries) in the language of this run.

`alertsim --lang ja|en CMD` (or `ALERTSIM_LANG`) picks it once, at the root; commands say
things with `say(KEY, **fields)` from the `cli` catalogue (`alertsim/i18n/cli.json`), never
with a literal (tests/unit/test_cli_i18n.py). The CLI speaks English unless told: its
output is read in logs and scripts, where the pages' Japanese default would surprise. The
alert texts are J-Alert's own (`domain.texts`), problems found by the domain (a field's
validation error, a refusal's reason) are quoted as they come.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

from alertsim.i18n import Lang, text

__all__ = ["CLI_AREA", "DEFAULT_CLI_LANG", "Invocation", "current_lang", "say", "use_lang"]

CLI_AREA: Final = "cli"
DEFAULT_CLI_LANG: Final[Lang] = "en"


@dataclass
class Invocation:
    """Filled in while the app runs: the chosen sub-command (for error messages) and the
    language of the CLI's own messages."""

    command: str = ""
    lang: Lang = DEFAULT_CLI_LANG


# Set by the root callback for the rest of the run (`main` puts it back afterwards); a
# context variable, so every command and the tasks it starts see it without passing it on.
_LANG: ContextVar[Lang] = ContextVar("alertsim_cli_lang", default=DEFAULT_CLI_LANG)


def use_lang(lang: Lang) -> None:
    """Speak `lang` for the rest of this run."""
    _LANG.set(lang)


def current_lang() -> Lang:
    """The language of this run: `--lang` / ALERTSIM_LANG at the root, else English."""
    return _LANG.get()


def say(key: str, *, lang: Lang | None = None, **fields: object) -> str:
    """One CLI message in this run's language (or `lang`), formatted with `fields`."""
    return text(CLI_AREA, key, lang or current_lang(), **fields)
