"""`donor-match token`: local JWTs for development."""

from __future__ import annotations

from typing import Annotated

import typer

from entrypoints.bootstrap import Settings, token_service
from entrypoints.cli.common import console

app = typer.Typer(help="Local JWTs (HS256) for development.", no_args_is_help=True)


@app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="donor, nonprofit, analyst, admin or integrator.")],
    subject: Annotated[str, typer.Option(help="Donor or nonprofit id, or a person's id.")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
) -> None:
    """Print a bearer token signed with DONOR_MATCH_JWT_SECRET."""
    from donor_match.services.auth import Role, UnauthenticatedError

    tokens = token_service(Settings.load())
    try:
        typer.echo(tokens.issue(subject, Role(role), ttl))
    except ValueError as exc:
        raise typer.BadParameter(f"unknown role {role!r}", param_hint="--role") from exc
    except UnauthenticatedError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
