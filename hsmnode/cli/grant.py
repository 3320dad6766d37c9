"""`hsmnode grant ...`: partition permissions between users (DOMAIN.md §4), granted in the owner
partition's CO session (--on OWNER)."""

from __future__ import annotations

import click

from hsmnode.cli._command import ContainerCall, container_command, on_option
from hsmnode.cli._output import Column

ON_HELP = "The partition of a cached CO session."
GRANT_CHOICE = click.Choice(["create", "remove", "read", "update_log"])

GRANT_COLUMNS = [
    Column("OWNER", lambda g: g[0], sep=" -> "),
    Column("GRANTEE", lambda g: g[1], sep=": "),
    Column("PERMISSIONS", lambda g: ", ".join(g[2])),
]


@click.group()
def grant() -> None:
    """Partition permissions between users (DOMAIN.md §4): the owner's CO session grants (--on OWNER)."""


@container_command(grant, "add", on=on_option(ON_HELP), json=False)
@click.argument("grantee")
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    required=True,
    type=GRANT_CHOICE,
    help="Repeat; replaces what GRANTEE held.",
)
def grant_add(call: ContainerCall, grantee: str, permissions: tuple[str, ...]) -> None:
    """Grant GRANTEE's users permissions on all objects of partition --on (keys named partition:OWNER/KEY)."""
    granted = call.session.grant(grantee, list(permissions))
    click.echo(f"partition {call.name} grants {grantee}: {', '.join(granted)}")


@container_command(grant, "remove", on=on_option(ON_HELP), json=False)
@click.argument("grantee")
def grant_remove(call: ContainerCall, grantee: str) -> None:
    """Revoke everything partition --on granted GRANTEE (at once, on every member)."""
    call.session.revoke_grant(grantee)
    click.echo(f"partition {call.name} revoked its grants to {grantee}")


@container_command(grant, "list", on=on_option(ON_HELP))
def grant_list(call: ContainerCall) -> None:
    """Grants partition --on gave and received."""
    found = call.session.list_grants()
    data = [{"owner": o, "grantee": g, "permissions": list(p)} for o, g, p in found]
    call.table(found, GRANT_COLUMNS, header=False, data=data)
