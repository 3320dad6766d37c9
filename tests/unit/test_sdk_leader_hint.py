"""The SDK's leader hint (client/_hints.py): the leader an answer names (`x-hsm-leader`) goes first
in a write's order, only when it is one of the client's endpoints; the rest of the order stays."""

from __future__ import annotations

from hsmnode.client._hints import LEADER_KEY, LeaderHint

ENDPOINTS = ("h1:1", "h2:2", "h3:3")


def test_no_hint_keeps_the_order() -> None:
    hint = LeaderHint()
    hint.note([("x-hsm-applied-index", "7")], ENDPOINTS)
    assert hint.endpoint == "" and hint.first(list(ENDPOINTS)) == list(ENDPOINTS)


def test_the_named_leader_goes_first_and_the_rest_keep_their_order() -> None:
    hint = LeaderHint()
    hint.note([("x-hsm-applied-index", "7"), (LEADER_KEY, "h3:3")], ENDPOINTS)
    assert hint.first(["h1:1", "h2:2", "h3:3"]) == ["h3:3", "h1:1", "h2:2"]
    assert hint.first(["h2:2", "h1:1"]) == ["h2:2", "h1:1"]  # the leader not in this order: unchanged


def test_a_later_answer_moves_the_hint_and_an_unknown_address_is_ignored() -> None:
    hint = LeaderHint()
    hint.note([(LEADER_KEY, "h2:2")], ENDPOINTS)
    hint.note([(LEADER_KEY, "h3:3")], ENDPOINTS)
    assert hint.endpoint == "h3:3"
    hint.note([(LEADER_KEY, "elsewhere:9")], ENDPOINTS)  # never a member the client was not given
    assert hint.endpoint == "h3:3"
    hint.note(None, ENDPOINTS)  # an answer without trailing metadata
    assert hint.endpoint == "h3:3"
