"""The `alertsim` command line: one thin module per command group.

    app        the Typer app, `main`, exit codes and error messages
    decide     decide, schema
    service    serve, detect
    drill      drill, report, replay
    subscribe  subscribe (and `run_subscriber`, what it runs)
    options    exit codes, flag parsers and option types shared by the commands
    settings   flags > ALERTSIM_* environment > defaults, merged once
    render     text for people: decisions, alerts, retained states
"""

from alertsim.cli.app import main

__all__ = ["main"]
