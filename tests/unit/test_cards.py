"""Emulated smart-card files: a set is written once, cards load and sign, malformed files are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hsmnode.crypto.cards import CardError, load_card, load_set, new_set
from hsmnode.domain import ed25519


def test_new_set_writes_n_private_card_files_and_a_public_description(tmp_path: Path) -> None:
    made = new_set(3, 2, "ops", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ops-1.card",
        "ops-2.card",
        "ops-3.card",
        "set.json",
    ]
    assert all((tmp_path / f"ops-{i}.card").stat().st_mode & 0o777 == 0o600 for i in (1, 2, 3))
    described = load_set(tmp_path / "set.json")
    assert described == made and "private_key" not in (tmp_path / "set.json").read_text()
    card = load_card(tmp_path / "ops-2.card")
    assert card.set_id == made.set_id and card.threshold == 2
    assert ed25519.verify(card.public_key, b"challenge", card.sign(b"challenge"))


@pytest.mark.parametrize(
    ("count", "threshold", "message"),
    [(0, 1, "1-16 cards"), (3, 4, "between 1 and N"), (3, 0, "between 1 and N"), (17, 2, "1-16 cards")],
)
def test_m_and_n_out_of_range_are_refused(tmp_path: Path, count: int, threshold: int, message: str) -> None:
    with pytest.raises(CardError, match=message):
        new_set(count, threshold, "x", tmp_path / "cards")
    assert not (tmp_path / "cards").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a card file"),
        ('{"v": 2}', "not a version-1"),
        (
            '{"v": 1, "set_id": "s", "label": "a", "threshold": 1, "public_key": "AAAA"}',
            "missing 'private_key'",
        ),
        (
            '{"v": 1, "set_id": "s", "label": "a", "threshold": 1, "private_key": "***", "public_key": "AAAA"}',
            "not base64",
        ),
        (
            '{"v": 1, "set_id": "s", "label": "a", "threshold": 1, "private_key": "AAAA", "public_key": "AAAA"}',
            "must be 32 bytes",
        ),
    ],
)
def test_malformed_card_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.card"
    path.write_text(content)
    with pytest.raises(CardError, match=message):
        load_card(path)


def test_card_whose_halves_do_not_belong_together_is_refused(tmp_path: Path) -> None:
    new_set(2, 1, "c", tmp_path)
    one, two = (json.loads((tmp_path / f"c-{i}.card").read_text()) for i in (1, 2))
    one["public_key"] = two["public_key"]
    (tmp_path / "mixed.card").write_text(json.dumps(one))
    with pytest.raises(CardError, match="do not belong together"):
        load_card(tmp_path / "mixed.card")
