"""`hsmnode user ...`: appliance users (admin, in the appliance session)."""

from __future__ import annotations

import click

from hsmnode.cli._command import ApplianceCall, appliance_command, list_command, show_command
from hsmnode.cli._options import password_option
from hsmnode.cli._output import Column


@click.group()
def user() -> None:
    """Appliance users (admin adds, enables, disables, deletes and resets them)."""


@appliance_command(user, "add", json=False)
@click.argument("name")
@click.option("--role", required=True, help="admin, operator, monitor, audit or a custom role.")
@password_option(what="Initial password", env="HSMNODE_INITIAL_PASSWORD")
def user_add(call: ApplianceCall, name: str, role: str, password: str) -> None:
    """Add a user; it must change the initial password at first login."""
    call.session.add_user(name, role=role, password=password)
    click.echo(f"user {name} added (role {role}); it must change its password at first login")


USER_COLUMNS = [
    Column("USER", "name", 20),
    Column("ROLE", "role", 14),
    Column("ENABLED", "enabled", 8),
    Column("LOCKED", "locked", 7),
    Column("MUST-CHANGE", "must_change_password"),
]


user_list = list_command(
    appliance_command(user, "list"), "Every appliance user.", lambda c: c.session.list_users(), USER_COLUMNS
)
user_show = show_command(
    appliance_command(user, "show"), "One appliance user.", "name", lambda c, name: c.session.show_user(name)
)


@appliance_command(user, "enable", json=False)
@click.argument("name")
def user_enable(call: ApplianceCall, name: str) -> None:
    """Enable a user."""
    call.session.set_user_enabled(name, True)
    click.echo(f"user {name} enabled")


@appliance_command(user, "disable", json=False)
@click.argument("name")
def user_disable(call: ApplianceCall, name: str) -> None:
    """Disable a user (its sessions end on every member)."""
    call.session.set_user_enabled(name, False)
    click.echo(f"user {name} disabled")


@appliance_command(user, "delete", json=False)
@click.argument("name")
def user_delete(call: ApplianceCall, name: str) -> None:
    """Delete a user (default accounts can only be disabled)."""
    call.session.delete_user(name)
    click.echo(f"user {name} deleted")


@appliance_command(user, "passwd", json=False)
@click.argument("name")
@password_option(what="New password", env="HSMNODE_NEW_PASSWORD")
def user_passwd(call: ApplianceCall, name: str, password: str) -> None:
    """admin: reset NAME's password (unlocks it; NAME must change it at next login).

    To change your own password: hsmnode login USER --new-password NEW.
    """
    call.session.set_user_password(name, password)
    click.echo(f"password of {name} reset; it must be changed at next login")
