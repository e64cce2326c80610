"""The `alertsim` command line: help for every documented command and flag, the sub-command's
usage and a specific message for a bad flag (exit 2, never a traceback), --log-level and
ALERTSIM_LOG_LEVEL honoured by every command that logs, and quiet exits on a closed pipe
or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import aiomqtt
import pytest
import structlog

from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.cli import main
from alertsim.cli.settings import ServiceSettings
from alertsim.domain import topics
from alertsim.domain.messages import PlaceEvent, PrefectureState
from alertsim.logs import get_logger
from alertsim.testing import DEFAULT_LAUNCH_TIME, eventually
from tests.helpers import restore_sigint

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("alertsim")  # the installed console script
SCENARIO = sorted((ROOT / "scenarios").glob("*.yaml"))[0]

# The flags of each command, as the brief for the CLI lists them (a superset of the README's).
FLAGS: dict[str, tuple[str, ...]] = {
    "decide": ("--policy", "--format"),
    "schema": (),
    "drill": ("--speed", "--broker", "--receivers", "--db", "--reports", "--log-level",
              "--dry-run", "--topic-root", "--dashboard", "--port", "--cap", "--fault",
              "--fault-seed", "--metrics-port"),
    "serve": ("--broker", "--db", "--policy", "--confirm-after", "--national-info", "--status",
              "--protocol", "--log-level",
              "--topic-root", "--stale-after", "--signing-key", "--ca-file",
              "--identity-secret-file", "--dashboard", "--port", "--metrics-port",
              "--metrics-host", "--client-id", "--broker-password-file",
              "--publish-window", "--cap"),
    "detect": ("--broker", "--topic-root", "--ca-file", "--broker-password-file", "--now",
               "--timeout", "--no-wait"),
    "broker-config": ("--out", "--tls", "--port", "--service-port", "--receivers", "--host",
                      "--topic-root"),
    "builder": ("--port", "--out", "--lang", "--log-level"),
    "keygen": ("--out",),
    "export-cap": ("--out",),
    "report": ("--event", "--format", "--out", "--lang"),
    "cancel": ("--broker", "--topic-root", "--ca-file", "--timeout"),
    "close": ("--broker", "--topic-root", "--ca-file", "--timeout"),
    "replay": ("--event", "--speed", "--broker", "--log-level"),
    "fleet": ("--receivers", "--broker", "--status", "--topic-root", "--json", "--shards",
              "--duration", "--metrics-port", "--log-level", "--ca-file"),
    "subscribe": ("--prefecture", "--lang", "--broker", "--status", "--client-id",
                  "--log-level", "--topic-root", "--trust", "--format", "--conformance",
                  "--state-file", "--accept-v1"),
    "conformance": ("--client-id", "--prefecture", "--broker", "--topic-root", "--json",
                    "--timeout", "--signing-key", "--log-level", "--ca-file"),
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ALERTSIM_* variable from the developer's shell reaches these tests."""
    for name in ServiceSettings.model_fields:
        monkeypatch.delenv(f"ALERTSIM_{name.upper()}", raising=False)


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    """Put structlog's configuration back after a test that ran a command."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def readme_commands() -> dict[str, set[str]]:
    """Each command in the README's Commands table and the flags its row shows."""
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = re.finditer(r"^\| `alertsim ([\w-]+)([^`]*)`", section, re.MULTILINE)
    return {row[1]: set(re.findall(r"--[a-z][a-z0-9-]*", row[2])) for row in rows}


def configured_level() -> int:
    """The level structlog was last configured with, read through alertsim.logs."""
    level: int = get_logger("test").get_effective_level()
    return level


def test_readme_documents_exactly_these_commands() -> None:
    """The README's Commands table names the same commands, and only flags checked here."""
    documented = readme_commands()
    assert set(documented) == set(FLAGS)
    for command, flags in documented.items():
        assert flags <= set(FLAGS[command]), command


@pytest.mark.parametrize("command", FLAGS)
def test_help_lists_the_documented_flags(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`alertsim CMD --help` exits 0 and shows the command's usage and each of its flags."""
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: alertsim {command} [OPTIONS]")
    for flag in (*FLAGS[command], "--help"):
        assert re.search(rf"^\s+{flag}\b", out, re.MULTILINE), flag


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`alertsim --help` exits 0 and lists every command with its one-line help."""
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: alertsim [OPTIONS] COMMAND")
    for command in FLAGS:
        assert re.search(rf"^\s+{command}\s+\S", out, re.MULTILINE), command


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`alertsim --version` prints the package version and exits 0."""
    from alertsim import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"alertsim {__version__}\n"


def test_console_script_help_and_bad_flag() -> None:
    """The installed script: --help exits 0 with every flag; a bad flag exits 2 with usage."""
    ok = subprocess.run([SCRIPT, "drill", "--help"], capture_output=True, text=True,
                        check=False, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert all(flag in ok.stdout for flag in FLAGS["drill"])
    bad = subprocess.run([SCRIPT, "drill", "x.yaml", "--speed", "0"], capture_output=True,
                         text=True, check=False, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.startswith("Usage: alertsim drill [OPTIONS]")
    assert "Invalid value for '--speed': must be a positive number, got '0'" in bad.stderr
    assert "Traceback" not in bad.stderr


BAD_FLAGS = [
    (["decide", "--policy", "nope", "d.json"], "'--policy': 'nope' is not one of 'auto', 'block-2017', 'prefecture', 'prefecture+adjacent'"),
    (["decide", "d.json", "--format", "xml"], "'--format': 'xml' is not one of 'json', 'text'"),
    (["decide"], "Missing argument 'DETECTION'"),
    (["schema", "nope"], "'NAME': 'nope' is not one of 'detection', 'decision'"),
    (["drill", "x.yaml", "--speed", "0"], "'--speed': must be a positive number, got '0'"),
    (["drill", "x.yaml", "--speed", "nan"], "'--speed': must be a positive number, got 'nan'"),
    (["drill", "x.yaml", "--receivers", "-1"], "'--receivers': Input should be greater than or equal to 0"),
    (["drill", "x.yaml", "--broker", "http://example"], "'--broker': scheme must be mqtt://"),
    (["drill", "x.yaml", "--log-level", "loud"], "'--log-level': 'loud' is not one of 'debug', 'info'"),
    (["drill", "x.yaml", "--bogus"], "No such option: --bogus"),
    (["serve", "--status", "actual"], "'--status': status Actual is refused: alertsim is a simulator"),
    (["serve", "--status", "live"], "'--status': 'live' is not one of 'exercise', 'test'"),
    (["serve", "--protocol", "4"], "'--protocol': '4' is not one of '5', '3.1.1', 'auto'"),
    (["serve", "--policy", "block"], "'--policy': 'block' is not one of 'auto', 'block-2017'"),
    (["serve", "--confirm-after", "-1"], "'--confirm-after': Input should be greater than or equal to 0"),
    (["detect", "d.json", "--broker", "mqtt://host:0"], "'--broker': port must be an integer from 1 to 65535"),
    (["report", "r.db", "--format", "pdf"], "'--format': 'pdf' is not one of 'markdown', 'json', 'html'"),
    (["replay", "r.db"], "Missing option '--event'"),
    (["export-cap", "r.db"], "Missing option '--out'"),
    (["replay", "r.db", "--event", "e", "--speed", "fast"], "'--speed': not a number: 'fast'"),
    (["subscribe", "--prefecture", "48"], "'--prefecture': not a prefecture code 01..47: '48'"),
    (["subscribe", "--prefecture", "47", "--lang", "fr"], "'--lang': 'fr' is not one of 'ja', 'en'"),
    (["subscribe"], "Missing option '--prefecture'"),
    (["subscribe", "--prefecture", "47", "--wat"], "No such option: --wat"),
    (["subscribe", "--prefecture", "47", "--topic-root", "alertsim/#"], "'--topic-root': plain levels"),
    (["drill", "x.yaml", "--topic-root", "a//b"], "'--topic-root': plain levels"),
    (["serve", "--stale-after", "0"], "'--stale-after': Input should be greater than or equal to 1"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_bad_flag_shows_the_subcommand_usage(argv: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A bad flag exits 2; stderr has the sub-command's usage line and a specific message."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"Usage: alertsim {argv[0]} [OPTIONS]")
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert "Value error" not in captured.err


def test_unknown_command_shows_the_top_level_usage(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown command exits 2 with alertsim's own usage and the command's name."""
    assert main(["launch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Usage: alertsim [OPTIONS] COMMAND")
    assert "No such command 'launch'" in err


def test_bad_setting_in_the_environment_names_the_variable(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad ALERTSIM_* value exits 2 with `alertsim CMD: invalid input in settings:`."""
    monkeypatch.setenv("ALERTSIM_STATUS", "actual")
    assert main(["serve", "--broker", "mqtt://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "alertsim serve: invalid input in settings:"
    assert err[1].startswith("  ALERTSIM_STATUS: status Actual is refused")


@pytest.mark.usefixtures("_restore_logging")
@pytest.mark.parametrize(("env", "flag", "expected"), [
    (None, None, logging.INFO),
    ("debug", None, logging.DEBUG),
    ("DEBUG", "error", logging.ERROR),
])
def test_drill_dry_run_log_level(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str], env: str | None,
                                 flag: str | None, expected: int) -> None:
    """`drill --dry-run` logs at --log-level, else ALERTSIM_LOG_LEVEL, else info."""
    if env is not None:
        monkeypatch.setenv("ALERTSIM_LOG_LEVEL", env)
    configure_other_level(expected)
    argv = ["drill", str(SCENARIO), "--dry-run", *(["--log-level", flag] if flag else [])]
    assert main(argv) == 0, capsys.readouterr().err
    assert configured_level() == expected


def configure_other_level(expected: int) -> None:
    """Start from a level the command must change, so the check cannot pass by accident."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(
        logging.CRITICAL if expected != logging.CRITICAL else logging.DEBUG))


@pytest.mark.usefixtures("_restore_logging")
@pytest.mark.parametrize(("env", "flag", "expected"), [
    (None, None, logging.WARNING),
    ("debug", None, logging.DEBUG),
    ("debug", "ERROR", logging.ERROR),
])
def test_replay_log_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str], env: str | None,
                          flag: str | None, expected: int) -> None:
    """`replay` logs at --log-level, else ALERTSIM_LOG_LEVEL, else warning."""
    db = tmp_path / "empty.db"

    async def create() -> None:
        async with await Store.open(db):
            pass

    asyncio.run(create())
    if env is not None:
        monkeypatch.setenv("ALERTSIM_LOG_LEVEL", env)
    configure_other_level(expected)
    argv = ["replay", str(db), "--event", "nope", "--broker", "mqtt://127.0.0.1:1",
            *(["--log-level", flag] if flag else [])]
    assert main(argv) == 2  # the record holds no such event: refused after logging is set up
    assert "alertsim replay: invalid input in --event:" in capsys.readouterr().err
    assert configured_level() == expected


def _wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Block until `predicate()` holds (the shared `eventually`, from a sync test)."""
    asyncio.run(eventually(predicate, timeout=timeout_s, interval=0.05, what=what))


def _retain_state(broker: MosquittoBroker, *, clear: bool = False) -> None:
    """A retained state for Okinawa (`subscribe` prints it once subscribed), or none."""
    state = PrefectureState(code="47", status="Exercise", updated=DEFAULT_LAUNCH_TIME,
                            events=(PlaceEvent(event_id="ev", stage="shelter", identifier="id",
                                               sheltering=True),))
    payload = b"" if clear else state.model_dump_json().encode()

    async def publish() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.publish(topics.state("exercise", "47"), payload, qos=1, retain=True)

    asyncio.run(publish())


def _subscribe(broker: MosquittoBroker, tmp_path: Path, env_level: str,
               *flags: str) -> tuple[int, str, str]:
    """Run `alertsim subscribe` until it shows the retained state (so it has subscribed),
    then Ctrl-C."""
    _retain_state(broker)
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    env = {**os.environ, "ALERTSIM_LOG_LEVEL": env_level, "ALERTSIM_LOG_FORMAT": "json"}
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen([SCRIPT, "subscribe", "--prefecture", "47", "--broker",
                                 broker.url, "--lang", "en", *flags],
                                stdout=stdout, stderr=stderr, env=env,
                                preexec_fn=restore_sigint)
        try:
            _wait_for(lambda: "[47] EXERCISE state: SHELTERING" in out.read_text("utf-8"),
                      what="the subscriber showing the retained state")
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            _retain_state(broker, clear=True)  # the broker is shared with other tests
    return code, out.read_text("utf-8"), err.read_text("utf-8")


def test_subscribe_honours_env_log_level_and_flag(tmp_path: Path,
                                                  mosquitto: MosquittoBroker) -> None:
    """`subscribe` logs debug lines with ALERTSIM_LOG_LEVEL=debug, none when --log-level
    warning is given too; Ctrl-C ends it with exit 130 and no traceback."""
    code, out, err = _subscribe(mosquitto, tmp_path, "debug")
    assert code == 130, err
    assert "Ctrl-C to stop" in out
    assert '"event": "receiver.subscribed"' in err
    assert '"level": "debug"' in err
    assert "Traceback" not in err
    code, out, err = _subscribe(mosquitto, tmp_path, "debug", "--log-level", "warning")
    assert code == 130, err
    assert "Ctrl-C to stop" in out
    assert '"level": "debug"' not in err
    assert "Traceback" not in err


def test_report_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    """`alertsim report DB | head`: when the reader has gone, no BrokenPipe traceback."""
    db = tmp_path / "empty.db"

    async def create() -> None:
        async with await Store.open(db):
            pass

    asyncio.run(create())
    with subprocess.Popen([SCRIPT, "report", str(db)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()  # the reader goes away before the report is written
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
    assert err == ""
    assert code == 1


def test_report_reader_gone_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process too, a stdout whose reader has gone ends `main` with 1, not an exception."""

    class ClosedPipe:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    db = tmp_path / "empty.db"

    async def create() -> None:
        async with await Store.open(db):
            pass

    asyncio.run(create())
    monkeypatch.setattr(sys, "stderr", sys.stderr)  # Typer may wrap both streams: restore them
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["report", str(db)]) == 1


@pytest.mark.parametrize(("argv", "env", "message"), [
    (["serve", "--ca-file", "/nope/ca.crt"], {}, "mqtt_ca_file: Path does not point to a file"),
    (["subscribe", "--prefecture", "47", "--ca-file", "/nope/ca.crt"], {},
     "mqtt_ca_file: Path does not point to a file"),
    (["serve"], {"ALERTSIM_SIGNING_KEY": "/nope.key"},
     "ALERTSIM_SIGNING_KEY: Path does not point to a file"),
])
def test_missing_key_or_ca_file_exits_2_before_connecting(
        argv: list[str], env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A CA file or signing key that does not exist is bad input (exit 2), not a broker to
    retry forever."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
