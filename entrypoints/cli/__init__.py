"""`donor-match`: the command line, one module per command group. Commands only translate
arguments and print; what several commands share is a plain function (never a command calling
another), and settings are passed as objects, never through os.environ."""

from __future__ import annotations

import typer

from entrypoints.cli import etl, jobs, model, serve, store, token

app = typer.Typer(help="Match donors with nonprofits over a graph.", no_args_is_help=True)
app.add_typer(store.app, name="store")
app.add_typer(etl.app, name="etl")
app.command()(model.train)
app.command()(model.benchmark)
app.command()(model.evaluate)
app.add_typer(model.app, name="model")
app.add_typer(jobs.pipeline_app, name="pipeline")
app.add_typer(jobs.drift_app, name="drift")
app.add_typer(token.app, name="token")
app.command()(serve.serve)
app.command()(serve.demo)
app.command()(serve.quickstart)
