"""`hsmnode audit ...`: the cluster chain and every member's key-usage chain (DOMAIN.md §6)."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from hsmnode.cli._common import (
    appliance_session,
    appliance_token,
    emit,
    json_option,
    load_profile_for,
    profile_options,
    reports_errors,
)
from hsmnode.client import HsmClient, HsmError, HsmRoleSession

CATEGORIES = ("key_management", "key_usage", "access")
LEVELS = ("none", "failure", "success", "all")


@click.group()
def audit() -> None:
    """Read, verify, configure and annotate the audit log: the replicated cluster chain, and the
    key-usage chain each member keeps of the sign/verify/encrypt/decrypt it served."""


@audit.command()
@click.argument("text")
@click.option("--request-id", default=None, help="Idempotency key (default: a fresh one).")
@profile_options
@json_option
@reports_errors
def note(
    text: str, request_id: str | None, profile: str | None, endpoints: tuple[str, ...], as_json: bool
) -> None:
    """Append an operator's note (e.g. "drill starts") to the audit log."""
    client, admin = appliance_session(profile, endpoints)
    with client:
        seq, digest = admin.audit_note(text, request_id=request_id)
    emit(as_json, {"seq": seq, "hash": digest}, lambda: click.echo(f"audit record {seq} ({digest[:16]}...)"))


@contextmanager
def _members(
    profile: str | None, endpoints: tuple[str, ...], only: tuple[str, ...]
) -> Iterator[tuple[HsmRoleSession, list[tuple[str, HsmRoleSession | None]]]]:
    """The Auditor's session on the cluster, and one per member (None for a member that cannot be reached)."""
    client, auditor = appliance_session(profile, endpoints)
    token = appliance_token(profile)
    tls = load_profile_for(profile).tls
    opened: list[HsmClient] = [client]
    try:
        members = [(m.id, m.address) for m in client.cluster_status().members]
        unknown = sorted(set(only) - {m for m, _ in members})
        if unknown:
            raise click.UsageError(
                f"no member {', '.join(unknown)} (members: {', '.join(m for m, _ in members)})"
            )
        sessions: list[tuple[str, HsmRoleSession | None]] = []
        for member_id, address in members:
            if only and member_id not in only:
                continue
            one = HsmClient([address], tls, timeout=client.timeout, discover=False)
            opened.append(one)
            session = HsmRoleSession(one, token, "", "", 0)
            session.keep = True
            sessions.append((member_id, session))
        yield auditor, sessions
    finally:
        for c in opened:
            c.close()


@audit.command("list")
@click.option(
    "--after",
    "after_seq",
    default=0,
    show_default=True,
    help="Only records after this sequence number (per chain).",
)
@click.option(
    "--limit", default=100, show_default=True, help="At most this many records per chain (max 1000)."
)
@click.option(
    "--chain",
    type=click.Choice(["all", "cluster", "member"]),
    default="all",
    show_default=True,
    help="cluster: the replicated chain; member: each member's key-usage chain; all: both.",
)
@click.option("--member", "only", multiple=True, metavar="ID", help="Key-usage chains of these members only.")
@profile_options
@json_option
@reports_errors
def list_(
    after_seq: int,
    limit: int,
    chain: str,
    only: tuple[str, ...],
    profile: str | None,
    endpoints: tuple[str, ...],
    as_json: bool,
) -> None:
    """Audit records in order, each naming its chain and (key usage) the member that served it
    (the Auditor: hsmnode login audit; hsmnode hsm login --auditor)."""
    records: list[Any] = []
    total = 0
    totals: dict[str, int] = {}
    unreachable: list[str] = []
    with _members(profile, endpoints, only if chain != "cluster" else ()) as (auditor, members):
        if chain in ("all", "cluster"):
            found, total = auditor.audit_list(after_seq=after_seq, limit=limit)
            records += found
        if chain in ("all", "member"):
            for member_id, session in members:
                try:
                    found, totals[member_id] = session.audit_list(
                        after_seq=after_seq, limit=limit, chain="member"
                    )
                except HsmError:
                    unreachable.append(member_id)
                    continue
                records += found

    def human() -> None:
        for r in records:
            when = datetime.datetime.fromtimestamp(r.timestamp_ms / 1000, datetime.UTC).strftime(
                "%Y-%m-%d %H:%M:%S"
            )
            where = "cluster" if r.chain == "cluster" else r.member
            click.echo(
                f"{where:<8} {r.seq:>6} {when} {r.actor:<20} {r.command:<16} {r.outcome:<20} {r.detail}"
            )
        shown = ", ".join(f"{m} {n}" for m, n in totals.items())
        click.echo(
            f"({len(records)} records; cluster chain {total}"
            + (f"; key-usage chains: {shown}" if shown else "")
            + ")"
        )
        for m in unreachable:
            click.echo(f"member {m} did not answer: its key-usage chain is not shown", err=True)

    emit(
        as_json,
        {
            "total": total,
            "member_totals": totals,
            "unreachable": unreachable,
            "records": [dataclasses.asdict(r) for r in records],
        },
        human,
    )


@audit.command()
@click.option("--member", "only", multiple=True, metavar="ID", help="Check these members only.")
@profile_options
@json_option
@reports_errors
def verify(only: tuple[str, ...], profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """Recompute the cluster chain and each member's key-usage chain on every member; exit 1 if a
    chain is broken or a member cannot be checked."""
    checks: list[dict[str, Any]] = []
    with _members(profile, endpoints, only) as (_auditor, members):
        for member_id, session in members:
            try:
                check = session.audit_verify()
            except HsmError as exc:
                checks.append({"member": member_id, "reachable": False, "problem": exc.message})
                continue
            checks.append({"reachable": True, **dataclasses.asdict(check), "member": member_id})
    ok = bool(checks) and all(c["reachable"] and c["ok"] and c["member_ok"] for c in checks)
    first = next((c for c in checks if c["reachable"]), {})

    def human() -> None:
        for c in checks:
            if not c["reachable"]:
                click.echo(f"{c['member']}: not checked ({c['problem']})")
                continue
            cluster = (
                f"cluster chain intact ({c['length']} records, head {c['head_hash'][:16]}...)"
                if c["ok"]
                else f"cluster chain BROKEN: {c['problem']}"
            )
            usage = (
                f"key-usage chain intact ({c['member_length']} records)"
                if c["member_ok"]
                else f"key-usage chain BROKEN: {c['member_problem']}"
            )
            click.echo(f"{c['member']}: {cluster}; {usage}")

    emit(
        as_json,
        {
            "ok": ok,
            "length": first.get("length", 0),
            "head_hash": first.get("head_hash", ""),
            "problem": ""
            if ok
            else next(
                (
                    c.get("problem") or c.get("member_problem")
                    for c in checks
                    if c.get("problem") or c.get("member_problem")
                ),
                "no member checked",
            ),
            "members": checks,
        },
        human,
    )
    if not ok:
        raise SystemExit(1)


@audit.group()
def config() -> None:
    """What each audit category records (the Auditor sets it; replicated)."""


@config.command("show")
@profile_options
@json_option
@reports_errors
def config_show(profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """key_management, key_usage, access: none, failure, success or all."""
    client, auditor = appliance_session(profile, endpoints)
    with client:
        levels = auditor.audit_config()
    emit(as_json, levels, lambda: [click.echo(f"{k:<16} {v}") for k, v in levels.items()])


@config.command("set")
@click.argument("category", type=click.Choice(CATEGORIES))
@click.argument("level", type=click.Choice(LEVELS))
@profile_options
@json_option
@reports_errors
def config_set(
    category: str, level: str, profile: str | None, endpoints: tuple[str, ...], as_json: bool
) -> None:
    """Record none, the failures, the successes or all events of CATEGORY (the Auditor)."""
    client, auditor = appliance_session(profile, endpoints)
    with client:
        levels = auditor.set_audit_config(category, level)
    emit(as_json, levels, lambda: click.echo(f"audit category {category} records {level}"))
