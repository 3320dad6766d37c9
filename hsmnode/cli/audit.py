"""`hsmnode audit ...`: the cluster chain and every member's key-usage chain (DOMAIN.md §6)."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import grpc

from hsmnode.cli._cache import load_profile_for
from hsmnode.cli._command import ApplianceCall, appliance_command
from hsmnode.cli._output import Column, table
from hsmnode.client import AuditRecord, HsmClient, HsmError, HsmRoleSession

# a member that did not answer in time (listed as not checked); any other error (PERMISSION_DENIED
# without the Auditor role, UNAUTHENTICATED) is the command's error
NOT_REACHED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
CATEGORIES = ("key_management", "key_usage", "access")
LEVELS = ("none", "failure", "success", "all")


def _when(r: AuditRecord) -> str:
    return datetime.datetime.fromtimestamp(r.timestamp_ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


RECORD_COLUMNS = [
    Column("CHAIN", lambda r: "cluster" if r.chain == "cluster" else r.member, 8),
    Column("SEQ", "seq", 6, right=True),
    Column("TIME", _when),
    Column("ACTOR", "actor", 20),
    Column("COMMAND", "command", 16),
    Column("OUTCOME", "outcome", 20),
    Column("DETAIL", "detail"),
]
LEVEL_COLUMNS = [Column("CATEGORY", lambda kv: kv[0], 16), Column("LEVEL", lambda kv: kv[1])]


@click.group()
def audit() -> None:
    """Read, verify, configure and annotate the audit log: the replicated cluster chain, and the
    key-usage chain each member keeps of the sign/verify/encrypt/decrypt it served."""


@appliance_command(audit, "note")
@click.argument("text")
@click.option("--request-id", default=None, help="Idempotency key (default: a fresh one).")
def note(call: ApplianceCall, text: str, request_id: str | None) -> None:
    """Append an operator's note (e.g. "drill starts") to the audit log."""
    seq, digest = call.session.audit_note(text, request_id=request_id)
    call.emit({"seq": seq, "hash": digest}, lambda: click.echo(f"audit record {seq} ({digest[:16]}...)"))


@contextmanager
def _members(
    call: ApplianceCall, only: tuple[str, ...], timeout: float | None = None
) -> Iterator[tuple[HsmRoleSession, list[tuple[str, HsmRoleSession]]]]:
    """The Auditor's session on the cluster, and one per member (a member that cannot be reached
    fails its own calls with Unavailable), each call with `timeout` seconds (default: the command's)."""
    auditor = call.session
    client, token = call.client, call.token
    tls = load_profile_for(call.profile).tls
    opened: list[HsmClient] = []
    try:
        members = [(m.id, m.address) for m in client.cluster_status().members]
        unknown = sorted(set(only) - {m for m, _ in members})
        if unknown:
            raise click.UsageError(
                f"no member {', '.join(unknown)} (members: {', '.join(m for m, _ in members)})"
            )
        sessions: list[tuple[str, HsmRoleSession]] = []
        for member_id, address in members:
            if only and member_id not in only:
                continue
            one = HsmClient([address], tls, timeout=timeout or client.timeout, discover=False)
            opened.append(one)
            session = HsmRoleSession(one, token, "", "", 0)
            session.keep = True
            sessions.append((member_id, session))
        yield auditor, sessions
    finally:
        for c in opened:
            c.close()


@appliance_command(audit, "list")
@click.option(
    "--after",
    "after_seq",
    default=0,
    show_default=True,
    help="Only records after this sequence number (per chain); default: the newest records.",
)
@click.option(
    "--limit",
    default=100,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="At most this many records in all, across the chains shown (the newest, or the first after --after).",
)
@click.option(
    "--chain",
    type=click.Choice(["all", "cluster", "member"]),
    default="all",
    show_default=True,
    help="cluster: the replicated chain; member: each member's key-usage chain; all: both.",
)
@click.option("--member", "only", multiple=True, metavar="ID", help="Key-usage chains of these members only.")
def list_(call: ApplianceCall, after_seq: int, limit: int, chain: str, only: tuple[str, ...]) -> None:
    """Audit records in time order, each naming its chain and (key usage) the member that served it
    (the Auditor: hsmnode login audit; hsmnode hsm login --auditor). --limit counts all chains
    together: the newest LIMIT records (or, with --after, the first LIMIT after it)."""
    records: list[Any] = []
    total: int | None = None  # the cluster chain's length; None when --chain member did not read it
    totals: dict[str, int] = {}
    unreachable: list[str] = []
    with _members(call, only if chain != "cluster" else ()) as (auditor, members):
        if chain in ("all", "cluster"):
            found, total = _page(auditor, "cluster", after_seq, limit)
            records += found
        if chain in ("all", "member"):
            for member_id, session in members:
                try:
                    found, totals[member_id] = _page(session, "member", after_seq, limit)
                except HsmError as exc:
                    if exc.code not in NOT_REACHED:
                        raise
                    unreachable.append(member_id)
                    continue
                records += found
    records.sort(key=lambda r: r.timestamp_ms)
    records = records[:limit] if after_seq else records[-limit:]

    def human() -> None:
        table(records, RECORD_COLUMNS, header=False)
        shown = ", ".join(f"{m} {n}" for m, n in totals.items())
        click.echo(
            f"({len(records)} records"
            + (f"; cluster chain {total}" if total is not None else "")
            + (f"; key-usage chains: {shown}" if shown else "")
            + ")"
        )
        for m in unreachable:
            click.echo(f"member {m} did not answer: its key-usage chain is not shown", err=True)

    call.emit(
        {
            "total": total,
            "member_totals": totals,
            "unreachable": unreachable,
            "records": [dataclasses.asdict(r) for r in records],
        },
        human,
    )


def _page(session: HsmRoleSession, chain: str, after_seq: int, limit: int) -> tuple[list[AuditRecord], int]:
    """Up to `limit` records of one chain after `after_seq`, or (after_seq 0) its newest `limit`;
    and the chain's length."""
    found, total = session.audit_list(after_seq=after_seq, limit=limit, chain=chain)
    if not after_seq and total > limit:
        found, total = session.audit_list(after_seq=total - limit, limit=limit, chain=chain)
    return list(found), total


@appliance_command(audit, "verify")
@click.option("--member", "only", multiple=True, metavar="ID", help="Check these members only.")
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=1.0),
    metavar="SECONDS",
    help="Each member's deadline to recompute its chains (they grow with every record).",
)
def verify(call: ApplianceCall, only: tuple[str, ...], timeout: float) -> None:
    """Recompute the cluster chain and each member's key-usage chain on every member; exit 1 if a
    chain is broken or a member cannot be checked. Needs the Auditor: `hsmnode login audit`, then
    `hsmnode hsm login --auditor` (admin is refused)."""
    checks: list[dict[str, Any]] = []
    with _members(call, only, timeout) as (_auditor, members):
        for member_id, session in members:
            try:
                check = session.audit_verify()
            except HsmError as exc:
                if exc.code not in NOT_REACHED:
                    raise
                hint = (
                    f" (deadline {timeout:g} s: try a longer --timeout)" if exc.code == NOT_REACHED[1] else ""
                )
                checks.append({"member": member_id, "reachable": False, "problem": exc.message + hint})
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

    call.emit(
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


@appliance_command(config, "show")
def config_show(call: ApplianceCall) -> None:
    """key_management, key_usage, access: none, failure, success or all."""
    levels = call.session.audit_config()
    call.emit(levels, lambda: table(levels.items(), LEVEL_COLUMNS, header=False))


@appliance_command(config, "set")
@click.argument("category", type=click.Choice(CATEGORIES))
@click.argument("level", type=click.Choice(LEVELS))
def config_set(call: ApplianceCall, category: str, level: str) -> None:
    """Record none, the failures, the successes or all events of CATEGORY (the Auditor)."""
    levels = call.session.set_audit_config(category, level)
    call.emit(levels, lambda: click.echo(f"audit category {category} records {level}"))
