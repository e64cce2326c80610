"""`OutputLog`: a broker subprocess's output pipe, copied line by line into its log file by
a thread, which says when the lines that mean "ready" have all appeared, or the pipe has
ended (the process exited). Readiness is read from what the broker says, never guessed
with a timer; the pipe is drained for the process's whole life, so it never blocks on it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

__all__ = ["OutputLog", "tail"]


class OutputLog:
    """Copies `pipe` into `log_path` (appending) until it ends; `settled` is set once every
    pattern of `ready` has matched a line (then `ready` is True) or the pipe ended first."""

    def __init__(self, pipe: IO[bytes], log_path: Path, ready: Sequence[re.Pattern[bytes]],
                 *, name: str) -> None:
        self._pipe = pipe
        self._log_path = log_path
        self._waiting = list(ready)
        self.ready = not self._waiting
        self.settled = threading.Event()
        if self.ready:
            self.settled.set()
        self._thread = threading.Thread(target=self._copy, name=name, daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        with self._pipe, self._log_path.open("ab", buffering=0) as log:
            for line in iter(self._pipe.readline, b""):
                log.write(line)
                if self._waiting:
                    self._waiting = [p for p in self._waiting if not p.search(line)]
                    if not self._waiting:
                        self.ready = True
                        self.settled.set()
        self.settled.set()

    def wait(self, timeout_s: float) -> bool:
        """Block until ready (True), or until the output ends or `timeout_s` passes (False)."""
        self.settled.wait(timeout_s)
        return self.ready

    def join(self) -> None:
        """Wait for the copy to finish (call once the process has exited)."""
        self._thread.join()


def tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log file, joined with " | " (for error messages)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no output)"
    return " | ".join(text.splitlines()[-lines:]) or "(no output)"
