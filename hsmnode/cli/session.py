"""`hsmnode session ...`: the NTLS client handshake with one of the profile's client certificates,
and the cached partition and keyring sessions it opens."""

from __future__ import annotations

import dataclasses

import click

from hsmnode.cli._cache import load_sessions, save_sessions
from hsmnode.cli._command import ClientCall, ContainerCall, client_command, container_command
from hsmnode.cli._options import password_option
from hsmnode.cli._output import Column, table
from hsmnode.client import Unauthenticated

ROLES = click.Choice(["po", "co", "cu", "krso", "krco"], case_sensitive=False)

SLOT_COLUMNS = [
    Column("KIND", "kind", 9),
    Column("NAME", "partition", 20),
    # a keyring's slot carries its id in `label`; its label is its name
    Column("LABEL", lambda s: s.label if s.kind == "partition" else s.partition, 34),
    Column("INITIALIZED", lambda s: f"initialized={s.initialized}"),
]


@click.group()
def session() -> None:
    """Partition and keyring sessions over NTLS (the profile's `client` certificate, or --client NAME)."""


@client_command(session, "slots", identity="client", client_option=True)
def slots(call: ClientCall) -> None:
    """The partitions and keyrings assigned to this client, and nothing else."""
    name, found = call.client.list_slots()

    def human() -> None:
        click.echo(f"client {name}: {len(found)} slot(s)")
        table(found, SLOT_COLUMNS, header=False, indent="  ")

    call.emit({"client": name, "slots": [dataclasses.asdict(s) for s in found]}, human)


@client_command(session, "open", identity="client", client_option=True)
@click.argument("name")
@click.option(
    "--role",
    type=ROLES,
    default="co",
    show_default=True,
    help="po/co/cu on a partition, krso/krco on a keyring.",
)
@password_option(what="Partition or keyring password", env="HSMNODE_PARTITION_PASSWORD")
def open_(call: ClientCall, name: str, role: str, password: str) -> None:
    """Handshake: list the assigned slots, then open a session on partition or keyring NAME."""
    registered, found = call.client.list_slots()
    s = call.client.open_session(name, password, role=role.upper())
    sessions = load_sessions(call.profile)
    sessions.setdefault("partitions", {})[name] = {"token": s.token, "role": s.role, "client": call.identity}
    save_sessions(call.profile, sessions)
    call.emit(
        {
            "client": registered,
            "slots": [x.partition for x in found],
            "partition": s.subject,
            "role": s.role,
            "expires_ms": s.expires_ms,
        },
        lambda: click.echo(
            f"client {registered} sees {', '.join(x.partition for x in found)}; {s.role} session open on {s.subject}"
        ),
    )


@container_command(session, "show", on="name")
@click.argument("name")
def show(call: ContainerCall, name: str) -> None:
    """Is the cached session on NAME still valid (on the member that answers)?"""
    info = call.session.info()
    call.emit(
        dataclasses.asdict(info), lambda: click.echo(f"{info.role} session on {info.partition} is valid")
    )


@container_command(session, "close", on="name", json=False)
@click.argument("name")
def close(call: ContainerCall, name: str) -> None:
    """Log out: this client's sessions of that role on NAME end on every member. A cached session
    that had already ended (expired, logged out elsewhere, password changed) is dropped from the
    profile all the same."""
    try:
        call.session.logout()
        said = f"session on {name} closed"
    except Unauthenticated as exc:
        said = f"session on {name} had already ended ({exc.message}); removed from the profile"
    sessions = load_sessions(call.profile)
    sessions.get("partitions", {}).pop(name, None)
    save_sessions(call.profile, sessions)
    click.echo(said)


@client_command(session, "passwd", identity="client", client_option=True, json=False)
@click.argument("name")
@click.option("--role", type=ROLES, required=True)
@password_option("--old-password", what="Current password")
@password_option("--new-password", what="New password")
def passwd(call: ClientCall, name: str, role: str, old_password: str, new_password: str) -> None:
    """Change a role's password on partition or keyring NAME (a new CO, CU or KRSO must, before its first session)."""
    call.client.change_partition_password(name, role.upper(), old_password, new_password)
    click.echo(f"password of the {role.upper()} of {name} changed")
