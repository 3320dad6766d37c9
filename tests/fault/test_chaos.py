"""Chaos: SIGKILL and restart of a minority (sometimes the leader) under an SDK workload of key
writes and signatures from several threads, then a history check at a quiet point.

The check follows the SDK's outcome contract (issue 10): a write the SDK acknowledged is present
exactly once on every member with the object id it was acknowledged with; OutcomeUnknown may or
may not have been applied, but at most once; Unavailable means provably not applied, so such a
write must be absent. Nothing is present that was never requested, no label twice, every
member's state digest equal. Errors the application saw are counted by code and printed.

Short run (≥ 10 kills) in `make test`; `make chaos` runs ≥ 100.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from hsmnode.client import HsmError, OutcomeUnknown, Unavailable
from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import converged, eventually, node_status

pytestmark = [pytest.mark.cluster, pytest.mark.serial]


@dataclass
class History:
    acknowledged: dict[str, str] = field(default_factory=dict)  # label -> key id
    unknown: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)  # Unavailable: provably not applied
    other_failures: set[str] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Workload:
    def __init__(
        self,
        cluster: DevCluster,
        run: str,
        writers: int = 2,
        signers: int = 2,
        write_period: float = 0.05,
        sign_period: float = 0.005,
    ) -> None:
        demo = cluster.demo()
        assert demo is not None
        self.cluster = cluster
        self.run = run
        self.history = History()
        self.stop = threading.Event()
        # paced: a restarted member replays its journal since the last snapshot in one pysyncobj
        # tick, so an unpaced writer makes every restart slower than the last
        self.write_period = write_period
        self.sign_period = sign_period
        with cluster.app_client() as app:
            session = app.open_session(demo["partition"]["name"], demo["partition"]["co_password"], role="CO")
            self.token = session.token
            self.signer_key = f"{run}-signer"
            session.generate_key(self.signer_key, "EC", "P-256", usage=["sign"], request_id=self.signer_key)
        self.threads = [threading.Thread(target=self._write, args=(w,)) for w in range(writers)]
        self.threads += [threading.Thread(target=self._sign) for _ in range(signers)]

    def __enter__(self) -> Workload:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()

    def _write(self, writer: int) -> None:
        h = self.history
        with self.cluster.app_client(timeout=10.0) as app:
            session = app.resume_partition(self.token)
            i = 0
            while not self.stop.is_set():
                label = f"{self.run}-w{writer}-{i}"
                i += 1
                try:
                    key = session.generate_key(label, "EC", "P-256", usage=["sign"], request_id=label)
                    with h.lock:
                        h.acknowledged[label] = key.id
                except OutcomeUnknown:
                    with h.lock:
                        h.unknown.add(label)
                        h.errors["OUTCOME_UNKNOWN"] += 1
                except Unavailable:
                    with h.lock:
                        h.refused.add(label)
                        h.errors["UNAVAILABLE"] += 1
                except HsmError as exc:
                    with h.lock:
                        h.other_failures.add(label)
                        h.errors[exc.code.name] += 1
                self.stop.wait(self.write_period)

    def _sign(self) -> None:
        h = self.history
        with self.cluster.app_client(timeout=10.0) as app:
            session = app.resume_partition(self.token)
            while not self.stop.is_set():
                try:
                    session.sign(self.signer_key, b"chaos", mechanism="ECDSA-SHA256")
                    with h.lock:
                        h.signatures += 1
                except HsmError as exc:
                    with h.lock:
                        h.errors[f"sign {exc.code.name}"] += 1
                self.stop.wait(self.sign_period)


def keys_on(cluster: DevCluster, member: str, token: str, prefix: str) -> list[tuple[str, str]]:
    with cluster.app_client(member, timeout=10.0) as one:
        keys = one.resume_partition(token).list_keys()
    return [(k.label, k.id) for k in keys if k.label.startswith(prefix + "-w")]


def check_history(cluster: DevCluster, workload: Workload) -> None:
    h = workload.history
    ids = [m.id for m in cluster.members]
    converged(cluster, ids, timeout=60.0)
    attempted = set(h.acknowledged) | h.unknown | h.refused | h.other_failures
    for member in ids:
        present = keys_on(cluster, member, workload.token, workload.run)
        labels = Counter(label for label, _ in present)
        twice = [label for label, n in labels.items() if n > 1]
        assert not twice, f"{member}: written twice: {twice[:5]}"
        by_label = dict(present)
        missing = [label for label in h.acknowledged if label not in by_label]
        assert not missing, f"{member}: acknowledged writes missing: {missing[:5]}"
        wrong_id = [label for label, kid in h.acknowledged.items() if by_label[label] != kid]
        assert not wrong_id, f"{member}: object ids differ from the acknowledged ones: {wrong_id[:5]}"
        applied_refused = sorted(h.refused & set(by_label))
        assert not applied_refused, f"{member}: refused as Unavailable but applied: {applied_refused[:5]}"
        never = sorted(set(by_label) - attempted)
        assert not never, f"{member}: present but never requested: {never[:5]}"


def chaos(cluster: DevCluster, kills: int, run: str, write_period: float = 0.05) -> History:
    """`kills` SIGKILLs of one member at a time (every third the leader), each restarted after
    0.1-0.5 s and awaited before the next, under the workload; then the history check."""
    rng = random.Random(run)
    with Workload(cluster, run, write_period=write_period) as workload:
        eventually(lambda: len(workload.history.acknowledged) > 5, 30.0, "writes before the first kill")
        for n in range(kills):
            leader = eventually(lambda: single_leader(cluster), 60.0, "a single leader")
            victim = leader if n % 3 == 0 else rng.choice([m.id for m in cluster.members if m.id != leader])
            cluster.kill(victim)
            time.sleep(rng.uniform(0.1, 0.5))  # how long the member stays dead: the fault itself
            cluster.start(victim)
            eventually(lambda v=victim: node_status(cluster, v).ready, 60.0, f"{victim} back")
    check_history(cluster, workload)
    h = workload.history
    print(
        f"chaos {run}: {kills} kills (every third the leader); writes acknowledged {len(h.acknowledged)}, "
        f"outcome unknown {len(h.unknown)}, refused {len(h.refused)}, other failures {len(h.other_failures)}; "
        f"signatures {h.signatures}; errors seen by the application {dict(h.errors)}"
    )
    return h


def single_leader(cluster: DevCluster) -> str | None:
    roles = {m.id: node_status(cluster, m.id).role for m in cluster.members}
    leaders = [m for m, role in roles.items() if role == "leader"]
    return leaders[0] if len(leaders) == 1 else None


@pytest.mark.timeout(300)
def test_chaos_short_run_keeps_every_acknowledged_write_exactly_once(trio: DevCluster) -> None:
    h = chaos(trio, 10, "chaos10")
    assert h.acknowledged and h.signatures


@pytest.mark.chaos
@pytest.mark.timeout(1800)
def test_chaos_long_run(trio: DevCluster) -> None:
    # paced (about 10 writes/s): the run is about the kills, and every key write scans the
    # partition's labels, so thousands more keys would only slow every member down
    h = chaos(trio, 100, "chaos100", write_period=0.2)
    assert h.acknowledged and h.signatures
