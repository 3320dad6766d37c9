"""`hsmnode session ...`: the NTLS client handshake with the profile's client certificate."""

from __future__ import annotations

import dataclasses

import click

from hsmnode.cli._common import (
    connect,
    emit,
    json_option,
    load_sessions,
    partition_token,
    password_option,
    profile_options,
    reports_errors,
    save_sessions,
)


@click.group()
def session() -> None:
    """Partition sessions over NTLS (the profile's `client` certificate)."""


@session.command("slots")
@profile_options
@json_option
@reports_errors
def slots(profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """The partitions assigned to this client, and nothing else."""
    with connect(profile, endpoints, identity="client") as client:
        name, found = client.list_slots()

    def human() -> None:
        click.echo(f"client {name}: {len(found)} partition(s)")
        for s in found:
            click.echo(
                f"  {s.partition:<20} {s.label:<24} initialized={s.initialized} activated={s.activated}"
            )

    emit(as_json, {"client": name, "slots": [dataclasses.asdict(s) for s in found]}, human)


@session.command("open")
@click.argument("partition")
@click.option(
    "--role", type=click.Choice(["po", "co", "cu"], case_sensitive=False), default="co", show_default=True
)
@password_option()
@profile_options
@json_option
@reports_errors
def open_(
    partition: str, role: str, password: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool
) -> None:
    """Handshake: list the assigned partitions, then open a session on PARTITION with the role's password."""
    with connect(profile, endpoints, identity="client") as client:
        name, found = client.list_slots()
        s = client.open_session(partition, password, role=role.upper())
    sessions = load_sessions(profile)
    sessions.setdefault("partitions", {})[partition] = {"token": s.token, "role": s.role}
    save_sessions(profile, sessions)
    emit(
        as_json,
        {
            "client": name,
            "slots": [x.partition for x in found],
            "partition": s.subject,
            "role": s.role,
            "expires_ms": s.expires_ms,
        },
        lambda: click.echo(
            f"client {name} sees {', '.join(x.partition for x in found)}; {s.role} session open on {s.subject}"
        ),
    )


@session.command("show")
@click.argument("partition")
@profile_options
@json_option
@reports_errors
def show(partition: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """Is the cached session on PARTITION still valid (on the member that answers)?"""
    with connect(profile, endpoints, identity="client") as client:
        info = client.resume_partition(partition_token(profile, partition), partition).info()
    emit(
        as_json,
        dataclasses.asdict(info),
        lambda: click.echo(f"{info.role} session on {info.partition} is valid"),
    )


@session.command("close")
@click.argument("partition")
@profile_options
@reports_errors
def close(partition: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """Log out: this client's sessions of that role on PARTITION end on every member."""
    with connect(profile, endpoints, identity="client") as client:
        client.resume_partition(partition_token(profile, partition), partition).logout()
    sessions = load_sessions(profile)
    sessions.get("partitions", {}).pop(partition, None)
    save_sessions(profile, sessions)
    click.echo(f"session on {partition} closed")


@session.command("passwd")
@click.argument("partition")
@click.option("--role", type=click.Choice(["po", "co", "cu"], case_sensitive=False), required=True)
@password_option("--old-password", what="Current password")
@password_option("--new-password", what="New password")
@profile_options
@reports_errors
def passwd(
    partition: str,
    role: str,
    old_password: str,
    new_password: str,
    profile: str | None,
    endpoints: tuple[str, ...],
) -> None:
    """Change a partition role's password (required before the first session of a new CO/CU)."""
    with connect(profile, endpoints, identity="client") as client:
        client.change_partition_password(partition, role.upper(), old_password, new_password)
    click.echo(f"password of the {role.upper()} of {partition} changed")
