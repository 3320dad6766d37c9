"""Emulated smart cards for M-of-N authorization (DOMAIN.md §5): an Ed25519 key pair and a label.

    card file (mode 0600): {"v": 1, "set_id", "label", "threshold", "private_key", "public_key"}
    set file:              {"v": 1, "set_id", "threshold", "cards": [{"label", "public_key"}]}

Keys are base64 of the raw 32 bytes. The card files are the only place the private
halves live; presenting a card means signing a challenge that a member issued.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

MAX_CARDS = 16


class CardError(ValueError):
    pass


@dataclass(frozen=True)
class CardFile:
    set_id: str
    label: str
    threshold: int
    private_key: bytes
    public_key: bytes

    def sign(self, challenge: bytes) -> bytes:
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.private_key).sign(challenge)


@dataclass(frozen=True)
class CardSetFile:
    set_id: str
    threshold: int
    cards: list[tuple[str, bytes]]


def new_set(count: int, threshold: int, label_prefix: str, out: Path) -> CardSetFile:
    if not 1 <= count <= MAX_CARDS:
        raise CardError(f"a card set has 1-{MAX_CARDS} cards, not {count}")
    if not 1 <= threshold <= count:
        raise CardError(f"the threshold M must be between 1 and N ({count}), got {threshold}")
    if (
        not label_prefix
        or len(label_prefix) > 40
        or not label_prefix.replace("-", "").replace("_", "").isalnum()
    ):
        raise CardError("the label prefix must be 1-40 letters, digits, - or _")
    out.mkdir(parents=True, exist_ok=True)
    set_id = f"set-{secrets.token_hex(8)}"
    cards = []
    for i in range(1, count + 1):
        key = ed25519.Ed25519PrivateKey.generate()
        label = f"{label_prefix}-{i}"
        public = key.public_key().public_bytes_raw()
        body = {
            "v": 1,
            "set_id": set_id,
            "label": label,
            "threshold": threshold,
            "private_key": base64.b64encode(key.private_bytes_raw()).decode(),
            "public_key": base64.b64encode(public).decode(),
        }
        path = out / f"{label}.card"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(body, f, indent=2)
        cards.append((label, public))
    description = {
        "v": 1,
        "set_id": set_id,
        "threshold": threshold,
        "cards": [{"label": label, "public_key": base64.b64encode(key).decode()} for label, key in cards],
    }
    (out / "set.json").write_text(json.dumps(description, indent=2) + "\n")
    return CardSetFile(set_id, threshold, cards)


def _load(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CardError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise CardError(f"{path}: not a card file ({exc})") from None
    if not isinstance(data, dict) or data.get("v") != 1:
        raise CardError(f"{path}: not a version-1 hsmnode card file")
    return data


def _key(path: Path, value: object, what: str) -> bytes:
    try:
        raw = base64.b64decode(str(value), validate=True)
    except ValueError:
        raise CardError(f"{path}: {what} is not base64") from None
    if len(raw) != 32:
        raise CardError(f"{path}: {what} must be 32 bytes, not {len(raw)}")
    return raw


def load_card(path: Path) -> CardFile:
    data = _load(path)
    try:
        card = CardFile(
            str(data["set_id"]),
            str(data["label"]),
            int(str(data["threshold"])),
            _key(path, data["private_key"], "private_key"),
            _key(path, data["public_key"], "public_key"),
        )
    except KeyError as exc:
        raise CardError(f"{path}: missing {exc.args[0]!r}") from None
    derived = ed25519.Ed25519PrivateKey.from_private_bytes(card.private_key).public_key().public_bytes_raw()
    if derived != card.public_key:
        raise CardError(f"{path}: the private and public keys do not belong together")
    return card


def load_set(path: Path) -> CardSetFile:
    data = _load(path)
    try:
        listed: Any = data["cards"]
        cards = [
            (str(c["label"]), _key(path, c["public_key"], f"card {c['label']!r} public_key")) for c in listed
        ]
        return CardSetFile(str(data["set_id"]), int(str(data["threshold"])), cards)
    except (KeyError, TypeError) as exc:
        raise CardError(f"{path}: malformed set description ({exc})") from None
