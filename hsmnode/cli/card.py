"""`hsmnode card ...`: emulated smart cards (Ed25519 key pairs in card files), and the card options
the M-of-N commands (`auth`, `console`) share: --card files sign a member's challenge here."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import click

from hsmnode.cli._options import IN_FILE_NO_DASH, json_option
from hsmnode.cli._output import emit, emit_fields
from hsmnode.crypto.cards import CardError, load_card, load_set, new_set


def cards_option() -> click.Option:
    """--card FILE (repeat M times)."""
    return click.Option(
        ["--card", "cards"],
        multiple=True,
        required=True,
        type=IN_FILE_NO_DASH,
        help="A card file (repeat M times).",
    )


def set_option() -> click.Option:
    """--set FILE: the set.json of `card new-set`."""
    return click.Option(
        ["--set", "set_file"],
        required=True,
        type=IN_FILE_NO_DASH,
        help="The set.json of `card new-set`.",
    )


def signatures(paths: tuple[str, ...], challenge: bytes) -> list[tuple[str, bytes]]:
    """(card label, signature of `challenge`) for each card file; a bad file is a click error."""
    try:
        loaded = [load_card(Path(p)) for p in paths]
    except CardError as exc:
        raise click.ClickException(str(exc)) from None
    return [(c.label, c.sign(challenge)) for c in loaded]


def card_set(path: str) -> tuple[str, int, list[tuple[str, bytes]]]:
    """(set id, threshold M, [(label, public key)]) of a set.json; a bad file is a click error."""
    try:
        s = load_set(Path(path))
    except CardError as exc:
        raise click.ClickException(str(exc)) from None
    return s.set_id, s.threshold, list(s.cards)


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
    labels = [label for label, _ in made.cards]
    data = {"set_id": made.set_id, "threshold": made.threshold, "cards": labels, "dir": out}
    emit(
        as_json,
        data,
        lambda: click.echo(f"card set {made.set_id}: {threshold} of {count} ({', '.join(labels)}) in {out}"),
    )


@card.command("show")
@click.argument("path", type=click.Path(dir_okay=False))
@json_option
def card_show(path: str, as_json: bool) -> None:
    """Describe a card file or a set.json (never prints a private key)."""
    p = Path(path)
    data: dict[str, Any]
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
    emit_fields(as_json, data)
