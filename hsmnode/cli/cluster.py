"""`hsmnode cluster ...`: the cluster as a whole."""

from __future__ import annotations

import click

from hsmnode.cli._common import connect, emit, json_option, profile_options, reports_errors


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
