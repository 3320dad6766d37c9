"""Every write RPC answers a repeated request id with its first result and changes state once (DESIGN.md §3.5).

The write RPCs are read from the proto descriptors of every hsmnode.pb module: a method whose
request carries `request_id`, unless it is marked `idempotency_level = NO_SIDE_EFFECTS` (a read
sharing a request message). The Console service is sent through the first member's local console
socket (ConsoleClient), everything else through the HA SDK over TLS.
Each has a scenario (set-up, then the call); a write RPC without one fails the test. Each is sent
twice with one request id, and again (with a fresh one) through a FaultInjector that loses the
first answer after the member executed it, so the SDK retries: the answers are equal, and the
audit log (one record per applied command) shows the request's commands once.

The scenarios are in idempotency_scenarios.py; the world they set up in (the demo cluster's
identities and sessions, `Call`, `World`) and the list of write RPCs are in idempotency_support.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hsmnode.client import FaultInjector, HsmError, HsmRoleSession
from tests.common.cluster import IN_PROCESS, start_cluster
from tests.integration.idempotency_scenarios import SCENARIOS
from tests.integration.idempotency_support import CONSOLE_SERVICES, STUBS, Call, World, write_rpcs

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    cluster = start_cluster(
        Path(tmp_path_factory.mktemp("idempotency")) / "cluster", fault_injection=True, kind=IN_PROCESS
    )
    try:
        demo = cluster.demo()
        assert demo is not None
        w = World(cluster, demo, cu_password=demo["partition"]["cu_password"])
        yield w
        for client in w.clients.values():
            client.close()
    finally:
        cluster.stop()


# write RPCs whose repeat is checked by a test of their own, as this module's in-process cluster
# cannot run them twice: AdoptCluster re-executes the node that adopts
COVERED_ELSEWHERE = {
    "Cluster.AdoptCluster": "tests/integration/test_join.py::"
    "test_a_repeated_adoption_answers_the_first_before_and_after_the_restart_and_adopts_once",
}


def test_every_write_rpc_has_a_scenario() -> None:
    writes = write_rpcs()
    assert len(writes) >= 40, writes
    missing = sorted(set(writes) - set(SCENARIOS) - set(COVERED_ELSEWHERE))
    assert not missing, f"write RPCs without an idempotency scenario: {missing}"
    assert not sorted(set(SCENARIOS) - set(writes)), "scenarios for RPCs that are not writes"


# server-streaming writes: the answer compared is what the stream says, not its bytes (a backup is
# sealed afresh each time, with the time and member that took it)
STREAMING = {"Cluster.Backup"}


def _send(w: World, rpc: str, call: Call, request_id: str, interceptors: list[Any] | None = None) -> Any:
    """The answer (a response message, or the error as (type, message)) of one call with failover."""
    service, method = rpc.split(".")
    call.request.request_id = request_id
    if service in CONSOLE_SERVICES:
        with w.console(interceptors) as console:
            try:
                return console.call(method, call.request, write=True)
            except HsmError as exc:
                return (type(exc).__name__, exc.message)
    client = w.client(call.identity, interceptors)
    try:
        if rpc in STREAMING:
            header = next(
                iter(client.call_stream(STUBS[service], method, call.request, token=call.token))
            ).header
            header.ClearField("taken_at_ms")
            header.ClearField("taken_by")
            return header
        return client.call(STUBS[service], method, call.request, write=True, token=call.token)
    except HsmError as exc:
        return (type(exc).__name__, exc.message)
    finally:
        if interceptors:
            client.close()
        _forget_ended_sessions(w, rpc, call)


def _forget_ended_sessions(w: World, rpc: str, call: Call) -> None:
    """Sessions the call ended cluster-wide (their credential's epoch moved): log in again when needed."""
    if rpc in ("Auth.HsmLogout", "Admin.InitHsm"):
        w.tokens.pop("so", None)
    if rpc in ("Keyrings.Assign", "Keyrings.Unassign"):
        w.forget_app_sessions()
    if rpc == "Admin.InitAuditor":
        w.demo["hsm"]["auditor_password"] = call.request.password
        w.tokens.pop("auditor", None)


def _commands(w: World, request_id: str, after: int) -> list[str]:
    """The audit records (applied commands) of a request since audit position `after`."""
    auditor = HsmRoleSession(w.client("admin"), w.token("auditor"), "audit", "audit", 0)
    found, seq = [], after
    while True:
        records = auditor.audit_list(after_seq=seq, limit=1000).records
        if not records:
            return found
        found += [
            r.command
            for r in records
            if r.request_id == request_id or r.request_id.startswith(request_id + "/")
        ]
        seq = records[-1].seq


def _audit_length(w: World) -> int:
    auditor = HsmRoleSession(w.client("admin"), w.token("auditor"), "audit", "audit", 0)
    return auditor.audit_list(after_seq=0, limit=1).total


@pytest.mark.parametrize("rpc", list(SCENARIOS))
def test_a_repeated_request_id_gets_the_first_answer_and_changes_state_once(world: World, rpc: str) -> None:
    w = world
    # sent twice with one request id
    call = SCENARIOS[rpc](w)
    start = _audit_length(w)
    first = _send(w, rpc, call, f"idem-{rpc}-twice")
    applied = _commands(w, f"idem-{rpc}-twice", start)
    assert applied, f"{rpc}: the first call applied nothing: {first!r}"
    assert isinstance(first, tuple) == (rpc == "Debug.FailApply"), f"{rpc}: {first!r}"
    again = _send(w, rpc, call, f"idem-{rpc}-twice")
    assert again == first, f"{rpc}: a repeat answered differently"
    assert _commands(w, f"idem-{rpc}-twice", start) == applied, f"{rpc}: a repeat changed state again"
    if call.cleanup:
        call.cleanup()

    # the first answer lost after the member executed it: the SDK retries with the same request id
    call = SCENARIOS[rpc](w)
    start = _audit_length(w)
    lose = FaultInjector(unknown_ratio=1.0, methods=(f"/{rpc.split('.')[1]}",), limit=1)
    retried = _send(w, rpc, call, f"idem-{rpc}-lost", [lose])
    assert lose.lost == 1, f"{rpc}: {retried!r}"
    assert not isinstance(retried, tuple) or isinstance(first, tuple), f"{rpc}: {retried!r}"
    assert _commands(w, f"idem-{rpc}-lost", start) == applied, f"{rpc}: applied other than once"
    assert _send(w, rpc, call, f"idem-{rpc}-lost") == retried
    if call.cleanup:
        call.cleanup()
