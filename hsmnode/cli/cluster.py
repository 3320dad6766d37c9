"""`hsmnode cluster ...`: the cluster as a whole."""

from __future__ import annotations

import click

from hsmnode.cli._common import appliance_session, connect, emit, json_option, profile_options, reports_errors


@click.group()
def cluster() -> None:
    """Cluster membership and Raft state."""


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
        click.echo(f"{'MEMBER':<10} {'ADDRESS':<22} {'ROLE':<12} {'APPLIED':>8}")
        for m in st.members:
            click.echo(f"{m.id:<10} {m.address:<22} {m.role:<12} {m.applied_index:>8}")

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
    client, admin = appliance_session(profile, endpoints)
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
    """admin: remove a member (a dead one too). Send it to another member (--endpoint); a leader
    asked to remove itself hands leadership over and tells you to ask another member."""
    client, admin = appliance_session(profile, endpoints)
    with client:
        members = admin.remove_member(member_id)
    emit(
        as_json,
        {"members": members},
        lambda: click.echo(f"member {member_id} removed; members: {', '.join(members)}"),
    )
