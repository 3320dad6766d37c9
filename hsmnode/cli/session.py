"""`hsmnode session ...`: the NTLS client handshake with one of the profile's client certificates."""

from __future__ import annotations

import dataclasses

import click

from hsmnode.cli._common import (
    client_option,
    connect,
    container_session,
    emit,
    json_option,
    load_sessions,
    password_option,
    profile_options,
    reports_errors,
    save_sessions,
)

ROLES = click.Choice(["po", "co", "cu", "krso", "krco"], case_sensitive=False)


@click.group()
def session() -> None:
    """Partition and keyring sessions over NTLS (the profile's `client` certificate, or --client NAME)."""


@session.command("slots")
@client_option
@profile_options
@json_option
@reports_errors
def slots(client_name: str | None, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """The partitions and keyrings assigned to this client, and nothing else."""
    with connect(profile, endpoints, identity=client_name or "client") as client:
        name, found = client.list_slots()

    def human() -> None:
        click.echo(f"client {name}: {len(found)} slot(s)")
        for s in found:
            click.echo(f"  {s.kind:<9} {s.partition:<20} {s.label:<34} initialized={s.initialized}")

    emit(as_json, {"client": name, "slots": [dataclasses.asdict(s) for s in found]}, human)


@session.command("open")
@click.argument("name")
@click.option(
    "--role",
    type=ROLES,
    default="co",
    show_default=True,
    help="po/co/cu on a partition, krso/krco on a keyring.",
)
@password_option(what="Partition or keyring password", env="HSMNODE_PARTITION_PASSWORD")
@client_option
@profile_options
@json_option
@reports_errors
def open_(
    name: str,
    role: str,
    password: str,
    client_name: str | None,
    profile: str | None,
    endpoints: tuple[str, ...],
    as_json: bool,
) -> None:
    """Handshake: list the assigned slots, then open a session on partition or keyring NAME."""
    identity = client_name or "client"
    with connect(profile, endpoints, identity=identity) as client:
        registered, found = client.list_slots()
        s = client.open_session(name, password, role=role.upper())
    sessions = load_sessions(profile)
    sessions.setdefault("partitions", {})[name] = {"token": s.token, "role": s.role, "client": identity}
    save_sessions(profile, sessions)
    emit(
        as_json,
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


@session.command("show")
@click.argument("name")
@profile_options
@json_option
@reports_errors
def show(name: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """Is the cached session on NAME still valid (on the member that answers)?"""
    client, held = container_session(profile, endpoints, name)
    with client:
        info = held.info()
    emit(
        as_json,
        dataclasses.asdict(info),
        lambda: click.echo(f"{info.role} session on {info.partition} is valid"),
    )


@session.command("close")
@click.argument("name")
@profile_options
@reports_errors
def close(name: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """Log out: this client's sessions of that role on NAME end on every member."""
    client, held = container_session(profile, endpoints, name)
    with client:
        held.logout()
    sessions = load_sessions(profile)
    sessions.get("partitions", {}).pop(name, None)
    save_sessions(profile, sessions)
    click.echo(f"session on {name} closed")


@session.command("passwd")
@click.argument("name")
@click.option("--role", type=ROLES, required=True)
@password_option("--old-password", what="Current password")
@password_option("--new-password", what="New password")
@client_option
@profile_options
@reports_errors
def passwd(
    name: str,
    role: str,
    old_password: str,
    new_password: str,
    client_name: str | None,
    profile: str | None,
    endpoints: tuple[str, ...],
) -> None:
    """Change a role's password on partition or keyring NAME (a new CO, CU or KRSO must, before its first session)."""
    with connect(profile, endpoints, identity=client_name or "client") as client:
        client.change_partition_password(name, role.upper(), old_password, new_password)
    click.echo(f"password of the {role.upper()} of {name} changed")
