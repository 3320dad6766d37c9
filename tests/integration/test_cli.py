"""The CLI as a user meets it: `hsmnode dev` in the foreground, then `cluster status` and `audit` with --json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import free_base_port

pytestmark = pytest.mark.cluster

HSMNODE = [sys.executable, "-m", "hsmnode"]


class Dev:
    """`hsmnode dev --json` running in the background; reads the description it prints when ready."""

    def __init__(self, root: Path, base_port: int) -> None:
        self.proc = subprocess.Popen(
            [*HSMNODE, "dev", "--dir", str(root), "--base-port", str(base_port), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started = time.monotonic()

    def ready(self) -> tuple[dict[str, object], float]:
        assert self.proc.stdout is not None
        lines: list[str] = []
        for line in self.proc.stdout:
            lines.append(line)
            if line.rstrip() == "}":
                return json.loads("".join(lines)), time.monotonic() - self.started
        raise AssertionError(f"hsmnode dev exited before it was ready: {self.stop()}")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _out, err = self.proc.communicate(timeout=30)
        return err


def run(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HSMNODE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, HSMNODE_PROFILE=str(profile)),
    )


@pytest.fixture
def dev_dir(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "dev"
    yield root
    # whatever happened, no member of this cluster outlives the test
    subprocess.run(["pkill", "-KILL", "-f", f"--config {root}"], check=False)


def test_dev_starts_a_ready_cluster_and_brings_it_back_with_its_state(dev_dir: Path) -> None:
    base = free_base_port(3)
    dev = Dev(dev_dir, base)
    try:
        described, seconds = dev.ready()
        assert seconds < 10.0
        status = described["status"]
        assert isinstance(status, dict)
        roles = sorted(m["role"] for m in status["members"])
        assert roles == ["follower", "follower", "leader"]
        profile = dev_dir / "profile.json"

        shown = run("cluster", "status", "--json", profile=profile)
        assert shown.returncode == 0, shown.stderr
        data = json.loads(shown.stdout)
        assert set(data) == {"cluster_id", "leader", "term", "members"}
        assert [set(m) for m in data["members"]] == [
            {"id", "address", "role", "applied_index", "lag", "voter", "listed"}
        ] * 3
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
        err = dev.stop()
    assert "stopped." in err
    assert dev.proc.returncode == 0

    again = Dev(dev_dir, base)
    try:
        described2, _ = again.ready()
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
        listed = run("audit", "list", "--json", profile=profile)
        assert listed.returncode == 0, listed.stderr
        assert "kept across restarts" in [r["detail"] for r in json.loads(listed.stdout)["records"]]
        verified = run("audit", "verify", "--json", profile=profile)
        assert json.loads(verified.stdout)["ok"] is True
    finally:
        again.stop()


def test_cli_password_prompt_reads_stdin_and_errors_are_one_line(dev_dir: Path) -> None:
    dev = Dev(dev_dir, free_base_port(3))
    try:
        described, _ = dev.ready()
        profile = dev_dir / "profile.json"
        demo = described["demo"]
        assert isinstance(demo, dict)
        env = dict(os.environ, HSMNODE_PROFILE=str(profile))
        piped = subprocess.run(
            [*HSMNODE, "login", "monitor"],
            input=demo["users"]["monitor"] + "\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert piped.returncode == 0, piped.stderr
        denied = run(
            "user", "add", "mallory", "--role", "admin", "--password", "Mallory-pw-1", profile=profile
        )
        assert denied.returncode == 1
        assert (
            denied.stderr.strip()
            == "error: PERMISSION_DENIED: user 'monitor' (role monitor) may not run user.add"
        )
        wrong = run("login", "admin", "--password", "Wrong-pass-1", profile=profile)
        assert wrong.returncode == 1 and "UNAUTHENTICATED: wrong user name or password" in wrong.stderr
    finally:
        dev.stop()


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


def test_readme_sdk_example_runs_as_written(tmp_path: Path) -> None:
    """The README promises its SDK example runs against `make run`'s cluster: run it."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## SDK") :]
    snippet = section[
        section.index("```python") + len("```python") : section.index("```", section.index("```python") + 3)
    ]
    root = tmp_path / "hsmnode-dev"
    subprocess.run(["pkill", "-KILL", "-f", f"--config {root}"], check=False)
    dev = Dev(root, free_base_port(3))
    try:
        dev.ready()
        result = subprocess.run(
            [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert (
            '"cluster_id"' in result.stdout.replace("'", '"')
            and "SessionInfo(partition='demo', role='CU'" in result.stdout
        )
    finally:
        dev.stop()
        subprocess.run(["pkill", "-KILL", "-f", f"--config {root}"], check=False)


def test_cli_walkthrough_users_hsm_keys_keyrings_and_m_of_n(dev_dir: Path, tmp_path: Path) -> None:
    """The README's CLI surface end to end, as a user types it (with --json where it exists)."""
    dev = Dev(dev_dir, free_base_port(3))
    try:
        described, _ = dev.ready()
        demo = described["demo"]
        assert isinstance(demo, dict)
        p = dev_dir / "profile.json"

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
    finally:
        dev.stop()


def test_dev_grows_and_shrinks_an_existing_cluster_to_nodes(dev_dir: Path) -> None:
    base = free_base_port(4)
    first = Dev(dev_dir, base)
    try:
        first.ready()
    finally:
        first.stop()
    grown = subprocess.Popen(
        [*HSMNODE, "dev", "--dir", str(dev_dir), "--nodes", "4", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    dev = Dev.__new__(Dev)
    dev.proc, dev.started = grown, time.monotonic()
    try:
        described, _ = dev.ready()
        status = described["status"]
        assert isinstance(status, dict)
        assert sorted(m["id"] for m in status["members"]) == ["node1", "node2", "node3", "node4"]
        assert sorted(m["role"] for m in status["members"]).count("leader") == 1
    finally:
        err = dev.stop()
    assert "added member node4" in err


def test_a_standalone_dev_node_joins_the_dev_cluster_through_the_cli(dev_dir: Path) -> None:
    base = free_base_port(3)
    dev = Dev(dev_dir, base)
    lone: subprocess.Popen[str] | None = None
    try:
        described, _ = dev.ready()
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
        demo = described["demo"]
        assert isinstance(demo, dict)
        profile = dev_dir / "profile.json"
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
        while listed() != {"node1", "node2", "node3", "lone"}:
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
        dev.stop()
