"""`hsmnode hsm ...`, `hsmnode partition ...`, `hsmnode client ...`: HSM, partitions, NTLS clients."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import click

from hsmnode.cli._common import (
    appliance_session,
    connect,
    container_session,
    emit,
    emit_record,
    json_option,
    load_sessions,
    password_option,
    profile_options,
    reports_errors,
    save_sessions,
)


@click.group()
def hsm() -> None:
    """The HSM: initialization, its SO and Auditor roles, policies."""


@hsm.command("init")
@click.option("--label", required=True)
@password_option("--so-password", what="SO password")
@profile_options
@json_option
@reports_errors
def hsm_init(
    label: str, so_password: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool
) -> None:
    """admin: initialize the HSM and set the SO password (on an initialized HSM, log in as SO first: it zeroizes)."""
    client, s = appliance_session(profile, endpoints)
    with client:
        destroyed = s.init_hsm(label, so_password)
    emit(
        as_json,
        {"label": label, "destroyed_partitions": destroyed},
        lambda: click.echo(
            f"HSM '{label}' initialized" + (f"; {destroyed} partition(s) destroyed" if destroyed else "")
        ),
    )


@hsm.command("show")
@profile_options
@json_option
@reports_errors
def hsm_show(profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """HSM state and policies."""
    client, s = appliance_session(profile, endpoints)
    with client:
        info = s.show_hsm()
    emit_record(as_json, info)


@hsm.command("login")
@click.option(
    "--auditor", is_flag=True, help="Take on the Auditor role (as the audit user) instead of the SO."
)
@password_option(what="HSM role password", env="HSMNODE_HSM_PASSWORD")
@profile_options
@reports_errors
def hsm_login(auditor: bool, password: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """Take on the HSM SO (or Auditor) role in the cached appliance session."""
    client, s = appliance_session(profile, endpoints)
    with client:
        elevated = s.hsm_login(password, role="AU" if auditor else "SO")
    sessions = load_sessions(profile)
    sessions.setdefault("appliance", {})["token"] = elevated.token
    save_sessions(profile, sessions)
    click.echo(f"logged in to the HSM {'Auditor' if auditor else 'SO'} role")


@hsm.command("logout")
@profile_options
@reports_errors
def hsm_logout(profile: str | None, endpoints: tuple[str, ...]) -> None:
    """Give up the HSM role; the appliance session goes on."""
    client, s = appliance_session(profile, endpoints)
    with client:
        plain = s.leave_role()
    sessions = load_sessions(profile)
    sessions.setdefault("appliance", {})["token"] = plain.token
    save_sessions(profile, sessions)
    click.echo("left the HSM role")


@hsm.command("auditor-init")
@password_option(what="Auditor password", env="HSMNODE_AUDITOR_PASSWORD")
@profile_options
@reports_errors
def hsm_auditor_init(password: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """audit user: initialize the HSM Auditor role."""
    client, s = appliance_session(profile, endpoints)
    with client:
        s.init_auditor(password)
    click.echo("Auditor initialized")


@hsm.command("policy")
@click.argument("name")
@click.argument("value", type=click.Choice(["on", "off"]))
@profile_options
@reports_errors
def hsm_policy(name: str, value: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """SO: set an HSM policy (po_can_reset_co)."""
    client, s = appliance_session(profile, endpoints)
    with client:
        s.set_hsm_policy(name, value == "on")
    click.echo(f"HSM policy {name} = {value}")


@click.group()
def partition() -> None:
    """Partitions: the SO creates and deletes them; over NTLS the PO initializes them."""


@partition.command("create")
@click.argument("name")
@click.option(
    "--cluster",
    "cluster",
    is_flag=True,
    help="The cluster partition: its PO is the cluster security officer.",
)
@click.option(
    "--requires-authorization", is_flag=True, help="M-of-N: keys usable only when authorized by cards."
)
@profile_options
@reports_errors
def partition_create(
    name: str, cluster: bool, requires_authorization: bool, profile: str | None, endpoints: tuple[str, ...]
) -> None:
    """SO: create a partition."""
    client, s = appliance_session(profile, endpoints)
    with client:
        s.create_partition(name, cluster=cluster, requires_authorization=requires_authorization)
    click.echo(
        f"partition {name} created; assign it to a client, which initializes it (hsmnode partition init)"
    )


@partition.command("delete")
@click.argument("name")
@profile_options
@reports_errors
def partition_delete(name: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """SO: delete a partition and everything in it."""
    client, s = appliance_session(profile, endpoints)
    with client:
        s.delete_partition(name)
    click.echo(f"partition {name} deleted")


@partition.command("list")
@profile_options
@json_option
@reports_errors
def partition_list(profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """Every partition (appliance view)."""
    client, s = appliance_session(profile, endpoints)
    with client:
        parts = s.list_partitions()

    def human() -> None:
        click.echo(f"{'PARTITION':<20} {'LABEL':<24} {'INIT':<6} {'ACTIVATED':<9} ROLES")
        for p in parts:
            click.echo(
                f"{p.name:<20} {p.label:<24} {str(p.initialized):<6} {str(p.activated):<9} {','.join(r.role for r in p.roles)}"
            )

    emit(as_json, [dataclasses.asdict(p) for p in parts], human)


@partition.command("show")
@click.argument("name")
@profile_options
@json_option
@reports_errors
def partition_show(name: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """One partition: roles, policies, activation."""
    client, s = appliance_session(profile, endpoints)
    with client:
        p = s.show_partition(name)
    emit_record(as_json, p)


@partition.command("init")
@click.argument("name")
@click.option("--label", required=True)
@click.option("--cloning-domain", required=True)
@password_option("--po-password", what="PO password")
@profile_options
@reports_errors
def partition_init(
    name: str,
    label: str,
    cloning_domain: str,
    po_password: str,
    profile: str | None,
    endpoints: tuple[str, ...],
) -> None:
    """NTLS client: initialize an assigned partition and set its PO password."""
    with connect(profile, endpoints, identity="client") as client:
        client.init_partition(name, label=label, cloning_domain=cloning_domain, po_password=po_password)
    click.echo(f"partition {name} initialized")


@partition.command("role-init")
@click.argument("name")
@click.option("--role", type=click.Choice(["co", "cu"], case_sensitive=False), required=True)
@password_option(what="Initial password", env="HSMNODE_INITIAL_PASSWORD")
@profile_options
@reports_errors
def partition_role_init(
    name: str, role: str, password: str, profile: str | None, endpoints: tuple[str, ...]
) -> None:
    """PO session: initialize/reset the CO. CO session: initialize/reset the CU."""
    client, held = container_session(profile, endpoints, name)
    with client:
        held.init_role(role.upper(), password)
    click.echo(f"{role.upper()} of {name} initialized; it must change the password at first login")


@partition.command("policy")
@click.argument("name")
@click.argument("policy")
@click.argument("value", type=int)
@profile_options
@reports_errors
def partition_policy(
    name: str, policy: str, value: int, profile: str | None, endpoints: tuple[str, ...]
) -> None:
    """PO session: set a partition policy (max_failed_logins, must_change_initial_password,
    activation_required, auto_activation, private_key_cloning, private_key_wrapping)."""
    client, held = container_session(profile, endpoints, name)
    with client:
        held.set_policy(policy, value)
    click.echo(f"partition {name}: {policy} = {value}")


@partition.command("activate")
@click.argument("name")
@password_option("--co-password", what="CO password")
@click.option("--deactivate", is_flag=True, help="Deactivate instead.")
@profile_options
@reports_errors
def partition_activate(
    name: str, co_password: str, deactivate: bool, profile: str | None, endpoints: tuple[str, ...]
) -> None:
    """NTLS client, with the CO password: activate (or deactivate) a partition."""
    with connect(profile, endpoints, identity="client") as client:
        client.activate_partition(name, co_password, active=not deactivate)
    click.echo(f"partition {name} {'deactivated' if deactivate else 'activated'}")


@partition.command("backup")
@click.argument("name")
@click.option(
    "--out", "out", required=True, type=click.Path(dir_okay=False), help="Where to write the backup."
)
@profile_options
@json_option
@reports_errors
def partition_backup(
    name: str, out: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool
) -> None:
    """CO session: back up every object of partition NAME (CU session: its public objects) into a file
    encrypted for this cluster; it restores only into a partition of the same cloning domain."""
    client, held = container_session(profile, endpoints, name)
    with client:
        data = held.backup()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    emit(
        as_json,
        {"partition": name, "file": out, "bytes": len(data)},
        lambda: click.echo(f"backup of partition {name} written to {out} ({len(data)} bytes)"),
    )


@partition.command("restore")
@click.argument("name")
@click.option(
    "--in", "source", required=True, type=click.Path(exists=True, dir_okay=False), help="A backup file."
)
@profile_options
@json_option
@reports_errors
def partition_restore(
    name: str, source: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool
) -> None:
    """CO session (CU: a backup of public objects): restore a backup into partition NAME: every object,
    or none. The partition must be in the backup's cloning domain."""
    client, held = container_session(profile, endpoints, name)
    with client:
        keys = held.restore(Path(source).read_bytes())
    emit(
        as_json,
        {"partition": name, "restored": [{"id": k.id, "label": k.label} for k in keys]},
        lambda: click.echo(f"restored {len(keys)} object(s) into {name}: {', '.join(k.label for k in keys)}"),
    )


@click.group("client")
def client_group() -> None:
    """NTLS clients: register certificates, assign partitions."""


@client_group.command("register")
@click.argument("name")
@click.option(
    "--cert",
    "cert_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The client's PEM certificate.",
)
@profile_options
@json_option
@reports_errors
def client_register(
    name: str, cert_path: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool
) -> None:
    """admin: register a client certificate (takes effect on every member, no restart)."""
    client, s = appliance_session(profile, endpoints)
    with client:
        fp = s.register_client(name, Path(cert_path).read_text())
    emit(
        as_json,
        {"name": name, "fingerprint": fp},
        lambda: click.echo(f"client {name} registered (sha256 {fp})"),
    )


@client_group.command("assign")
@click.argument("name")
@click.argument("partition_name")
@profile_options
@reports_errors
def client_assign(name: str, partition_name: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """admin: assign a partition to a client."""
    client, s = appliance_session(profile, endpoints)
    with client:
        s.assign_client(name, partition_name)
    click.echo(f"partition {partition_name} assigned to {name}")


@client_group.command("revoke")
@click.argument("name")
@click.argument("partition_name", required=False, default="")
@profile_options
@reports_errors
def client_revoke(name: str, partition_name: str, profile: str | None, endpoints: tuple[str, ...]) -> None:
    """admin: revoke a partition from a client, or without PARTITION the client's registration."""
    client, s = appliance_session(profile, endpoints)
    with client:
        s.revoke_client(name, partition_name)
    click.echo(
        f"partition {partition_name} revoked from {name}" if partition_name else f"client {name} unregistered"
    )


@client_group.command("list")
@profile_options
@json_option
@reports_errors
def client_list(profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """Registered clients and their partitions."""
    client, s = appliance_session(profile, endpoints)
    with client:
        clients = s.list_clients()

    def human() -> None:
        for cl in clients:
            click.echo(f"{cl.name:<20} {cl.fingerprint[:16]}...  {', '.join(cl.partitions) or '-'}")

    emit(as_json, [dataclasses.asdict(cl) for cl in clients], human)


@client_group.command("show")
@click.argument("name")
@profile_options
@json_option
@reports_errors
def client_show(name: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """One registered client."""
    client, s = appliance_session(profile, endpoints)
    with client:
        cl = s.show_client(name)
    emit(
        as_json,
        dataclasses.asdict(cl),
        lambda: click.echo(
            f"{cl.name} sha256 {cl.fingerprint} partitions: {', '.join(cl.partitions) or '-'}"
        ),
    )
