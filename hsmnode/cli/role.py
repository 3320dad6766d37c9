"""`hsmnode role ...`: appliance roles, the four defaults and custom allow-lists of commands."""

from __future__ import annotations

import click

from hsmnode.cli._command import ApplianceCall, appliance_command, list_command, show_command
from hsmnode.cli._output import Column


@click.group()
def role() -> None:
    """Appliance roles: the four defaults and custom allow-lists of commands."""


@appliance_command(role, "add", json=False)
@click.argument("name")
@click.option("--command", "commands", multiple=True, required=True, help="An allowed command (repeat).")
def role_add(call: ApplianceCall, name: str, commands: tuple[str, ...]) -> None:
    """Add a custom role allowing exactly the given commands (e.g. --command user.list)."""
    call.session.add_role(name, list(commands))
    click.echo(f"role {name} added: {', '.join(sorted(commands))}")


ROLE_COLUMNS = [
    Column("ROLE", lambda r: r.name + (" (default)" if r.builtin else ""), sep=": "),
    Column("COMMANDS", lambda r: ", ".join(r.commands)),
]


role_list = list_command(
    appliance_command(role, "list"),
    "Default and custom roles with their commands.",
    lambda c: c.session.list_roles(),
    ROLE_COLUMNS,
    header=False,
)


role_show = show_command(
    appliance_command(role, "show"),
    "One role and its commands.",
    "name",
    lambda c, name: c.session.show_role(name),
    lambda r: f"{r.name}: {', '.join(r.commands)}",
)


@appliance_command(role, "delete", json=False)
@click.argument("name")
def role_delete(call: ApplianceCall, name: str) -> None:
    """Delete a custom role that no user holds."""
    call.session.delete_role(name)
    click.echo(f"role {name} deleted")
