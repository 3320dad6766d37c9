"""`hsmnode audit ...`: the replicated, hash-chained audit log."""

from __future__ import annotations

import dataclasses
import datetime

import click

from hsmnode.cli._common import appliance_session, emit, json_option, profile_options, reports_errors


@click.group()
def audit() -> None:
    """Read, verify and annotate the audit log."""


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


@audit.command("list")
@click.option(
    "--after", "after_seq", default=0, show_default=True, help="Only records after this sequence number."
)
@click.option("--limit", default=100, show_default=True, help="At most this many records (max 1000).")
@profile_options
@json_option
@reports_errors
def list_(after_seq: int, limit: int, profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """Audit records in order (the Auditor: hsmnode login audit; hsmnode hsm login --auditor)."""
    client, auditor = appliance_session(profile, endpoints)
    with client:
        records, total = auditor.audit_list(after_seq=after_seq, limit=limit)

    def human() -> None:
        for r in records:
            when = datetime.datetime.fromtimestamp(r.timestamp_ms / 1000, datetime.UTC).strftime(
                "%Y-%m-%d %H:%M:%S"
            )
            click.echo(f"{r.seq:>6} {when} {r.actor:<20} {r.command:<16} {r.outcome:<20} {r.detail}")
        click.echo(f"({len(records)} of {total} records)")

    emit(as_json, {"total": total, "records": [dataclasses.asdict(r) for r in records]}, human)


@audit.command()
@profile_options
@json_option
@reports_errors
def verify(profile: str | None, endpoints: tuple[str, ...], as_json: bool) -> None:
    """Recompute the hash chain on a member; exit 1 if it is broken."""
    client, auditor = appliance_session(profile, endpoints)
    with client:
        check = auditor.audit_verify()
    emit(
        as_json,
        dataclasses.asdict(check),
        lambda: click.echo(
            f"audit chain intact: {check.length} records, head {check.head_hash[:16]}..."
            if check.ok
            else f"audit chain BROKEN: {check.problem}"
        ),
    )
    if not check.ok:
        raise SystemExit(1)
