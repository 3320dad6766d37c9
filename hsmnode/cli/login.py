"""`hsmnode login` and `hsmnode logout`: the appliance session the other commands use."""

from __future__ import annotations

import click

from hsmnode.cli._cache import load_sessions, save_sessions
from hsmnode.cli._command import ApplianceCall, ClientCall, appliance_command, client_command
from hsmnode.cli._options import password_option


@client_command(None, "login")
@click.argument("user")
@password_option()
@password_option(
    "--new-password", what="New password (required when the current one has expired)", required=False
)
def login(call: ClientCall, user: str, password: str, new_password: str) -> None:
    """Log in as an appliance user; the session is cached for the following commands."""
    session = call.client.login(user, password, new_password=new_password)
    sessions = load_sessions(call.profile)
    sessions["appliance"] = {"token": session.token, "user": session.subject, "role": session.role}
    save_sessions(call.profile, sessions)
    call.emit(
        {"user": session.subject, "role": session.role, "expires_ms": session.expires_ms},
        lambda: click.echo(f"logged in as {session.subject} (role {session.role})"),
    )


@appliance_command(None, "logout", json=False)
def logout(call: ApplianceCall) -> None:
    """End the cached appliance session on every member."""
    token = call.token
    call.client.resume(token).logout()
    sessions = load_sessions(call.profile)
    sessions.pop("appliance", None)
    save_sessions(call.profile, sessions)
    click.echo("logged out")
