"""`hsmnode auth ...`: M-of-N partition authorization, in a cached CO session (--on NAME).

Each change asks a member for a challenge, signs it here with every --card file, and sends the
signatures with the partition password.
"""

from __future__ import annotations

import click

from hsmnode.cli._cache import load_sessions, save_sessions
from hsmnode.cli._command import ContainerCall, container_command, on_option
from hsmnode.cli._options import param, password_option
from hsmnode.cli.card import card_set, cards_option, set_option, signatures

ON_HELP = "The partition of a cached CO session."


@click.group()
def auth() -> None:
    """M-of-N partition authorization (in a CO session: --on NAME)."""


@container_command(auth, "show", on=on_option(ON_HELP))
def auth_show(call: ContainerCall) -> None:
    """The partition's authorization state, card set and permissions (SESSION_AUTHORIZED never shows as state)."""
    call.emit_record(call.session.auth_show())


def _change(
    call: ContainerCall,
    target: str,
    action: str,
    cards: tuple[str, ...],
    password: str,
    new_set: tuple[str, int, list[tuple[str, bytes]]] | None = None,
) -> str:
    """One signed change to `target`; a session authorization keeps the session's new token."""
    s = call.session
    challenge = s.auth_challenge(action)
    state = s.auth_change(target, challenge, signatures(cards, challenge.data), password, card_set=new_set)
    if target == "SESSION_AUTHORIZED":
        sessions = load_sessions(call.profile)
        sessions.setdefault("partitions", {}).setdefault(call.name, {})["token"] = s.token
        save_sessions(call.profile, sessions)
    return state


@container_command(auth, "associate", on=on_option(ON_HELP), json=False)
@param(set_option())
@param(cards_option())
@password_option(what="Partition password", env="HSMNODE_PARTITION_PASSWORD")
def auth_associate(call: ContainerCall, set_file: str, cards: tuple[str, ...], password: str) -> None:
    """INITIAL -> ASSOCIATED: bind a card set (M of its cards sign)."""
    chosen = card_set(set_file)
    state = _change(call, "ASSOCIATED", "associate", cards, password, chosen)
    set_id, threshold, members = chosen
    click.echo(f"partition {call.name}: {state} (set {set_id}, {threshold} of {len(members)})")


# (command, target state, challenge action, help): the changes that take no card set
CHANGES = [
    (
        "authorize",
        "AUTHORIZED",
        "authorize",
        "ASSOCIATED -> AUTHORIZED online (needs partition policy online_authorization).",
    ),
    ("deauthorize", "ASSOCIATED", "deauthorize", "AUTHORIZED -> ASSOCIATED."),
    ("reset", "INITIAL", "reset", "Back to INITIAL: unbinds the card set and its permissions."),
    (
        "session-authorize",
        "SESSION_AUTHORIZED",
        "session-authorize",
        "SESSION_AUTHORIZED for the cached session only.",
    ),
]


def _simple(name: str, target: str, action: str, doc: str) -> click.Command:
    @container_command(auth, name, on=on_option(ON_HELP), json=False)
    @param(cards_option())
    @password_option(what="Partition password", env="HSMNODE_PARTITION_PASSWORD")
    def command(call: ContainerCall, cards: tuple[str, ...], password: str) -> None:
        state = _change(call, target, action, cards, password)
        if target == "SESSION_AUTHORIZED":
            shown = f"{target} (this session only; the partition shows {state})"
        else:
            shown = state
        click.echo(f"partition {call.name}: {shown}")

    command.help = doc
    return command


for _name, _target, _action, _doc in CHANGES:
    _simple(_name, _target, _action, _doc)


@container_command(auth, "permissions", on=on_option(ON_HELP))
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    type=click.Choice(["key_export", "key_destroy", "key_block", "partition_remove"]),
    help="Grant (repeat); the others are cleared. Key Read is implicit.",
)
@param(cards_option())
@password_option(what="Partition password", env="HSMNODE_PARTITION_PASSWORD")
def auth_permissions(
    call: ContainerCall, permissions: tuple[str, ...], cards: tuple[str, ...], password: str
) -> None:
    """Set the partition's permissions (in ASSOCIATED or AUTHORIZED)."""
    s = call.session
    challenge = s.auth_challenge("permissions")
    granted = s.auth_set_permissions(
        list(permissions), challenge, signatures(cards, challenge.data), password
    )
    call.emit(
        {"permissions": granted},
        lambda: click.echo(f"partition {call.name}: permissions {', '.join(granted) or 'none'}"),
    )
