"""Operating a real cluster: every member's Prometheus /metrics and JSON logs, through real member
processes, a CLI walkthrough, and a leader kill (issue 15: metrics, logs)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hsmnode.client import BatchError, HsmClient, ResourceExhausted, Unauthenticated
from hsmnode.ops.devcluster import DevCluster, DevTimings
from hsmnode.pb import keys_pb2, keys_pb2_grpc
from tests.common.cluster import ProcessCluster, free_base_port
from tests.integration.helpers import eventually

pytestmark = pytest.mark.cluster

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """3 members with metrics on, JSON logs and a snapshot every 40 entries, the dev demo set up."""
    c = ProcessCluster.create(
        tmp_path_factory.mktemp("observed") / "cluster",
        base_port=free_base_port(3),
        timings=DevTimings(log_format="json", compaction_min_entries=40),  # the demo's entries: a snapshot
        metrics=True,
    )
    c.start()
    try:
        c.wait_for_leader(timeout=30.0)
        c.bootstrap_demo()
        yield c
    finally:
        c.stop()
        assert not any(c.running(m.id) for m in c.members)


def scrape(cluster: DevCluster, member_id: str) -> Samples:
    """Every sample of the member's /metrics, parsed from the exposition format."""
    address = cluster.member(member_id).metrics
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def requests_of(samples: Samples, method: str) -> float:
    return sum(
        v
        for (n, labels), v in samples.items()
        if n == "hsmnode_grpc_requests_total" and ("method", method) in labels
    )


def hsmnode_requests(samples: Samples) -> float:
    """hsmnode's own RPCs (not grpc.health / reflection)."""
    return sum(
        v
        for (n, labels), v in samples.items()
        if n == "hsmnode_grpc_requests_total" and dict(labels)["service"].startswith("hsmnode.")
    )


def leaders(cluster: DevCluster, ids: list[str]) -> list[str]:
    return [m for m in ids if value(scrape(cluster, m), "hsmnode_raft_leader") == 1.0]


def log_records(cluster: DevCluster, member_id: str) -> list[dict[str, Any]]:
    """Every line of the member's log, each a JSON object (the test fails on any other line)."""
    lines = cluster.member(member_id).log_path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_scrape_shows_one_leader_and_counters_and_indexes_move_on_a_write(observed: DevCluster) -> None:
    ids = [m.id for m in observed.members]
    (leader,) = eventually(
        lambda: (found := leaders(observed, ids)) and len(found) == 1 and found, what="one leader flag"
    )
    before = scrape(observed, leader)
    with observed.client() as client:
        admin = client.login("admin", observed.demo()["users"]["admin"])  # type: ignore[index]
        admin.add_user("metrics-user", role="monitor", password="Metrics-pw-12")
    after = scrape(observed, leader)
    assert value(after, "hsmnode_raft_commit_index") > value(before, "hsmnode_raft_commit_index")
    assert value(after, "hsmnode_raft_applied_index") > value(before, "hsmnode_raft_applied_index")
    assert value(after, "hsmnode_users") == value(before, "hsmnode_users") + 1
    assert value(after, "hsmnode_raft_apply_duration_seconds_count") > value(
        before, "hsmnode_raft_apply_duration_seconds_count"
    )
    for member in ids:  # the login was applied on every member: the same verdict counts everywhere
        samples = scrape(observed, member)
        assert value(samples, "hsmnode_logins_total", target="user", outcome="success") >= 1
        assert value(samples, "hsmnode_raft_term") >= 1 and value(samples, "hsmnode_raft_lease_valid") == 1
        assert value(samples, "hsmnode_raft_members") == 3
    # every member compacted its log (40 entries): timed, sized and logged as a Raft event; the state
    # left the garbage collector's walks at the first tick and again when the snapshot started
    # (raft/snapshots.py, issue 16)
    for member in ids:

        def snapshotted(member: str = member) -> bool:
            samples = scrape(observed, member)
            return (
                value(samples, "hsmnode_raft_snapshot_duration_seconds_count") >= 1
                and value(samples, "hsmnode_raft_snapshot_size_bytes") > 0
                and value(samples, "hsmnode_raft_engine_events_total", event="gc_freezes") >= 2
            )

        eventually(snapshotted, what=f"a snapshot on {member}")
        events = [r for r in log_records(observed, member) if r.get("event") == "snapshot"]
        assert events and events[0]["bytes"] > 0 and events[0]["duration_ms"] > 0
    # the requests went to some member: summed over the cluster, the counters rose
    total = lambda: sum(requests_of(scrape(observed, m), "AddUser") for m in ids)  # noqa: E731
    assert total() >= 1
    assert (
        sum(
            value(
                scrape(observed, m),
                "hsmnode_grpc_request_duration_seconds_count",
                service="hsmnode.pb.Admin",
                method="AddUser",
            )
            for m in ids
        )
        == total()
    )


def _forms(secret: bytes) -> set[str]:
    """How a secret could show in a log: hex (either case), base64, base64url."""
    b64 = base64.b64encode(secret).decode()
    return {
        secret.hex(),
        secret.hex().upper(),
        b64,
        b64.rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    }


def _pem_body(path: Path) -> set[str]:
    """The base64 lines of a PEM private key (each a 64-character piece of the key)."""
    return {line for line in path.read_text().splitlines() if line and not line.startswith("-----")}


def _tokens(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set().union(*(_tokens(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_tokens(v) for v in node)) if node else set()
    return {node} if isinstance(node, str) and node.startswith("hsm1.") else set()


def test_json_logs_of_a_cli_walkthrough_have_a_record_per_rpc_and_no_secret(
    observed: DevCluster, tmp_path: Path
) -> None:
    demo = observed.demo()
    assert demo is not None
    profile = observed.profile_path
    sessions_file = profile.with_name(profile.stem + ".sessions.json")
    tokens: set[str] = set()

    def cli(*args: str, ok: bool = True) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "hsmnode", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, HSMNODE_PROFILE=str(profile)),
        )
        assert (result.returncode == 0) == ok, (args, result.stdout, result.stderr)
        if sessions_file.exists():
            tokens.update(_tokens(json.loads(sessions_file.read_text())))
        return result.stdout

    before = [scrape(observed, m.id) for m in observed.members]
    aes = os.urandom(32)
    (tmp_path / "aes.key").write_bytes(aes)
    (tmp_path / "msg").write_bytes(b"the operator's message")
    users, hsm, part = demo["users"], demo["hsm"], demo["partition"]
    wrong = "Wrong-pw-9876"
    cli("login", "admin", "--password", users["admin"])
    cli("user", "add", "walker", "--role", "operator", "--password", "Walker-pw-31")
    cli("login", "walker", "--password", wrong, ok=False)  # a failed login
    cli("hsm", "login", "--password", hsm["so_password"])
    cli("hsm", "logout")
    cli("session", "open", part["name"], "--role", "co", "--password", part["co_password"])  # the PIN
    cli(
        "key",
        "import",
        "walk-aes",
        "--type",
        "AES",
        "--in",
        str(tmp_path / "aes.key"),
        "--usage",
        "encrypt",
        "--usage",
        "decrypt",
        "--on",
        part["name"],
    )
    cli(
        "key",
        "generate",
        "walk-ec",
        "--type",
        "EC",
        "--size",
        "P-256",
        "--usage",
        "sign",
        "--usage",
        "verify",
        "--on",
        part["name"],
    )
    cli(
        "crypto",
        "sign",
        "walk-ec",
        "--on",
        part["name"],
        "--in",
        str(tmp_path / "msg"),
        "--out",
        str(tmp_path / "sig"),
    )
    cli(
        "crypto",
        "encrypt",
        "walk-aes",
        "--on",
        part["name"],
        "--in",
        str(tmp_path / "msg"),
        "--out",
        str(tmp_path / "ct"),
    )
    random_hex = cli("crypto", "random", "32", "--hex", "--on", part["name"]).strip()
    assert json.loads(cli("key", "list", "--on", part["name"], "--json"))
    after = [scrape(observed, m.id) for m in observed.members]
    records = {m.id: log_records(observed, m.id) for m in observed.members}  # every line is JSON
    settled = [scrape(observed, m.id) for m in observed.members]

    # a record for every RPC: each member logged as many hsmnode requests as its counters counted
    for i, member in enumerate(observed.members):
        logged = [
            r
            for r in records[member.id]
            if r["logger"] == "hsmnode.request" and r["method"].startswith("hsmnode.")
        ]
        assert hsmnode_requests(after[i]) <= len(logged) <= hsmnode_requests(settled[i]), member.id
        for r in logged:
            assert {"request_id", "actor", "client", "method", "code", "duration_ms", "member"} <= set(r)
            assert r["member"] == member.id
    requests = [r for rs in records.values() for r in rs if r["logger"] == "hsmnode.request"]
    methods = {r["method"].rpartition(".")[2] for r in requests}
    for wanted in (
        "Auth/Login",
        "Admin/AddUser",
        "Auth/HsmLogin",
        "Auth/HsmLogout",
        "Ntls/OpenSession",
        "Keys/Import",
        "Keys/Generate",
        "Keys/Sign",
        "Keys/Encrypt",
        "Keys/Random",
        "Keys/List",
    ):
        assert wanted in methods, (wanted, sorted(methods))
    failed = [r for r in requests if r["method"].endswith("Auth/Login") and r["code"] == "UNAUTHENTICATED"]
    assert failed and all(r["request_id"] and r["client"] == "admin" for r in failed)
    assert any(
        r["actor"] == f"partition:{part['name']}/CO" and r["method"].endswith("Keys/Sign") for r in requests
    )
    # the failed login counts as such on every member (every member applies the verdict)
    for i in range(len(observed.members)):
        assert (
            value(after[i], "hsmnode_logins_total", target="user", outcome="wrong_password")
            == value(before[i], "hsmnode_logins_total", target="user", outcome="wrong_password") + 1
        )
        assert value(after[i], "hsmnode_keys") == value(before[i], "hsmnode_keys") + 2

    # no secret in any member's log, in any form
    assert len(tokens) >= 2
    secrets = {users["admin"], "Walker-pw-31", wrong, hsm["so_password"], part["co_password"], random_hex}
    secrets |= _forms(aes) | _forms(bytes.fromhex(random_hex))
    for token in tokens:
        secrets |= {token, token.split(".")[2]}  # the whole token and its MAC
    root = observed.root
    secrets |= _forms(bytes.fromhex((observed.members[0].data_dir / "smk.key").read_text().strip()))
    secrets.add((root / "raft.secret").read_text().strip())
    for key in (
        root / "admin.key",
        root / "demo-client.key",
        *(m.dir / "node.key" for m in observed.members),
    ):
        secrets |= _pem_body(key)
    for member in observed.members:
        text = member.log_path.read_text()
        leaked = sorted(s[:12] + "..." for s in secrets if s and s in text)
        assert not leaked, f"{member.id} logged secrets: {leaked}"


def test_a_crypto_stream_batch_is_one_request_record_with_its_operation_count_and_counted_by_operation(
    observed: DevCluster,
) -> None:
    demo = observed.demo()
    assert demo is not None
    member = observed.members[1]
    before = scrape(observed, member.id)
    with HsmClient([member.grpc], observed.client_tls(), discover=False) as client:
        session = client.open_session("demo", demo["partition"]["co_password"], role="CO")
        session.generate_key("obs-ec", "EC", "P-256", usage=["sign"])
        session.sign_many("obs-ec", [b"a", b"b", b"c", b"d", b"e"], mechanism="ECDSA-SHA256")
        with pytest.raises(BatchError):
            session.sign_many("obs-ec", [b"f", b"", b"g"], mechanism="ECDSA-SHA256")
        session.logout()

    def batches() -> list[dict[str, Any]]:
        return [
            r
            for r in log_records(observed, member.id)
            if r["logger"] == "hsmnode.request" and r["method"] == "hsmnode.pb.CryptoStream/Batch"
        ]

    logged = eventually(lambda: batches() if len(batches()) >= 2 else None, what="two batch records")
    assert [(r["code"], r["ops"], r["failed"]) for r in logged[-2:]] == [("OK", 5, 0), ("OK", 3, 1)]
    assert all(r["actor"] == "partition:demo/CO" and r["client"] == "demo-client" for r in logged[-2:])
    after = scrape(observed, member.id)
    ops = "hsmnode_crypto_operations_total"
    assert (
        value(after, ops, operation="sign", outcome="ok") - value(before, ops, operation="sign", outcome="ok")
        == 7
    )
    assert (
        value(after, ops, operation="sign", outcome="error")
        - value(before, ops, operation="sign", outcome="error")
        == 1
    )
    batch_requests = requests_of(after, "Batch") - requests_of(before, "Batch")
    assert batch_requests == 2


def test_a_generate_batch_is_one_request_record_with_its_request_count(observed: DevCluster) -> None:
    demo = observed.demo()
    assert demo is not None
    member = observed.members[1]
    with HsmClient([member.grpc], observed.client_tls(), discover=False) as client:
        session = client.open_session("demo", demo["partition"]["co_password"], role="CO")
        stub = keys_pb2_grpc.KeysStub(client.transport.channel(member.grpc))
        batch = keys_pb2.GenerateKeyBatch(
            requests=[
                keys_pb2.GenerateKeyRequest(
                    request_id=f"obs-batch-{n}",
                    label=f"obs-b-{n}",
                    key_type="AES",
                    size=size,
                    usage=["encrypt"],
                )
                for n, size in enumerate(["256", "100", "128"])
            ]
        )
        answer = stub.GenerateBatch(batch, timeout=10, metadata=[("x-hsm-session", session.token)])
        assert [r.code for r in answer.results] == [0, grpc.StatusCode.INVALID_ARGUMENT.value[0], 0]
        session.logout()

    def batches() -> list[dict[str, Any]]:
        return [
            r
            for r in log_records(observed, member.id)
            if r["logger"] == "hsmnode.request" and r["method"] == "hsmnode.pb.Keys/GenerateBatch"
        ]

    (logged,) = eventually(lambda: batches() or None, what="the batch's record")
    assert (logged["code"], logged["ops"], logged["failed"], logged["request_id"]) == ("OK", 3, 1, "")
    assert "Keys/GenerateBatch OK 3 ops" in logged["message"]  # the text line carries the count too
    assert logged["actor"] == "partition:demo/CO" and logged["client"] == "demo-client"


def test_wrong_passwords_while_a_user_is_locked_out_count_as_locked_logins(observed: DevCluster) -> None:
    """hsmnode_logins_total{outcome="locked"} counts the attempt that locks a credential and every
    attempt while it is locked, a wrong password included: the answer hides a user's lockout (any
    wrong password reads "wrong user name or password"), the metric, like the audit log, does not.
    Once seen counting those as wrong_password."""
    ids = [m.id for m in observed.members]
    with observed.client() as client:
        admin = client.login("admin", observed.demo()["users"]["admin"])  # type: ignore[index]
        admin.add_user("locked-out", role="monitor", password="Locked-pw-123")
        before = {m: scrape(observed, m) for m in ids}
        for _ in range(5):  # the fifth wrong password locks the user (5 failed logins, README)
            with pytest.raises(Unauthenticated, match="wrong user name or password"):
                client.login("locked-out", "Wrong-pw-123")
        for _ in range(3):  # wrong passwords while locked: the same answer
            with pytest.raises(Unauthenticated, match="wrong user name or password"):
                client.login("locked-out", "Wrong-pw-123")
        with pytest.raises(ResourceExhausted, match="locked"):  # the right one learns of the lockout
            client.login("locked-out", "Locked-pw-123")

    def delta(member: str, outcome: str) -> float:
        now = value(scrape(observed, member), "hsmnode_logins_total", target="user", outcome=outcome)
        return now - value(before[member], "hsmnode_logins_total", target="user", outcome=outcome)

    for member in ids:  # every member applies every verdict: the same figures everywhere
        eventually(lambda m=member: delta(m, "locked") >= 5, what=f"5 locked logins counted on {member}")
        assert (delta(member, "wrong_password"), delta(member, "locked")) == (4, 5), member


def test_leader_kill_shows_a_term_change_and_lag_back_to_0_and_a_taken_metrics_port_refuses_start(
    observed: DevCluster,
) -> None:
    """The drill of the issue's acceptance, scraped: kill the leader, the survivors elect (term up,
    one leader flag, a leader change seen), lag returns to 0; the killed member cannot restart on a
    taken metrics port (a refusal naming it), then restarts and catches up (lag 0, same term)."""
    ids = [m.id for m in observed.members]
    (leader,) = eventually(
        lambda: (found := leaders(observed, ids)) and len(found) == 1 and found, what="one leader flag"
    )
    survivors = [m for m in ids if m != leader]
    before = {m: scrape(observed, m) for m in survivors}
    observed.kill(leader)

    def elected() -> list[str] | None:
        now = {m: scrape(observed, m) for m in survivors}
        flagged = [m for m in survivors if value(now[m], "hsmnode_raft_leader") == 1.0]
        moved = all(
            value(now[m], "hsmnode_raft_term") > value(before[m], "hsmnode_raft_term")
            and value(now[m], "hsmnode_raft_leader_changes_total")
            > value(before[m], "hsmnode_raft_leader_changes_total")
            for m in survivors
        )
        return flagged if len(flagged) == 1 and moved else None

    eventually(elected, timeout=20.0, what="a new leader at a higher term")
    with observed.client() as client:  # a write after the election: lag must come back to 0 anyway
        client.login("admin", observed.demo()["users"]["admin"]).add_user(  # type: ignore[index]
            "after-kill", role="monitor", password="After-kill-12"
        )
    eventually(
        lambda: all(value(scrape(observed, m), "hsmnode_raft_lag_entries") == 0 for m in survivors),
        what="lag 0 on the survivors",
    )

    killed = observed.member(leader)
    assert killed.metrics is not None
    host, _, port = killed.metrics.rpartition(":")
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the scrapes' TIME_WAIT
        taken.bind((host, int(port)))
        taken.listen()
        observed.start(leader)
        code = eventually(lambda: observed.exit_code(leader), timeout=20.0, what="the refusal")
        assert code == 2
        assert f"cannot listen for metrics on {killed.metrics}" in killed.log_path.read_text()
    observed.start(leader)

    def caught_up() -> bool:
        try:
            mine = scrape(observed, leader)
        except OSError:  # not listening yet
            return False
        other = scrape(observed, survivors[0])
        return (
            value(mine, "hsmnode_raft_lag_entries") == 0
            and value(mine, "hsmnode_raft_ready") == 1
            and value(mine, "hsmnode_raft_term") == value(other, "hsmnode_raft_term")
            and value(mine, "hsmnode_users") == value(other, "hsmnode_users")
        )

    eventually(caught_up, timeout=30.0, what=f"{leader} caught up")
    assert len(leaders(observed, ids)) == 1
