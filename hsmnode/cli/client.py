"""`hsmnode client ...`: NTLS client certificates (admin, in the appliance session)."""

from __future__ import annotations

from pathlib import Path

import click

from hsmnode.cli._command import ApplianceCall, appliance_command, list_command, show_command
from hsmnode.cli._output import Column


@click.group("client")
def client_group() -> None:
    """NTLS clients: register certificates, assign partitions."""


@appliance_command(client_group, "register")
@click.argument("name")
@click.option(
    "--cert",
    "cert_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The client's PEM certificate.",
)
def client_register(call: ApplianceCall, name: str, cert_path: str) -> None:
    """admin: register a client certificate (takes effect on every member, no restart)."""
    fp = call.session.register_client(name, Path(cert_path).read_text())
    call.emit(
        {"name": name, "fingerprint": fp}, lambda: click.echo(f"client {name} registered (sha256 {fp})")
    )


@appliance_command(client_group, "assign", json=False)
@click.argument("name")
@click.argument("partition_name")
def client_assign(call: ApplianceCall, name: str, partition_name: str) -> None:
    """admin: assign a partition to a client."""
    call.session.assign_client(name, partition_name)
    click.echo(f"partition {partition_name} assigned to {name}")


@appliance_command(client_group, "revoke", json=False)
@click.argument("name")
@click.argument("partition_name", required=False, default="")
def client_revoke(call: ApplianceCall, name: str, partition_name: str) -> None:
    """admin: revoke a partition from a client, or without PARTITION the client's registration."""
    call.session.revoke_client(name, partition_name)
    click.echo(
        f"partition {partition_name} revoked from {name}" if partition_name else f"client {name} unregistered"
    )


CLIENT_COLUMNS = [
    Column("CLIENT", "name", 20),
    Column("FINGERPRINT", lambda c: c.fingerprint[:16] + "...", sep="  "),
    Column("PARTITIONS", lambda c: ", ".join(c.partitions) or "-"),
]


client_list = list_command(
    appliance_command(client_group, "list"),
    "Registered clients and their partitions.",
    lambda c: c.session.list_clients(),
    CLIENT_COLUMNS,
    header=False,
)


client_show = show_command(
    appliance_command(client_group, "show"),
    "One registered client.",
    "name",
    lambda c, name: c.session.show_client(name),
    lambda cl: f"{cl.name} sha256 {cl.fingerprint} partitions: {', '.join(cl.partitions) or '-'}",
)
