"""`hsmnode card ...` (emulated smart cards) and `hsmnode auth ...` (M-of-N partition authorization).

Auth commands act in a cached CO session on a partition created to require
authorization (--on NAME). Each change asks a member for a challenge, signs it here
with every --card file, and sends the signatures with the partition password.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import click

from hsmnode.cli._common import (
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
from hsmnode.client import ConsoleClient
from hsmnode.crypto.cards import CardError, load_card, load_set, new_set


@click.group()
def card() -> None:
    """Emulated smart cards: Ed25519 key pairs in card files."""


@card.command("new-set")
@click.option("--count", "count", required=True, type=int, help="N: cards in the set.")
@click.option("--threshold", required=True, type=int, help="M: cards needed for each change.")
@click.option("--label-prefix", required=True, help="Card labels are PREFIX-1 ... PREFIX-N.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for the card files and set.json.",
)
@json_option
def card_new_set(count: int, threshold: int, label_prefix: str, out: str, as_json: bool) -> None:
    """Write N card files (mode 0600) and the set description set.json."""
    try:
        made = new_set(count, threshold, label_prefix, Path(out))
    except (CardError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    data = {
        "set_id": made.set_id,
        "threshold": made.threshold,
        "cards": [label for label, _ in made.cards],
        "dir": out,
    }
    emit(
        as_json,
        data,
        lambda: click.echo(
            f"card set {made.set_id}: {threshold} of {count} ({', '.join(data['cards'])}) in {out}"
        ),
    )


@card.command("show")
@click.argument("path", type=click.Path(dir_okay=False))
@json_option
def card_show(path: str, as_json: bool) -> None:
    """Describe a card file or a set.json (never prints a private key)."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text())
        if isinstance(raw, dict) and "cards" in raw:
            s = load_set(p)
            data = {
                "set_id": s.set_id,
                "threshold": s.threshold,
                "cards": [
                    {"label": label, "public_key": base64.b64encode(k).decode()} for label, k in s.cards
                ],
            }
        else:
            c = load_card(p)
            data = {
                "set_id": c.set_id,
                "label": c.label,
                "threshold": c.threshold,
                "public_key": base64.b64encode(c.public_key).decode(),
            }
    except (CardError, OSError, ValueError) as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    emit(as_json, data, lambda: [click.echo(f"{k}: {v}") for k, v in data.items()])


@click.group()
def auth() -> None:
    """M-of-N partition authorization (in a CO session: --on NAME)."""


def _on(fn):  # type: ignore[no-untyped-def]
    return click.option(
        "--on", "on", required=True, metavar="NAME", help="The partition of a cached CO session."
    )(fn)


def _cards(fn):  # type: ignore[no-untyped-def]
    return click.option(
        "--card",
        "cards",
        multiple=True,
        required=True,
        type=click.Path(dir_okay=False),
        help="A card file (repeat M times).",
    )(fn)


def _signatures(paths: tuple[str, ...], challenge: bytes) -> list[tuple[str, bytes]]:
    try:
        loaded = [load_card(Path(p)) for p in paths]
    except CardError as exc:
        raise click.ClickException(str(exc)) from None
    return [(c.label, c.sign(challenge)) for c in loaded]


@auth.command("show")
@_on
@profile_options
@json_option
@reports_errors
def auth_show(on, profile, endpoints, as_json) -> None:  # type: ignore[no-untyped-def]
    """The partition's authorization state, card set and permissions (SESSION_AUTHORIZED never shows as state)."""
    client, s = container_session(profile, endpoints, on)
    with client:
        info = s.auth_show()
    emit_record(as_json, info)


def _change(
    target: str,
    action: str,
    on: str,
    cards: tuple[str, ...],
    password: str,
    profile,
    endpoints,
    card_set=None,
) -> str:  # type: ignore[no-untyped-def]
    client, s = container_session(profile, endpoints, on)
    with client:
        challenge = s.auth_challenge(action)
        state = s.auth_change(
            target, challenge, _signatures(cards, challenge.data), password, card_set=card_set
        )
    if target == "SESSION_AUTHORIZED":
        sessions = load_sessions(profile)
        sessions.setdefault("partitions", {}).setdefault(on, {})["token"] = s.token
        save_sessions(profile, sessions)
    return state


@auth.command("associate")
@click.option(
    "--set",
    "set_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The set.json of `card new-set`.",
)
@_cards
@password_option(what="Partition password", env="HSMNODE_PARTITION_PASSWORD")
@_on
@profile_options
@reports_errors
def auth_associate(set_file, cards, password, on, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """INITIAL -> ASSOCIATED: bind a card set (M of its cards sign)."""
    try:
        s = load_set(Path(set_file))
    except CardError as exc:
        raise click.ClickException(str(exc)) from None
    state = _change(
        "ASSOCIATED", "associate", on, cards, password, profile, endpoints, (s.set_id, s.threshold, s.cards)
    )
    click.echo(f"partition {on}: {state} (set {s.set_id}, {s.threshold} of {len(s.cards)})")


def _simple(name: str, target: str, action: str, doc: str):  # type: ignore[no-untyped-def]
    @auth.command(name, help=doc)
    @_cards
    @password_option(what="Partition password", env="HSMNODE_PARTITION_PASSWORD")
    @_on
    @profile_options
    @reports_errors
    def command(cards, password, on, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
        state = _change(target, action, on, cards, password, profile, endpoints)
        suffix = (
            " (this session only; the partition shows " + state + ")"
            if target == "SESSION_AUTHORIZED"
            else ""
        )
        click.echo(f"partition {on}: {target if target == 'SESSION_AUTHORIZED' else state}{suffix}")

    return command


_simple(
    "authorize",
    "AUTHORIZED",
    "authorize",
    "ASSOCIATED -> AUTHORIZED online (needs partition policy online_authorization).",
)
_simple("deauthorize", "ASSOCIATED", "deauthorize", "AUTHORIZED -> ASSOCIATED.")
_simple("reset", "INITIAL", "reset", "Back to INITIAL: unbinds the card set and its permissions.")
_simple(
    "session-authorize",
    "SESSION_AUTHORIZED",
    "session-authorize",
    "SESSION_AUTHORIZED for the cached session only.",
)


@auth.command("permissions")
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    type=click.Choice(["key_export", "key_destroy", "key_block", "partition_remove"]),
    help="Grant (repeat); the others are cleared. Key Read is implicit.",
)
@_cards
@password_option(what="Partition password", env="HSMNODE_PARTITION_PASSWORD")
@_on
@profile_options
@json_option
@reports_errors
def auth_permissions(permissions, cards, password, on, profile, endpoints, as_json) -> None:  # type: ignore[no-untyped-def]
    """Set the partition's permissions (in ASSOCIATED or AUTHORIZED)."""
    client, s = container_session(profile, endpoints, on)
    with client:
        challenge = s.auth_challenge("permissions")
        granted = s.auth_set_permissions(
            list(permissions), challenge, _signatures(cards, challenge.data), password
        )
    emit(
        as_json,
        {"permissions": granted},
        lambda: click.echo(f"partition {on}: permissions {', '.join(granted) or 'none'}"),
    )


@click.group()
def grant() -> None:
    """Partition permissions between users (DOMAIN.md §4): the owner's CO session grants (--on OWNER)."""


GRANT_CHOICE = click.Choice(["create", "remove", "read", "update_log"])


@grant.command("add")
@click.argument("grantee")
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    required=True,
    type=GRANT_CHOICE,
    help="Repeat; replaces what GRANTEE held.",
)
@_on
@profile_options
@reports_errors
def grant_add(grantee, permissions, on, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """Grant GRANTEE's users permissions on all objects of partition --on (keys named partition:OWNER/KEY)."""
    client, s = container_session(profile, endpoints, on)
    with client:
        granted = s.grant(grantee, list(permissions))
    click.echo(f"partition {on} grants {grantee}: {', '.join(granted)}")


@grant.command("remove")
@click.argument("grantee")
@_on
@profile_options
@reports_errors
def grant_remove(grantee, on, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """Revoke everything partition --on granted GRANTEE (at once, on every member)."""
    client, s = container_session(profile, endpoints, on)
    with client:
        s.revoke_grant(grantee)
    click.echo(f"partition {on} revoked its grants to {grantee}")


@grant.command("list")
@_on
@profile_options
@json_option
@reports_errors
def grant_list(on, profile, endpoints, as_json) -> None:  # type: ignore[no-untyped-def]
    """Grants partition --on gave and received."""
    client, s = container_session(profile, endpoints, on)
    with client:
        found = s.list_grants()
    data = [{"owner": o, "grantee": g, "permissions": list(p)} for o, g, p in found]
    emit(as_json, data, lambda: [click.echo(f"{o} -> {g}: {', '.join(p)}") for o, g, p in found])


@click.group()
def console() -> None:
    """The member's local console (DOMAIN.md §5): authorization changes with the cards on the member's
    own host, as its user, through its unix socket; AUTHORIZED needs no online_authorization here."""


def _socket(fn):  # type: ignore[no-untyped-def]
    return click.option(
        "--socket",
        "socket_path",
        required=True,
        envvar="HSMNODE_CONSOLE_SOCKET",
        type=click.Path(dir_okay=False),
        help="The member's console socket: console.sock in its data dir ($HSMNODE_CONSOLE_SOCKET).",
    )(fn)


@console.command("show")
@click.argument("partition")
@_socket
@json_option
@reports_errors
def console_show(partition: str, socket_path: str, as_json: bool) -> None:
    """The partition's authorization state, as this member holds it."""
    with ConsoleClient(socket_path) as local:
        info = local.show(partition)
    emit_record(as_json, info)


def _console_change(name: str, target: str, action: str, doc: str, with_set: bool = False):  # type: ignore[no-untyped-def]
    def command(partition, cards, password, socket_path, set_file=None) -> None:  # type: ignore[no-untyped-def]
        card_set = None
        if with_set:
            try:
                s = load_set(Path(set_file))
            except CardError as exc:
                raise click.ClickException(str(exc)) from None
            card_set = (s.set_id, s.threshold, s.cards)
        with ConsoleClient(socket_path) as local:
            challenge = local.challenge(partition, action)
            state = local.change(
                partition, target, challenge, _signatures(cards, challenge.data), password, card_set=card_set
            )
        click.echo(f"partition {partition}: {state} (at the console of {socket_path})")

    command.__doc__ = doc
    decorated = reports_errors(command)
    decorated = _socket(decorated)
    decorated = password_option(what="Partition password", env="HSMNODE_PARTITION_PASSWORD")(decorated)
    decorated = _cards(decorated)
    if with_set:
        decorated = click.option(
            "--set",
            "set_file",
            required=True,
            type=click.Path(dir_okay=False),
            help="The set.json of `card new-set`.",
        )(decorated)
    decorated = click.argument("partition")(decorated)
    return console.command(name)(decorated)


_console_change(
    "associate", "ASSOCIATED", "associate", "INITIAL -> ASSOCIATED: bind a card set.", with_set=True
)
_console_change(
    "authorize", "AUTHORIZED", "authorize", "ASSOCIATED -> AUTHORIZED, with or without online_authorization."
)
_console_change("deauthorize", "ASSOCIATED", "deauthorize", "AUTHORIZED -> ASSOCIATED.")
_console_change("reset", "INITIAL", "reset", "Back to INITIAL: unbinds the card set and its permissions.")
