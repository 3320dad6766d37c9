"""`hsmnode cluster ...`: the cluster as a whole."""

from __future__ import annotations

import click

from hsmnode.cli._common import (
    appliance_session,
    appliance_token,
    connect,
    emit,
    json_option,
    password_option,
    profile_options,
    reports_errors,
)
from hsmnode.cli.backup import backup, restore
from hsmnode.client import default_profile_path, load_profile
from hsmnode.client import remove_member as sdk_remove_member

# a membership change waits for Raft to commit it (and the leaving member to see it): give it time
MEMBERSHIP_TIMEOUT = 30.0


@click.group()
def cluster() -> None:
    """Cluster membership and Raft state, backup and restore."""


cluster.add_command(backup)
cluster.add_command(restore)


@cluster.command()
@profile_options
@json_option
@reports_errors
def status(profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """Cluster id, leader, term, and each member's role and applied index."""
    with connect(profile, endpoints) as client:
        st = client.cluster_status()

    def human() -> None:
        click.echo(f"cluster {st.cluster_id}   leader {st.leader or '(none)'}   term {st.term}")
        click.echo(f"{'MEMBER':<10} {'ADDRESS':<22} {'ROLE':<12} {'APPLIED':>8} {'LAG':>5}")
        for m in st.members:
            click.echo(f"{m.id:<10} {m.address:<22} {m.role:<12} {m.applied_index:>8} {m.lag:>5}")

    emit(as_json, st.to_json(), human)


@cluster.command("add-member")
@click.argument("member_id")
@click.option("--raft", "raft", required=True, metavar="HOST:PORT", help="The new member's Raft address.")
@click.option(
    "--address", "address", required=True, metavar="HOST:PORT", help="The new member's gRPC address."
)
@profile_options
@json_option
@reports_errors
def add_member(
    member_id: str, raft: str, address: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool
) -> None:
    """admin: add a member. Start it first with every current member as a [[peers]] entry and the
    cluster's cluster_id, CA, Raft secret and SMK; then run this."""
    client, admin = appliance_session(profile, endpoints, MEMBERSHIP_TIMEOUT)
    with client:
        members = admin.add_member(member_id, raft_address=raft, address=address)
    emit(
        as_json,
        {"members": members},
        lambda: click.echo(f"member {member_id} added; members: {', '.join(members)}"),
    )


@cluster.command("remove-member")
@click.argument("member_id")
@profile_options
@json_option
@reports_errors
def remove_member(member_id: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """admin: remove a member, live or dead, through any member (a leader hands leadership over
    first); also completes a removal that a leader change left half done."""
    _remove(member_id, profile, endpoints, as_json)


@cluster.command("remove")
@click.option("--member", "member_id", required=True, metavar="ID", help="The member to remove.")
@profile_options
@json_option
@reports_errors
def remove(member_id: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """admin: remove a member, a dead one too (the same as `remove-member ID`)."""
    _remove(member_id, profile, endpoints, as_json)


def _remove(member_id: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """Through the SDK's remove_member, as `leave`: any member, through any of the profile's members."""
    loaded = load_profile(profile or default_profile_path())
    members = sdk_remove_member(
        list(endpoints) or list(loaded.endpoints),
        loaded.tls,
        member_id,
        appliance_token(profile),
        MEMBERSHIP_TIMEOUT,
        cluster_id="" if endpoints else loaded.cluster_id,
    )
    emit(
        as_json,
        {"members": members},
        lambda: click.echo(f"member {member_id} removed; members: {', '.join(members)}"),
    )


@cluster.command("join")
@click.option("--node", "node", required=True, metavar="HOST:PORT", help="The joining node's gRPC endpoint.")
@click.option(
    "--cluster",
    "cluster_endpoint",
    required=True,
    metavar="HOST:PORT",
    help="A member of the cluster to join.",
)
@password_option(
    "--node-password",
    what="The joining node's admin password (a standalone node; a removed member needs none)",
    required=False,
)
@password_option("--cluster-password", what="The cluster's admin password")
@click.option(
    "--admin", "admin_user", default="admin", show_default=True, help="The admin user on both sides."
)
@click.option(
    "--force",
    is_flag=True,
    help="Join even though the node's keys will be discarded (they stay in its archive).",
)
@click.option("--dry-run", is_flag=True, help="Print what the join would overwrite; change nothing.")
@click.option("--profile", envvar="HSMNODE_PROFILE", type=click.Path(dir_okay=False), default=None)
@json_option
@reports_errors
def join_command(
    node, cluster_endpoint, node_password, cluster_password, admin_user, force, dry_run, profile, as_json
) -> None:  # type: ignore[no-untyped-def]
    """Join NODE to the cluster: the cluster overwrites its users, roles, partitions, keyrings and keys.

    The node's earlier data is archived in its data dir, and the report of what was
    overwritten is printed and written to the cluster's audit log. The node's
    certificate must come from the cluster's CA (the profile's CA and admin
    certificate are used for both sides). A member removed from the cluster joins it
    again the same way, without --node-password.
    """
    from hsmnode.ops.joining import join

    loaded = load_profile(profile or default_profile_path())
    report = join(
        node,
        cluster_endpoint,
        loaded.tls,
        node_admin=(admin_user, node_password) if node_password else None,
        cluster_admin=(admin_user, cluster_password),
        force=force,
        dry_run=dry_run,
    )

    def human() -> None:
        click.echo(("would overwrite" if dry_run else "overwrote") + ":")
        click.echo(f"  users:      {', '.join(report.users) or '-'}")
        click.echo(f"  roles:      {', '.join(report.roles) or '-'}")
        if report.rejoin:
            click.echo(f"  nothing of its own: {report.node} was a member of {report.cluster_id} (rejoin)")
        else:
            parts = ", ".join(f"{n} ({k} key(s))" for n, k in report.partition_keys.items())
            rings = ", ".join(f"{n} ({k} key(s))" for n, k in report.keyrings.items())
            click.echo(f"  partitions: {parts or '-'}")
            click.echo(f"  keyrings:   {rings or '-'}")
            click.echo(f"  keys:       {report.keys}")
        if report.joined:
            click.echo(
                f"{report.node} joined cluster {report.cluster_id}; its earlier data is in {report.archive}"
            )

    emit(as_json, report.to_json(), human)


@cluster.command("leave")
@click.argument("member_id")
@password_option(what="The admin password")
@click.option("--admin", "admin_user", default="admin", show_default=True)
@click.option("--profile", envvar="HSMNODE_PROFILE", type=click.Path(dir_okay=False), default=None)
@json_option
@reports_errors
def leave(member_id: str, password: str, admin_user: str, profile: str | None, as_json: bool) -> None:
    """MEMBER_ID leaves cleanly: a leader hands leadership over first, then the others remove it.
    Stop its process afterwards; restarted, it serves no clients."""
    loaded = load_profile(profile or default_profile_path())
    remaining_members = sdk_remove_member(
        list(loaded.endpoints), loaded.tls, member_id, (admin_user, password), MEMBERSHIP_TIMEOUT
    )
    emit(
        as_json,
        {"left": member_id, "members": remaining_members},
        lambda: click.echo(f"member {member_id} left; members: {', '.join(remaining_members)}"),
    )
