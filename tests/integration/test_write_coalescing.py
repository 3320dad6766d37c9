"""Ordinary `session.generate_key` from many threads on one client, coalesced into Keys/GenerateBatch
calls to the leader (issue 16): each caller gets its own key or its own exception, each key is
created exactly once, through lost answers, a member without the batch RPC and a leader kill."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from hsmnode.client import AlreadyExists, FaultInjector, HsmClient, InvalidArgument, PartitionSession
from hsmnode.client._faults import InjectedError
from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import answered_more, co_session, eventually, leader_of, stop_workers, stopped

pytestmark = pytest.mark.cluster

THREADS = 16


def _in_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    """work(i) in n threads at once: its answers (or exceptions), by thread."""
    answers: list[Any] = [None] * n
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        try:
            answers[i] = work(i)
        except BaseException as exc:
            answers[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    return answers


def _labels(session: PartitionSession, prefix: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key in session.list_keys():
        if key.label.startswith(prefix):
            found.setdefault(key.label, []).append(key.id)
    return found


@pytest.mark.parametrize("pipe_below", [None, THREADS], ids=["policy", "pipelined"])
def test_each_caller_gets_its_own_key_or_error_and_each_key_is_created_once(
    trio: DevCluster, pipe_below: int | None
) -> None:
    """pipe_below THREADS: every load counts as light (batches sent at once, up to 4 in flight)."""
    with HsmClient([m.grpc for m in trio.members], trio.client_tls(), timeout=15.0) as client:
        session = co_session(trio, client)
        batcher = client.transport.writes.batcher
        w = "w-" if pipe_below is None else "wp-"  # one cluster for the module: labels of their own
        if pipe_below is not None:
            batcher.pipe_below = pipe_below

        def work(i: int) -> list[Any]:
            out: list[Any] = []
            for n in range(8):
                try:
                    if n == 3:  # every thread asks for the same label: one gets it
                        out.append(session.generate_key(f"{w}shared", "AES", 256, usage=["encrypt"]))
                    elif n == 5:  # a bad size: this caller's own error
                        out.append(session.generate_key(f"{w}bad-{i}", "AES", 100, usage=["encrypt"]))
                    else:
                        out.append(session.generate_key(f"{w}{i}-{n}", "AES", 256, usage=["encrypt"]))
                except Exception as exc:
                    out.append(exc)
            return out

        answers = _in_threads(THREADS, work)
        assert batcher.batches > 0 and batcher.batched > THREADS  # coalesced
        assert batcher.pipelined > 0 or pipe_below is None
        shared = [per[3] for per in answers]
        assert sum(not isinstance(a, Exception) for a in shared) == 1
        assert all(isinstance(a, AlreadyExists) for a in shared if isinstance(a, Exception))
        assert all(isinstance(per[5], InvalidArgument) and "100" in str(per[5]) for per in answers)
        for i, per in enumerate(answers):
            for n in (0, 1, 2, 4, 6, 7):
                assert not isinstance(per[n], Exception), per[n]
                assert per[n].label == f"{w}{i}-{n}"
        created = _labels(session, w)
        assert all(len(ids) == 1 for ids in created.values())
        assert len(created) == THREADS * 6 + 1
        assert {per[n].id for per in answers for n in (0, 1, 2, 4, 6, 7)} <= {
            ids[0] for ids in created.values()
        }


def test_threads_repeating_one_request_id_get_the_one_key(trio: DevCluster) -> None:
    with HsmClient([m.grpc for m in trio.members], trio.client_tls(), timeout=15.0) as client:
        session = co_session(trio, client)
        answers = _in_threads(
            THREADS,
            lambda i: session.generate_key(
                "w-same-id", "AES", 256, usage=["encrypt"], request_id="w-same-id-1"
            ),
        )
        assert not [a for a in answers if isinstance(a, BaseException)]
        assert len({a.id for a in answers}) == 1
        assert [k.id for k in session.list_keys(label="w-same-id")] == [answers[0].id]


def test_lost_batch_answers_are_resent_with_the_same_request_ids(trio: DevCluster) -> None:
    """Half the batches run but their answers are lost: each write is sent again alone with its
    request id and answers its first result, so nothing is created twice."""
    lose = FaultInjector(unknown_ratio=0.5, methods=("GenerateBatch",), seed=7)
    with HsmClient([m.grpc for m in trio.members], trio.client_tls(), timeout=15.0, interceptors=[lose]) as c:
        session = co_session(trio, c)
        answers = _in_threads(
            THREADS,
            lambda i: [
                session.generate_key(f"lost-{i}-{n}", "AES", 256, usage=["encrypt"]) for n in range(6)
            ],
        )
        assert not [a for a in answers if isinstance(a, BaseException)]
        assert c.transport.writes.batcher.fallbacks > 0  # some answers were lost and resent
        created = _labels(session, "lost-")
        assert len(created) == THREADS * 6 and all(len(ids) == 1 for ids in created.values())
        assert {k.id for per in answers for k in per} == {ids[0] for ids in created.values()}


class _OldMember(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """A member of a version before GenerateBatch: the RPC answers UNIMPLEMENTED, nothing runs."""

    def __init__(self) -> None:
        self.refused = 0

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if details.method.endswith("/GenerateBatch"):
            self.refused += 1
            raise InjectedError(grpc.StatusCode.UNIMPLEMENTED, "Method not found!", sent=False)
        return continuation(details, request)


def test_a_member_without_the_batch_rpc_gets_unary_writes(trio: DevCluster) -> None:
    old = _OldMember()
    with HsmClient([m.grpc for m in trio.members], trio.client_tls(), timeout=15.0, interceptors=[old]) as c:
        session = co_session(trio, c)
        answers = _in_threads(
            8,
            lambda i: [session.generate_key(f"old-{i}-{n}", "AES", 256, usage=["encrypt"]) for n in range(4)],
        )
        assert not [a for a in answers if isinstance(a, BaseException)]
        assert 1 <= old.refused <= 2  # asked once (twice when two batches raced), then unary only
        assert len(_labels(session, "old-")) == 32


def test_coalesce_off_sends_unary_writes(trio: DevCluster) -> None:
    with HsmClient([m.grpc for m in trio.members], trio.client_tls(), coalesce=False) as c:
        session = co_session(trio, c)
        _in_threads(4, lambda i: session.generate_key(f"plain-{i}", "AES", 256, usage=["encrypt"]))
        assert c.transport.writes.batcher.batches == 0
        assert len(_labels(session, "plain-")) == 4


def test_a_batch_sent_to_a_follower_is_served_and_the_hint_corrected(trio: DevCluster) -> None:
    leader = leader_of(trio)
    follower = next(m.id for m in trio.members if m.id != leader)
    with HsmClient([m.grpc for m in trio.members], trio.client_tls(), timeout=15.0) as c:
        session = co_session(trio, c)
        c.transport.leader.endpoint = trio.member(follower).grpc  # as if the leader had moved
        answers = _in_threads(
            8,
            lambda i: [
                session.generate_key(f"stale-{i}-{n}", "AES", 256, usage=["encrypt"]) for n in range(3)
            ],
        )
        assert not [a for a in answers if isinstance(a, BaseException)]
        assert c.transport.leader.endpoint == trio.member(leader).grpc
        assert len(_labels(session, "stale-")) == 24


@pytest.mark.processes
@pytest.mark.parametrize("pipelined", [False, True], ids=["policy", "pipelined"])
def test_writes_in_flight_through_a_leader_kill_are_answered_exactly_once(
    cluster: DevCluster, pipelined: bool
) -> None:
    """`pipelined`: every load counts as light (_write_batch.py), so up to 4 batches are in flight
    on the killed leader at once; else the default policy (16 threads: one batch in flight)."""
    with HsmClient([m.grpc for m in cluster.members], cluster.client_tls(), timeout=20.0) as client:
        session = co_session(cluster, client)
        writes = client.transport.writes
        if pipelined:
            writes.batcher.pipe_below = THREADS
        victim = cluster.member(leader_of(cluster))
        session.generate_key("kill-warm", "AES", 256, usage=["encrypt"])  # the hint names the leader
        stop = threading.Event()
        answers: list[list[tuple[str, Any]]] = [[] for _ in range(THREADS)]

        def writer(i: int) -> None:
            n = 0
            while not stop.is_set() or n < 10:
                label = f"kill-{i}-{n}"
                try:
                    answers[i].append((label, session.generate_key(label, "AES", 256, usage=["encrypt"])))
                except BaseException as exc:
                    answers[i].append((label, exc))
                n += 1

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        try:
            eventually(lambda: writes.in_flight(victim.grpc) > 0, what="a batch sent to the leader")
            pid = cluster.pid_of(victim.id)
            assert pid is not None
            # stopped, the leader answers nothing more; a batch answered as it stopped (its answer on
            # the wire) is followed by one to the same leader, the hint's. Once the others have
            # elected a leader, whatever is in flight there is beyond answering until the kill
            stopped(pid)
            leader_of(cluster, among=[m.id for m in cluster.members if m.id != victim.id])
            eventually(
                lambda: writes.in_flight(victim.grpc) > 0, what="a batch in flight on the stopped leader"
            )
            cluster.kill(victim.id)
            answered_more(answers, 3 * THREADS, 60.0, "writes through the new leader")
        finally:
            ended = stop_workers(stop, threads, 60)
        assert ended
        failed = [(label, a) for per in answers for label, a in per if isinstance(a, BaseException)]
        assert failed == []
        acknowledged = {label: key.id for per in answers for label, key in per}
        created = _labels(session, "kill-")
        created.pop("kill-warm", None)
        assert {label: ids for label, ids in created.items() if len(ids) != 1} == {}  # none twice
        assert {label: ids[0] for label, ids in created.items()} == acknowledged  # none lost, none extra
        assert writes.batcher.fallbacks > 0  # the stopped leader's writes went alone to the new one
        assert writes.batcher.pipelined > 0 or not pipelined
