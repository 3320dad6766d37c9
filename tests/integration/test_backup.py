"""Cluster backup and restore, through the CLI as an operator runs it and the SDK as an application
sees the result: backup under write load, stop every member, restore into a new directory, start;
keys sign and verify as before, users log in, the audit chain verifies, the header's counts match."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hsmnode.backup import fileformat
from hsmnode.client import (
    AuditRecord,
    ConsoleClient,
    FailedPrecondition,
    HsmClient,
    HsmError,
    HsmRoleSession,
    PermissionDenied,
    Tls,
)
from hsmnode.crypto.keys import Smk
from hsmnode.ops.devcluster import DevCluster
from tests.integration.conftest import free_base_port, start_cluster
from tests.integration.helpers import as_auditor, eventually, new_partition

pytestmark = pytest.mark.cluster

HSMNODE = [sys.executable, "-m", "hsmnode"]
MESSAGE = b"signed before the backup"
KEYS = [
    ("bk-ec", "EC", "P-256", "ECDSA-SHA256"),
    ("bk-rsa", "RSA", "2048", "RSA-PSS-SHA256"),
    ("bk-ed", "Ed25519", "255", "Ed25519"),
]


def cli(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HSMNODE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, HSMNODE_PROFILE=str(profile)),
    )


def app_tls(ca_from: Path, client_from: Path) -> Tls:
    """The demo NTLS client's own certificate (registered in replicated state), trusting a cluster's CA."""
    return Tls.from_files(
        ca_from / "ca.pem", client_from / "demo-client.pem", client_from / "demo-client.key"
    )


def all_records(auditor: HsmRoleSession) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    while True:
        page = auditor.audit_list(after_seq=len(records))
        records += page.records
        if len(records) >= page.total or not page.records:
            return records


def test_backup_under_load_restores_into_a_new_cluster_that_serves_every_key_and_user(tmp_path: Path) -> None:
    source = start_cluster(tmp_path / "source")
    restored: DevCluster | None = None
    try:
        demo = source.demo()
        assert demo is not None
        part, ring = demo["partition"], demo["keyring"]
        signatures: dict[str, tuple[str, str, bytes]] = {}  # label -> (container, mechanism, signature)
        with source.app_client() as app:
            with app.open_session(part["name"], part["co_password"], role="CO") as co:
                for label, kind, size, mechanism in KEYS:
                    key = co.generate_key(label, kind, size, usage=["sign", "verify"])
                    signatures[label] = (
                        part["name"],
                        mechanism,
                        co.sign(key.id, MESSAGE, mechanism=mechanism),
                    )
            with app.open_session(ring["label"], ring["krco_password"], role="KRCO") as krco:
                key = krco.generate_key("bk-ring", "EC", "P-384", usage=["sign", "verify"])
                signatures["bk-ring"] = (
                    ring["label"],
                    "ECDSA-SHA384",
                    krco.sign(key.id, MESSAGE, mechanism="ECDSA-SHA384"),
                )
        # issue 11's replicated state: partitions activated with and without auto_activation, an
        # M-of-N partition for the local console, the Auditor's audit categories
        activated = {"bk-ped": new_partition(source, "bk-ped"), "bk-auto": new_partition(source, "bk-auto")}
        new_partition(source, "bk-mofn", requires_authorization=True)
        with source.app_client() as app:
            for name, pw in activated.items():
                with app.open_session(name, pw["po"], role="PO") as po:
                    po.set_policy("activation_required", 1)
                    po.set_policy("auto_activation", int(name == "bk-auto"))
                app.activate_partition(name, pw["co"])
                app.open_session(name, pw["co"], role="CO").close()  # activated on the source
        source_auditor = as_auditor(source)
        with source_auditor.client:
            assert source_auditor.set_audit_config("key_usage", "failure")["key_usage"] == "failure"
        with source.client() as client, client.login("admin", demo["users"]["admin"]) as admin:
            admin.add_user("bob", role="monitor", password="Bob-initial-1")
        with source.client() as client:
            client.change_password("bob", "Bob-initial-1", "Bob-changed-22")
        profile = source.profile_path
        login = cli("login", "admin", "--password", demo["users"]["admin"], profile=profile)
        assert login.returncode == 0, login.stderr

        # write load: audit notes from another thread, before, during and after the backup
        stop = threading.Event()
        acked: list[int] = []

        def write_load() -> None:
            with source.client() as client, client.login("operator", demo["users"]["operator"]) as op:
                while not stop.is_set():
                    with contextlib.suppress(HsmError):  # a failed write is not acknowledged
                        acked.append(op.audit_note(f"load {len(acked)}").seq)

        writer = threading.Thread(target=write_load)
        writer.start()
        eventually(lambda: len(acked) >= 5, 20.0, "writes under way")
        acked_before = list(acked)
        backup_file = tmp_path / "cluster.hsmbackup"
        took = cli("cluster", "backup", "--out", str(backup_file), "--json", profile=profile)
        eventually(lambda: len(acked) >= len(acked_before) + 5, 20.0, "writes after the backup")
        stop.set()
        writer.join(30)
        assert took.returncode == 0, took.stderr
        header = json.loads(took.stdout)
        assert header["cluster_id"] == source.cluster_id and header["key_count"] == len(KEYS) + 1
        assert header["member_count"] == 3 and header["index"] > 0
        assert oct(backup_file.stat().st_mode & 0o777) == "0o600"
        assert MESSAGE not in backup_file.read_bytes() and b"bob" not in backup_file.read_bytes()
        smk = source.members[0].data_dir / "smk.key"
        source.stop()

        target = tmp_path / "restored"
        done = cli(
            "cluster",
            "restore",
            "--backup",
            str(backup_file),
            "--dir",
            str(target),
            "--smk",
            str(smk),
            "--base-port",
            str(free_base_port(3)),
            "--json",
            profile=profile,
        )
        assert done.returncode == 0, done.stderr
        described = json.loads(done.stdout)
        assert described["cluster_id"] != source.cluster_id
        assert described["restored_from"]["index"] == header["index"]
        restored = DevCluster.open(target)
        for member in restored.members:  # scheduled backups too: every second, keep 2
            with member.config_path.open("a") as f:
                f.write("\n[backup]\ninterval = 1\nkeep = 2\n")
        restored.start()
        restored.wait_for_leader(timeout=30.0)

        # every key signs and verifies as before, through the registered NTLS client certificate
        with HsmClient([m.grpc for m in restored.members], app_tls(target, source.root)) as app:
            for label, (container, mechanism, signature) in signatures.items():
                role, password = (
                    ("CO", part["co_password"])
                    if container == part["name"]
                    else ("KRCO", ring["krco_password"])
                )
                with app.open_session(container, password, role=role) as session:
                    (key,) = session.list_keys(label=label)
                    assert session.verify(key.id, MESSAGE, signature, mechanism=mechanism)
                    fresh = session.sign(key.id, b"after the restore", mechanism=mechanism)
                    assert session.verify(key.id, b"after the restore", fresh, mechanism=mechanism)

            # activation is lost on members that started after it (all of a restored cluster's),
            # unless auto_activation keeps it (DOMAIN.md §3)
            with pytest.raises(FailedPrecondition, match="'bk-ped' requires activation"):
                app.open_session("bk-ped", activated["bk-ped"]["co"], role="CO")
            app.open_session("bk-auto", activated["bk-auto"]["co"], role="CO").close()

        # the local console serves on a restored member (DOMAIN.md §5)
        with ConsoleClient(restored.members[0].data_dir / "console.sock") as console:
            assert console.show("bk-mofn").state == "INITIAL"

        # users log in with their passwords (admin through the restored cluster's new certificate)
        with restored.client() as client:
            with client.login("bob", "Bob-changed-22") as bob, pytest.raises(PermissionDenied):
                bob.backup(io.BytesIO())  # a monitor may not take backups
            with client.login("admin", demo["users"]["admin"]) as admin:
                users = {u.name for u in admin.list_users()}
                assert len(users) == header["user_count"] and "bob" in users
                assert len(admin.list_partitions()) == header["partition_count"]
            auditor = client.login("audit", demo["users"]["audit"]).hsm_login(
                demo["hsm"]["auditor_password"], role="AU"
            )
            check = auditor.audit_verify()
            assert check.ok, check.problem
            assert auditor.audit_config()["key_usage"] == "failure"  # the Auditor's setting came along
            records = all_records(auditor)
            commands = [r.command for r in records]
            assert (
                commands[header["audit_length"]] == "cluster.restore"
            )  # the first record after the backup's
            assert "cluster.backup" in commands[: header["audit_length"]]
            notes = {r.seq for r in records if r.command == "audit.note"}
            assert set(acked_before) <= notes  # acknowledged before the backup began: in it
            assert records[header["audit_length"] - 1].seq == header["audit_length"]

        # the leader took scheduled backups of the restored cluster and kept the newest 2
        def scheduled() -> list[Path]:
            return sorted(
                p for m in restored.members for p in (m.data_dir / "backups").glob("backup-*.hsmbackup")
            )

        def taken() -> int:
            return sum(
                1
                for r in all_records(auditor)
                if r.command == "cluster.backup" and r.actor.startswith("node:")
            )

        eventually(lambda: taken() >= 3 and scheduled(), 30.0, "three scheduled backups")
        files = scheduled()
        assert 1 <= len(files) <= 2 * len(restored.members)
        by_member = {f.parent.parent.parent.name for f in files}
        assert all(
            len(list((restored.member(m).data_dir / "backups").glob("*.hsmbackup"))) <= 2 for m in by_member
        )
        newest, state = fileformat.open_backup(files[-1].read_bytes(), Smk(bytes.fromhex(smk.read_text())))
        assert newest.cluster_id == restored.cluster_id and state.cluster_id == restored.cluster_id
    finally:
        source.stop()
        if restored is not None:
            restored.stop()
            assert not any(restored.running(m.id) for m in restored.members)
