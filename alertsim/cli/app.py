"""The `alertsim` Typer app and `main`: commands, exit codes and error messages, nothing else.

    0    done
    1    failed (a broker or store error, an expectation not met)
    2    bad input: a bad flag (the sub-command's usage and the problem), a bad file or
         setting (`alertsim CMD: invalid input in SOURCE:` and one line per problem),
         a bad scenario
    3    `detect`: the service took the detection but published nothing for it (a
         duplicate, or nothing new to warn)
    4    `detect`: no service answered (no `online` status under the topic root)
    130  interrupted (Ctrl-C)

The CLI's own messages come from the `cli` catalogue in the language of `--lang` /
`ALERTSIM_LANG` (`cli.messages`; English unless told).

Never a traceback for any of these, nor for a reader that stops early (`report | head`).
"""

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from alertsim import __version__
from alertsim.cli import (
    builder,
    cap,
    conformance,
    decide,
    drill,
    fleet,
    keys,
    operator,
    security,
    service,
    subscribe,
)
from alertsim.cli.messages import DEFAULT_CLI_LANG, Invocation, say, use_lang
from alertsim.cli.options import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from alertsim.errors import AlertSimError, InputError, ScenarioError
from alertsim.i18n import Lang

__all__ = ["app", "main"]

PROG = "alertsim"

app = typer.Typer(
    name=PROG,
    # Plain help and errors: stable to read, grep and test at any terminal width.
    rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("decide")(decide.decide_command)
app.command("schema")(decide.schema_command)
app.command("drill")(drill.drill_command)
app.command("serve")(service.serve_command)
app.command("detect")(service.detect_command)
app.command("subscribe")(subscribe.subscribe_command)
app.command("fleet")(fleet.fleet_command)
app.command("report")(drill.report_command)
app.command("replay")(drill.replay_command)
app.command("broker-config")(security.broker_config_command)
app.command("keygen")(keys.keygen_command)
app.command("cancel")(operator.cancel_command)
app.command("close")(operator.close_command)
app.command("conformance")(conformance.conformance_command)
app.command("export-cap")(cap.export_cap_command)
app.command("builder")(builder.builder_command)


def _show_version(value: bool) -> None:
    if value:
        print(say("app.version", prog=PROG, version=__version__))
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="print the version and exit")] = False,
    lang: Annotated[Lang, typer.Option(
        "--lang", envvar="ALERTSIM_LANG", show_envvar=False,
        help="language of the CLI's own messages: ja or en (env ALERTSIM_LANG, default "
             "en)")] = "en",
) -> None:
    """J-Alert-style alert simulator (a simulator, not an official alert feed)."""
    if not isinstance(ctx.obj, Invocation):
        ctx.obj = Invocation()
    ctx.obj.command = ctx.invoked_subcommand or ""
    ctx.obj.lang = lang
    use_lang(lang)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `alertsim` on `argv` (default: the process arguments); return the exit code."""
    try:
        return _run(argv)
    finally:
        use_lang(DEFAULT_CLI_LANG)  # the next run (a test's) starts from the default again


def _run(argv: Sequence[str] | None) -> int:
    invocation = Invocation()
    try:
        result = typer.main.get_command(app).main(
            args=argv, prog_name=PROG, standalone_mode=False, obj=invocation)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except typer.TyperException as exc:  # Typer's (Click's) usage errors
        return _usage_error(exc, invocation.lang)
    except AlertSimError as exc:
        return _failure(invocation, exc)
    except ExceptionGroup as group:  # a task of the service died: say which, exit non-zero
        known = group.subgroup(lambda exc: isinstance(exc, AlertSimError))
        if known is None:
            raise
        return _failure(invocation, _first_leaf(known))
    except BrokenPipeError:
        return _reader_gone()
    except typer.Abort:  # end of input at a prompt
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # Typer's own answer to a broken pipe
        return exc.code if isinstance(exc.code, int) else EXIT_FAILED
    return result if isinstance(result, int) else EXIT_OK


def _first_leaf(group: BaseExceptionGroup[AlertSimError]) -> AlertSimError:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    assert isinstance(leaf, AlertSimError)
    return leaf


def _usage_error(exc: typer.TyperException, lang: Lang) -> int:
    """The sub-command's usage line and the problem on stderr, as Click shows them."""
    if isinstance(exc, typer.BadParameter):
        # Typer reports a failed choice through pydantic, which prefixes "Value error, ".
        exc.message = exc.message.removeprefix("Value error, ")
    show = getattr(exc, "show", None)
    if callable(show):
        show()
    else:
        print(say("app.usage_error", lang=lang, problem=exc.format_message()), file=sys.stderr)
    return exc.exit_code


def _failure(invocation: Invocation, exc: AlertSimError) -> int:
    """`alertsim CMD: ...` on stderr; 2 for bad input or a bad scenario, else 1. Problems
    and reasons are quoted as the code that found them words them."""
    lang, command = invocation.lang, invocation.command
    if isinstance(exc, InputError):
        print(say("app.invalid_input", lang=lang, prog=PROG, command=command,
                  source=exc.source), file=sys.stderr)
        for problem in exc.problems:
            print(say("app.problem", lang=lang, problem=problem), file=sys.stderr)
        return EXIT_BAD_INPUT
    print(say("app.failed", lang=lang, prog=PROG, command=command, error=exc),
          file=sys.stderr)
    return EXIT_BAD_INPUT if isinstance(exc, ScenarioError) else EXIT_FAILED


def _reader_gone() -> int:
    """stdout's reader has gone (`alertsim report | head`): stop quietly, like Click does.

    What is still buffered would fail again when Python flushes stdout at exit, so stdout
    is pointed at /dev/null first.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (a test's capture)
        pass
    return EXIT_FAILED
