"""The CLI as a user meets it: `hsmnode dev` in the foreground, then `cluster status` and `audit` with --json.

The module's tests share one `hsmnode dev` cluster (`shared`, started on first use): they run in file
order, the first on the fresh cluster (it checks the demo exactly, then stops and restarts it), the
last (a standalone node joins) leaves a member behind that nothing after it may count on. Every
process a test starts is stopped afterwards: `hsmnode dev` itself, and its members found through their
pid files, whatever state the test left them in."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cli_support import HSMNODE, STARTED, SharedDev, run, stop_leftovers
from tests.integration.conftest import free_base_port

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedDev]:
    dev = SharedDev(tmp_path_factory.mktemp("cli") / "hsmnode-dev", free_base_port(4))
    try:
        yield dev
    finally:
        try:
            if dev.running is not None:
                dev.stop()
        finally:
            stop_leftovers(dev.root)


@pytest.fixture
def dev(shared: SharedDev) -> SharedDev:
    """The module's dev cluster, running."""
    shared.ensure()
    return shared


@pytest.fixture
def dev_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for a test's own `hsmnode dev`: no process of it outlives the test."""
    root = tmp_path / "dev"
    try:
        yield root
    finally:
        stop_leftovers(root)


@pytest.mark.timeout(300)  # a hang guard: ~35 CLI processes, each ~3 s at load 30
def test_dev_starts_a_ready_cluster_and_brings_it_back_with_its_state(dev: SharedDev) -> None:
    # the module's first test: the cluster is the one `hsmnode dev` just created, its demo untouched
    described = dev.described
    dev_dir = dev.root
    try:
        status = described["status"]
        assert isinstance(status, dict)
        roles = sorted(m["role"] for m in status["members"])
        assert roles == ["follower", "follower", "leader"]
        profile = dev_dir / "profile.json"

        shown = run("cluster", "status", "--json", profile=profile)
        assert shown.returncode == 0, shown.stderr
        data = json.loads(shown.stdout)
        assert set(data) == {"cluster_id", "leader", "term", "removed_from", "members"}
        assert data["removed_from"] == ""
        assert [set(m) for m in data["members"]] == [
            {"id", "address", "role", "applied_index", "lag", "voter", "listed", "state_digest"}
        ] * 3
        assert all(m["state_digest"] for m in data["members"])  # members compare states by it
        assert data["leader"] in {m["id"] for m in data["members"]}

        demo = described["demo"]
        assert isinstance(demo, dict)
        login = run("login", "admin", "--password", demo["users"]["admin"], "--json", profile=profile)
        assert login.returncode == 0, login.stderr
        assert json.loads(login.stdout)["role"] == "admin"
        assert oct((dev_dir / "profile.sessions.json").stat().st_mode & 0o777) == "0o600"

        noted = run("audit", "note", "kept across restarts", "--json", profile=profile)
        assert noted.returncode == 0, noted.stderr
        assert json.loads(noted.stdout)["seq"] >= 2

        users = run("user", "list", "--json", profile=profile)
        assert {u["name"] for u in json.loads(users.stdout)} == {"admin", "operator", "monitor", "audit"}
        slots = json.loads(run("session", "slots", "--json", profile=profile).stdout)
        assert slots["client"] == "demo-client"
        assert [(x["partition"], x["kind"]) for x in slots["slots"]] == [
            ("demo", "partition"),
            ("demo-ring", "keyring"),
        ]
        assert slots["slots"][0]["initialized"] is True
        opened = run(
            "session",
            "open",
            "demo",
            "--role",
            "cu",
            "--password",
            demo["partition"]["cu_password"],
            "--json",
            profile=profile,
        )
        assert opened.returncode == 0, opened.stderr
        assert json.loads(opened.stdout)["role"] == "CU"
    finally:
        err, code = dev.stop()
    assert "stopped." in err
    assert code == 0

    described2 = dev.start("--base-port", str(dev.base))  # it stays up for the module's next tests
    assert described2["cluster_id"] == described["cluster_id"]
    profile = dev_dir / "profile.json"
    demo = described2["demo"]
    assert isinstance(demo, dict)
    assert run("login", "audit", "--password", demo["users"]["audit"], profile=profile).returncode == 0
    elevated = run(
        "hsm", "login", "--auditor", "--password", demo["hsm"]["auditor_password"], profile=profile
    )
    assert elevated.returncode == 0, elevated.stderr
    # the CU session opened before the restart is still valid: state and epochs survived
    assert run("session", "show", "demo", profile=profile).returncode == 0
    # closing a cached session the members no longer accept (here: its token spoiled, as after
    # expiry) still drops it from the profile
    cache = dev_dir / "profile.sessions.json"
    sessions = json.loads(cache.read_text())
    token = sessions["partitions"]["demo"]["token"]
    sessions["partitions"]["demo"]["token"] = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    cache.write_text(json.dumps(sessions))
    again = run("session", "close", "demo", profile=profile)
    assert again.returncode == 0, again.stderr
    assert "had already ended" in again.stdout
    assert "demo" not in json.loads(cache.read_text()).get("partitions", {})
    listed = run("audit", "list", "--json", profile=profile)
    assert listed.returncode == 0, listed.stderr
    assert "kept across restarts" in [r["detail"] for r in json.loads(listed.stdout)["records"]]
    verified = run("audit", "verify", "--json", profile=profile)
    assert json.loads(verified.stdout)["ok"] is True


def test_cli_password_prompt_reads_stdin_and_errors_are_one_line(dev: SharedDev) -> None:
    profile = dev.profile
    env = dict(os.environ, HSMNODE_PROFILE=str(profile))
    piped = subprocess.run(
        [*HSMNODE, "login", "monitor"],
        input=dev.demo["users"]["monitor"] + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert piped.returncode == 0, piped.stderr
    denied = run("user", "add", "mallory", "--role", "admin", "--password", "Mallory-pw-1", profile=profile)
    assert denied.returncode == 1
    assert (
        denied.stderr.strip()
        == "error: PERMISSION_DENIED: user 'monitor' (role monitor) may not run user.add"
    )
    wrong = run("login", "admin", "--password", "Wrong-pass-1", profile=profile)
    assert wrong.returncode == 1 and "UNAUTHENTICATED: wrong user name or password" in wrong.stderr
    # a new user's 1 MB name was told "the login.record command would be 1048826 bytes" (argv holds 100 kB)
    huge = run("login", "u" * 100_000, "--password", "Wrong-pass-1", profile=profile)
    assert huge.returncode == 1 and len(huge.stderr.strip().splitlines()) == 1
    assert (
        f"INVALID_ARGUMENT: user name '{'u' * 40}'... (100000 characters) is too long: "
        "a user name is 1-32 characters" in huge.stderr
    )


def test_cli_errors_are_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    missing = run("cluster", "status", profile=tmp_path / "none.json")
    assert missing.returncode == 1
    assert (
        "profile" in missing.stderr and "does not exist" in missing.stderr and "hsmnode dev" in missing.stderr
    )
    as_json = run("cluster", "status", "--json", profile=tmp_path / "none.json")
    assert json.loads(as_json.stdout)["error"]["code"] == "PROFILE"


def test_dev_refuses_a_busy_port(dev_dir: Path) -> None:
    import socket

    base = free_base_port(3)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", base + 1))
        blocker.listen()
        result = subprocess.run(
            [*HSMNODE, "dev", "--dir", str(dev_dir), "--base-port", str(base)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"port(s) {base + 1} on 127.0.0.1 are in use" in result.stderr


def test_readme_sdk_example_runs_as_written(dev: SharedDev) -> None:
    """The README promises its SDK example runs against `make run`'s cluster (`hsmnode-dev` in the
    working directory): run it."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## SDK") :]
    snippet = section[
        section.index("```python") + len("```python") : section.index("```", section.index("```python") + 3)
    ]
    assert dev.root.name == "hsmnode-dev"
    result = subprocess.run(
        [sys.executable, "-c", snippet], cwd=dev.root.parent, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert (
        '"cluster_id"' in result.stdout.replace("'", '"')
        and "SessionInfo(partition='demo', role='CU'" in result.stdout
    )


@pytest.mark.timeout(300)  # a hang guard: ~35 CLI processes, each ~3 s at load 30
def test_cli_walkthrough_users_hsm_keys_keyrings_and_m_of_n(dev: SharedDev, tmp_path: Path) -> None:
    """The README's CLI surface end to end, as a user types it (with --json where it exists)."""
    demo = dev.demo
    p = dev.profile

    def ok(*args: str) -> str:
        result = run(*args, profile=p)
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout

    users, hsm, part = demo["users"], demo["hsm"], demo["partition"]
    ok("login", "admin", "--password", users["admin"])
    ok("user", "add", "carol", "--role", "operator", "--password", "Carol-pw-12")
    assert "carol" in {u["name"] for u in json.loads(ok("user", "list", "--json"))}
    ok("role", "add", "helpdesk", "--command", "user.list")
    assert json.loads(ok("role", "show", "helpdesk", "--json"))["commands"] == ["user.list"]
    ok("hsm", "login", "--password", hsm["so_password"])
    ok("partition", "create", "vault", "--requires-authorization")
    ok("hsm", "logout")
    ok("client", "assign", "demo-client", "vault")
    assert "vault" in json.loads(ok("client", "show", "demo-client", "--json"))["partitions"]
    # keys and crypto in a CO session
    ok("session", "open", "demo", "--role", "co", "--password", part["co_password"])
    ok(
        "key",
        "generate",
        "sig1",
        "--type",
        "EC",
        "--size",
        "P-256",
        "--usage",
        "sign",
        "--usage",
        "verify",
        "--on",
        "demo",
    )
    # Ed25519 has one size, so --size may be left out; other types need it. Without --mechanism,
    # sign and verify take the key type's (Ed25519 here, not ECDSA-SHA256)
    ed = json.loads(
        ok(*shlex.split("key generate ed1 --on demo --type Ed25519 --usage sign --usage verify --json"))
    )
    assert (ed["key_type"], ed["size"]) == ("Ed25519", "255")
    no_size = run(*shlex.split("key generate aes0 --on demo --type AES --usage encrypt"), profile=p)
    assert no_size.returncode == 2 and "--size is needed for an AES key (128 or 256)" in no_size.stderr
    msg, sig = tmp_path / "ed-msg", tmp_path / "ed-sig"
    msg.write_bytes(b"ed")
    ok(*shlex.split(f"crypto sign ed1 --on demo --in {msg} --out {sig}"))
    assert json.loads(
        ok(*shlex.split(f"crypto verify ed1 --on demo --in {msg} --signature {sig} --json"))
    ) == {"valid": True}
    # issue 13's rename: --extractable, and --json answers both names for one release (the
    # deprecated --exportable: tests/unit/test_extractable_rename.py)
    made = json.loads(
        ok(
            "key",
            "generate",
            "wrap1",
            "--on",
            "demo",
            "--type",
            "AES",
            "--size",
            "256",
            "--usage",
            "wrap",
            "--extractable",
            "--json",
        )
    )
    assert (made["extractable"], made["exportable"]) == (True, True)
    (tmp_path / "msg").write_bytes(b"hello")
    ok(
        "crypto",
        "sign",
        "sig1",
        "--on",
        "demo",
        "--in",
        str(tmp_path / "msg"),
        "--out",
        str(tmp_path / "sig"),
    )
    assert json.loads(
        ok(
            "crypto",
            "verify",
            "sig1",
            "--on",
            "demo",
            "--in",
            str(tmp_path / "msg"),
            "--signature",
            str(tmp_path / "sig"),
            "--json",
        )
    ) == {"valid": True}
    assert "BEGIN PUBLIC KEY" in ok("key", "export", "sig1", "--on", "demo")
    assert len(ok("crypto", "random", "16", "--hex", "--on", "demo").strip()) == 32
    # keyrings as the cluster SO
    cpart = demo["cluster_partition"]
    ok(
        "session",
        "open",
        "cluster",
        "--role",
        "po",
        "--client",
        "cluster-so",
        "--password",
        cpart["po_password"],
    )
    assert [r["label"] for r in json.loads(ok("keyring", "list", "--json"))] == ["demo-ring"]
    # M-of-N on the new partition
    ok(
        "partition",
        "init",
        "vault",
        "--label",
        "vault",
        "--cloning-domain",
        "d",
        "--po-password",
        "Vault-po-12",
    )
    ok("session", "open", "vault", "--role", "po", "--password", "Vault-po-12")
    ok("partition", "role-init", "vault", "--role", "co", "--password", "Vault-co-00")
    ok(
        "session",
        "passwd",
        "vault",
        "--role",
        "co",
        "--old-password",
        "Vault-co-00",
        "--new-password",
        "Vault-co-11",
    )
    ok("session", "open", "vault", "--role", "co", "--password", "Vault-co-11")
    ok(
        "card",
        "new-set",
        "--count",
        "3",
        "--threshold",
        "2",
        "--label-prefix",
        "vc",
        "--out",
        str(tmp_path / "cards"),
    )
    cards = [str(tmp_path / "cards" / f"vc-{i}.card") for i in (1, 2)]
    ok(
        "auth",
        "associate",
        "--on",
        "vault",
        "--set",
        str(tmp_path / "cards" / "set.json"),
        "--card",
        cards[0],
        "--card",
        cards[1],
        "--password",
        "Vault-co-11",
    )
    assert json.loads(ok("auth", "show", "--on", "vault", "--json"))["state"] == "ASSOCIATED"
    ok(
        "auth",
        "session-authorize",
        "--on",
        "vault",
        "--card",
        cards[0],
        "--card",
        cards[1],
        "--password",
        "Vault-co-11",
    )
    shown = json.loads(ok("auth", "show", "--on", "vault", "--json"))
    assert shown["state"] == "ASSOCIATED" and shown["session_authorized"] is True
    # the auditor reads the log, which names the cards
    ok("login", "audit", "--password", users["audit"])
    ok("hsm", "login", "--auditor", "--password", hsm["auditor_password"])
    assert json.loads(ok("audit", "verify", "--json"))["ok"] is True
    records = json.loads(ok("audit", "list", "--limit", "1000", "--json"))["records"]
    assert any(r["command"] == "auth.change" and "with cards vc-1, vc-2" in r["detail"] for r in records)


def test_dev_grows_and_shrinks_an_existing_cluster_to_nodes(dev: SharedDev) -> None:
    # the module's cluster exists (3 members): stopped, and started again with --nodes 4
    dev.stop()
    described = dev.start("--nodes", "4")
    status = described["status"]
    assert isinstance(status, dict)
    assert sorted(m["id"] for m in status["members"]) == ["node1", "node2", "node3", "node4"]
    assert sorted(m["role"] for m in status["members"]).count("leader") == 1
    assert dev.running is not None
    assert "added member node4" in dev.running.stderr()


def test_a_standalone_dev_node_joins_the_dev_cluster_through_the_cli(dev: SharedDev) -> None:
    # the module's last test: the joined member stays in the cluster's configuration
    dev_dir = dev.root
    lone: subprocess.Popen[str] | None = None
    try:
        lone_port = free_base_port(1)  # once the cluster holds its ports
        lone = subprocess.Popen(
            [
                *HSMNODE,
                "dev",
                "--dir",
                str(dev_dir),
                "--standalone",
                "lone",
                "--base-port",
                str(lone_port),
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        STARTED.append((dev_dir, lone))
        demo = dev.demo
        profile = dev.profile
        assert lone.stdout is not None
        lines: list[str] = []
        for line in lone.stdout:
            lines.append(line)
            if line.rstrip() == "}":
                break
        node = json.loads("".join(lines))
        assert node["id"] == "lone" and node["address"] == f"127.0.0.1:{lone_port}"

        # the factory password must be changed before the node's admin can take part in a join
        first = run(
            "login", "admin", "--endpoint", node["address"], "--password", "PASSWORD",
            "--new-password", "Lone-admin-1", "--json", profile=profile,
        )  # fmt: skip
        assert first.returncode == 0, first.stdout + first.stderr
        members = {
            m["id"]: m["address"]
            for m in json.loads(run("cluster", "status", "--json", profile=profile).stdout)["members"]
        }
        args = [
            "cluster", "join", "--node", node["address"], "--cluster", members["node1"],
            "--node-password", "Lone-admin-1", "--cluster-password", demo["users"]["admin"],
        ]  # fmt: skip
        dry = run(*args, "--dry-run", "--json", profile=profile)
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert json.loads(dry.stdout)["joined"] is False
        joined = run(*args, "--json", profile=profile)
        assert joined.returncode == 0, joined.stdout + joined.stderr
        report = json.loads(joined.stdout)
        assert report["joined"] is True and Path(report["archive"]).is_file()
        assert Path(report["archive"]).parent == Path(node["data_dir"])

        def listed() -> set[str]:
            shown = run("cluster", "status", "--json", profile=profile)
            return {
                m["id"] for m in json.loads(shown.stdout)["members"] if m["role"] in ("leader", "follower")
            }

        deadline = time.monotonic() + 30.0
        while listed() != {*members, "lone"}:
            assert time.monotonic() < deadline, listed()
            time.sleep(0.2)
        # the cluster's admin logs in on the joined node
        on_lone = run(
            "login", "admin", "--endpoint", node["address"], "--password", demo["users"]["admin"], "--json",
            profile=profile,
        )  # fmt: skip
        assert on_lone.returncode == 0, on_lone.stdout + on_lone.stderr
    finally:
        if lone is not None:
            if lone.poll() is None:
                lone.send_signal(signal.SIGTERM)
            lone.communicate(timeout=30)
