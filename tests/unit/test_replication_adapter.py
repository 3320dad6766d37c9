"""The pysyncobj adapter's apply never raises, and its snapshots are plain versioned data."""

from __future__ import annotations

import io
import logging
import pickle
from typing import Any

import pytest

from hsmnode import replicated_state
from hsmnode.domain import commands as c
from hsmnode.domain.batch import encode_batch
from hsmnode.domain.errors import ErrorCode
from hsmnode.replication import ReplicatedState
from tests.unit.world import booted


def note(rid: str) -> bytes:
    return c.AuditNote(actor="user:admin#2", request_id=rid, timestamp=1, text="hi").encode()


def booted_consumer() -> ReplicatedState:
    consumer = ReplicatedState()
    consumer.state = booted().state
    return consumer


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"garbage",
        b"\x80\x04K\x01.",
        b'{"v":1}',
        b'{"v":1,"type":"nope","actor":"a","request_id":"r","timestamp":1,"body":{}}',
        None,
        42,
    ],
)
def test_undecodable_payload_becomes_invalid_argument_result(
    payload: Any, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = ReplicatedState()
    with caplog.at_level(logging.ERROR, logger="hsmnode.replication"):
        result = consumer.apply_payload(payload)
    assert not result.ok and result.code is ErrorCode.INVALID_ARGUMENT
    assert "refused undecodable command" in caplog.text


def test_exception_inside_apply_becomes_internal_result_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = booted_consumer()
    payload = c.DebugFail(actor="user:admin#2", request_id="boom", timestamp=1, reason="why").encode()
    with caplog.at_level(logging.ERROR, logger="hsmnode.replication"):
        result = consumer.apply_payload(payload)
    assert result.code is ErrorCode.INTERNAL
    assert "injected failure: why" in caplog.text and "debug.fail" in caplog.text
    assert consumer.apply_payload(note("next")).ok


def test_state_machine_failure_outside_handlers_is_contained(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = ReplicatedState()

    def broken(state: object, cmd: c.Command) -> None:
        raise MemoryError("simulated")

    monkeypatch.setattr(replicated_state, "apply_command", broken)
    assert consumer.apply_payload(note("x")).code is ErrorCode.INTERNAL


class _BuiltinsOnly(pickle.Unpickler):
    """Unpickles only builtin containers: proves a snapshot holds no domain classes."""

    def find_class(self, module: str, name: str) -> Any:
        if module in {"builtins", "__builtin__"} and name in {"dict", "list", "str", "int", "bool"}:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"snapshot references {module}.{name}")


def test_snapshot_pickles_to_plain_data_and_restores_the_same_state() -> None:
    consumer = booted_consumer()
    consumer.apply_payload(note("a"))
    consumer.apply_payload(note("b"))
    blob = pickle.dumps(consumer._serialize(), protocol=2)
    data = _BuiltinsOnly(io.BytesIO(blob)).load()
    assert data["v"] == 1
    restored = ReplicatedState()
    restored._deserialize(data)
    assert restored.state.digest() == consumer.state.digest()
    assert restored.apply_payload(note("a")).value == consumer.apply_payload(note("a")).value


def test_the_replicated_method_set_is_frozen() -> None:
    # pysyncobj numbers replicated methods by sorted name: adding one renumbers the journal.
    names = sorted(
        n for n in dir(ReplicatedState) if getattr(getattr(ReplicatedState, n), "replicated", False)
    )
    assert names == ["apply", "apply_v0", "barrier", "barrier_v0"]


def test_the_observer_sees_each_entry_once_with_its_commands_and_results() -> None:
    """hsmnode_raft_apply_duration_seconds is per committed entry (README): a batch entry of three
    commands is one observation, carrying its decoded commands (for the login verdicts)."""
    consumer = booted_consumer()
    seen: list[tuple[list[tuple[c.Command, Any]], float]] = []
    consumer.observer = lambda applied, seconds: seen.append((applied, seconds))
    consumer.apply_payload(note("one"))
    consumer.apply_payload(encode_batch([note("two"), b"garbage", note("three")]))
    assert [[cmd.request_id for cmd, _ in applied] for applied, _ in seen] == [["one"], ["two", "three"]]
    assert all(result.ok for applied, _ in seen for _, result in applied)
    assert all(seconds >= 0 for _, seconds in seen)
