"""Key actions leave audit records (DOMAIN.md §6; issue 11, failure 1), through real members and the CLI:
exports (allowed and refused) in the cluster chain, key use in the serving member's key-usage chain, both
chains verified on every member, categories set by the Auditor. Partition backup and restore (Luna
semantics): same cloning domain only, private keys by policy, all or nothing, audited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hsmnode.client import (
    AlreadyExists,
    FailedPrecondition,
    HsmError,
    HsmRoleSession,
    InvalidArgument,
    PartitionSession,
    PermissionDenied,
)
from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import as_auditor, eventually, new_partition

pytestmark = pytest.mark.cluster

HSMNODE = [sys.executable, "-m", "hsmnode"]
DATA = b"audited payment batch"


def demo_of(cluster: DevCluster) -> dict[str, Any]:
    demo = cluster.demo()
    assert demo is not None
    return demo


def cli(
    cluster: DevCluster, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HSMNODE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, HSMNODE_PROFILE=str(cluster.profile_path), **(env or {})),
    )


def auditor_cli(cluster: DevCluster, tmp_path: Path) -> None:
    """Log the CLI in as the Auditor, with passwords from a file and the environment."""
    demo = demo_of(cluster)
    secret = tmp_path / "audit.pw"
    secret.write_text(demo["users"]["audit"] + "\n")
    assert cli(cluster, "login", "audit", "--password-file", str(secret)).returncode == 0
    role = cli(
        cluster, "hsm", "login", "--auditor", env={"HSMNODE_HSM_PASSWORD": demo["hsm"]["auditor_password"]}
    )
    assert role.returncode == 0, role.stderr


def co_on(cluster: DevCluster, member: str) -> PartitionSession:
    app = cluster.app_client(member)
    session = app.open_session("demo", demo_of(cluster)["partition"]["co_password"], role="CO")
    session.keep = True
    return session


def test_exports_refusals_and_key_use_are_in_the_audit_log_with_actor_key_partition_member_and_outcome(
    trio: DevCluster, tmp_path: Path
) -> None:
    co = co_on(trio, "node2")
    with co.client:
        sig = co.generate_key("audited-sig", "EC", "P-256", usage=["sign", "verify"])
        wrapper = co.generate_key("audited-kek", "AES", "256", usage=["wrap", "unwrap"])
        secret = co.generate_key("audited-secret", "AES", "256", usage=["encrypt"], extractable=True)
        signature = co.sign(sig.id, DATA, mechanism="ECDSA-SHA256")
        assert co.verify(sig.id, DATA, signature, mechanism="ECDSA-SHA256")
        assert co.export_public_key(sig.id).startswith(b"-----BEGIN PUBLIC KEY-----")
        assert co.wrap_key(wrapper.id, secret.id)
        with pytest.raises(PermissionDenied, match="not extractable"):
            co.wrap_key(wrapper.id, sig.id)
        with pytest.raises(HsmError):
            co.unwrap_key(
                wrapper.id, b"not a wrapped key at all", label="junk", key_type="AES", usage=["encrypt"]
            )
        with pytest.raises(PermissionDenied, match="lacks the usage flag 'sign'"):
            co.sign(secret.id, DATA, mechanism="ECDSA-SHA256")
        actor_prefix = f"client:{co.client.fingerprint}#"

    auditor_cli(trio, tmp_path)
    listed = cli(trio, "audit", "list", "--limit", "1000", "--json")
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)["records"]

    def find(command: str, key: str, outcome: str, chain: str) -> dict[str, Any]:
        found = [
            r
            for r in records
            if r["command"] == command and r["key"] == key and r["outcome"] == outcome and r["chain"] == chain
        ]
        assert found, f"no {outcome} {command} of {key} in the {chain} chain: {records[-12:]}"
        return found[-1]

    signed = find("key.sign", sig.id, "ok", "member")
    assert signed["member"] == "node2" and signed["container"] == "partition:demo"
    assert signed["actor"].startswith(actor_prefix) and "ECDSA-SHA256" in signed["detail"]
    assert find("key.verify", sig.id, "ok", "member")["member"] == "node2"
    refused_use = find("key.sign", secret.id, "PERMISSION_DENIED", "member")
    assert "lacks the usage flag" in refused_use["detail"]
    exported = find("key.export", sig.id, "ok", "cluster")
    assert exported["member"] == "node2" and exported["container"] == "partition:demo"
    assert exported["actor"].startswith(actor_prefix) and exported["category"] == "key_management"
    assert find("key.wrap", secret.id, "ok", "cluster")["member"] == "node2"
    refused = find("key.wrap", sig.id, "PERMISSION_DENIED", "cluster")
    assert "not extractable" in refused["detail"]
    unwrap = [r for r in records if r["command"] == "key.unwrap" and r["outcome"] == "INVALID_ARGUMENT"]
    assert unwrap and unwrap[-1]["container"] == "partition:demo"

    verified = cli(trio, "audit", "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] is True
    by_member = {m["member"]: m for m in report["members"]}
    assert set(by_member) == {"node1", "node2", "node3"}
    assert all(m["ok"] and m["member_ok"] for m in by_member.values())
    assert by_member["node2"]["member_length"] >= 3

    # --limit counts every chain together: the newest records of them all
    newest = cli(trio, "audit", "list", "--limit", "3", "--json")
    assert newest.returncode == 0, newest.stderr
    three = json.loads(newest.stdout)["records"]
    assert len(three) == 3
    assert min(r["timestamp_ms"] for r in three) >= sorted(r["timestamp_ms"] for r in records)[-3]

    # --chain member reads no cluster chain, so it names no cluster total (it is not 0)
    members_only = cli(trio, "audit", "list", "--chain", "member", "--json")
    assert members_only.returncode == 0, members_only.stderr
    listing = json.loads(members_only.stdout)
    assert listing["total"] is None and listing["member_totals"]["node2"] >= 3
    assert "cluster chain" not in cli(trio, "audit", "list", "--chain", "member").stdout

    # the appliance user audit without the Auditor role: a permission error, not "did not answer"
    secret_file = tmp_path / "audit.pw"
    assert cli(trio, "login", "audit", "--password-file", str(secret_file)).returncode == 0
    denied = cli(trio, "audit", "list", "--chain", "member")
    assert denied.returncode == 1 and denied.stderr.startswith("error: PERMISSION_DENIED: "), denied.stderr
    assert "did not answer" not in denied.stderr
    denied_verify = cli(trio, "audit", "verify", "--json")
    assert denied_verify.returncode == 1
    assert json.loads(denied_verify.stdout)["error"]["code"] == "PERMISSION_DENIED"


def test_the_auditor_chooses_what_key_use_records(trio: DevCluster) -> None:
    co = co_on(trio, "node1")
    auditor = as_auditor(trio, "node1")
    with co.client, auditor.client:
        key = co.generate_key("configured-sig", "EC", "P-256", usage=["sign"])

        def uses_of(outcome: str) -> int:
            records = auditor.audit_list(limit=1000, chain="member").records
            return sum(1 for r in records if r.key == key.id and r.outcome == outcome)

        try:
            assert auditor.set_audit_config("key_usage", "failure")["key_usage"] == "failure"
            eventually(lambda: auditor.audit_config()["key_usage"] == "failure", 5.0, "the setting applied")
            co.sign(key.id, DATA, mechanism="ECDSA-SHA256")
            with pytest.raises(HsmError):
                co.sign(key.id, DATA, mechanism="RSA-PSS-SHA256")
            assert (uses_of("ok"), uses_of("INVALID_ARGUMENT")) == (0, 1)
            auditor.set_audit_config("key_usage", "none")
            eventually(lambda: auditor.audit_config()["key_usage"] == "none", 5.0, "the setting applied")
            with pytest.raises(HsmError):
                co.sign(key.id, DATA, mechanism="RSA-PSS-SHA256")
            assert uses_of("INVALID_ARGUMENT") == 1
        finally:
            auditor.set_audit_config("key_usage", "all")
        eventually(lambda: auditor.audit_config()["key_usage"] == "all", 5.0, "the setting applied")
        co.sign(key.id, DATA, mechanism="ECDSA-SHA256")
        assert uses_of("ok") == 1
        cluster_records = auditor.audit_list(limit=1000).records
        assert any(
            r.command == "audit.config" and "key_usage records none" in r.detail for r in cluster_records
        )


def test_a_wrong_audit_setting_or_role_is_refused(trio: DevCluster) -> None:
    auditor = as_auditor(trio)
    with auditor.client:
        with pytest.raises(HsmError, match="unknown audit category 'everything'"):
            auditor.set_audit_config("everything", "all")
        with pytest.raises(HsmError, match="audit level must be one of none, failure, success, all"):
            auditor.set_audit_config("key_usage", "loud")
        with pytest.raises(HsmError, match="chain must be one of cluster, member"):
            auditor.audit_list(chain="elsewhere")
    demo = demo_of(trio)
    with trio.client() as client, client.login("admin", demo["users"]["admin"]) as admin:
        admin.keep = True  # a logout would end the cached admin sessions of other tests
        as_admin_role = HsmRoleSession(client, admin.token, "admin", "admin", 0)
        as_admin_role.keep = True
        with pytest.raises(PermissionDenied, match=r"user 'admin' \(role admin\) may not run audit.config"):
            as_admin_role.set_audit_config("key_usage", "none")


def test_a_tampered_key_usage_log_fails_verification_naming_the_member(
    trio: DevCluster, tmp_path: Path
) -> None:
    co = co_on(trio, "node3")
    with co.client:
        key = co.generate_key("tamper-sig", "EC", "P-256", usage=["sign"])
        co.sign(key.id, DATA, mechanism="ECDSA-SHA256")
    log = trio.member("node3").data_dir / "usage-audit.log"
    original = log.read_bytes()
    lines = original.splitlines(keepends=True)
    lines[0] = lines[0].replace(b'"outcome":"ok"', b'"outcome":"PERMISSION_DENIED"', 1)
    assert lines[0] != original.splitlines(keepends=True)[0]
    log.write_bytes(b"".join(lines))
    try:
        auditor_cli(trio, tmp_path)
        verified = cli(trio, "audit", "verify", "--json")
        assert verified.returncode == 1
        by_member = {m["member"]: m for m in json.loads(verified.stdout)["members"]}
        assert by_member["node3"]["member_ok"] is False and "altered" in by_member["node3"]["member_problem"]
        assert by_member["node1"]["member_ok"] is True
    finally:
        log.write_bytes(original)


# --- partition backup and restore (Luna semantics, DOMAIN.md §1) ------------------------------------------


def test_a_backup_restores_into_a_partition_of_its_cloning_domain_on_another_member_and_signs_identically(
    trio: DevCluster, tmp_path: Path
) -> None:
    demo = demo_of(trio)
    twin_co = new_partition(trio, "twin", domain="hsmnode-dev")["co"]
    foreign_co = new_partition(trio, "foreign", domain="elsewhere")["co"]
    co = co_on(trio, "node1")
    with co.client:
        ed = co.generate_key("bk-ed", "Ed25519", "255", usage=["sign", "verify"])
        rsa = co.generate_key("bk-rsa", "RSA", "2048", usage=["sign", "verify"])
        aes = co.generate_key("bk-aes", "AES", "256", usage=["encrypt", "decrypt"])
        ed_sig = co.sign(ed.id, DATA, mechanism="Ed25519")
        rsa_sig = co.sign(rsa.id, DATA, mechanism="RSA-PKCS1-SHA256")
        sealed = co.encrypt(aes.id, DATA, mechanism="AES-GCM")
        source_labels = {k.label for k in co.list_keys()}
    # the CO backs the partition up through the CLI, the password from the environment
    opened = cli(
        trio,
        "session",
        "open",
        "demo",
        "--role",
        "co",
        env={"HSMNODE_PARTITION_PASSWORD": demo["partition"]["co_password"]},
    )
    assert opened.returncode == 0, opened.stderr
    backup_file = tmp_path / "demo.backup"
    made = cli(trio, "partition", "backup", "demo", "--out", str(backup_file), "--json")
    assert made.returncode == 0, made.stderr
    data = backup_file.read_bytes()
    assert oct(backup_file.stat().st_mode & 0o777) == "0o600"
    assert data.startswith(b"HSMNODE-BACKUP-1\n") and b"bk-ed" not in data  # labels are inside the ciphertext
    with trio.app_client("node3") as third, third.open_session("twin", twin_co, role="CO") as twin:
        restored = {k.label: k for k in twin.restore(data)}
        assert set(restored) == source_labels
        assert twin.sign(restored["bk-ed"].id, DATA, mechanism="Ed25519") == ed_sig
        assert twin.sign(restored["bk-rsa"].id, DATA, mechanism="RSA-PKCS1-SHA256") == rsa_sig
        assert (
            twin.decrypt(restored["bk-aes"].id, sealed.ciphertext, iv=sealed.iv, mechanism="AES-GCM") == DATA
        )
        assert restored["bk-ed"].origin == "restored"
    with trio.app_client("node2") as second, second.open_session("foreign", foreign_co, role="CO") as other:
        with pytest.raises(FailedPrecondition, match="cloning domain 'elsewhere'.*'hsmnode-dev'"):
            other.restore(data)
        assert other.list_keys() == []
    auditor = as_auditor(trio)
    with auditor.client:
        records = auditor.audit_list(limit=1000).records
    assert any(
        r.command == "partition.backup" and r.outcome == "ok" and r.container == "partition:demo"
        for r in records
    )
    assert any(
        r.command == "key.restore" and r.outcome == "ok" and r.container == "partition:twin" for r in records
    )
    assert any(
        r.command == "key.restore"
        and r.outcome == "FAILED_PRECONDITION"
        and r.container == "partition:foreign"
        for r in records
    )


def test_bad_backups_and_wrong_roles_restore_nothing(trio: DevCluster) -> None:
    spare = new_partition(trio, "spare", domain="hsmnode-dev")
    co_password, cu_password = spare["co"], spare["cu"]
    no_clone_co = new_partition(trio, "noclone", domain="hsmnode-dev", cloning=False)["co"]
    demo = demo_of(trio)
    with trio.app_client() as app:
        with app.open_session("demo", demo["partition"]["co_password"], role="CO") as source:
            source.generate_key("bad-ec", "EC", "P-256", usage=["sign"])
            source.import_public_key("bad-pub", source.export_public_key("bad-ec"), usage=["verify"])
            data = source.backup()
        with app.open_session("demo", demo["partition"]["cu_password"], role="CU") as cu_source:
            public_only = cu_source.backup()
        with (
            app.open_session("demo", demo["partition"]["po_password"], role="PO") as po,
            pytest.raises(PermissionDenied, match="PO of partition 'demo' may not backup"),
        ):
            po.backup()
        with app.open_session("spare", co_password, role="CO") as spare:
            flipped = bytearray(data)
            flipped[-20] ^= 0x01
            cases = {
                "corrupted": bytes(flipped),
                "truncated": data[: len(data) - 40],
                "cut header": data[:30],
                "not a backup": b"PK\x03\x04 a zip file",
            }
            for what, bad in cases.items():
                with pytest.raises(InvalidArgument) as info:
                    spare.restore(bad)
                assert "backup" in info.value.message, what
            assert spare.list_keys() == []
            spare.generate_key("bad-ec", "EC", "P-256", usage=["sign"])  # a label the backup holds
            with pytest.raises(AlreadyExists, match="already holds key.*bad-ec.*nothing was restored"):
                spare.restore(data)
            assert [k.label for k in spare.list_keys()] == ["bad-ec"]
        with app.open_session("spare", cu_password, role="CU") as cu:
            with pytest.raises(PermissionDenied, match="the CU of partition 'spare' may not object.create"):
                cu.restore(data)
            restored = cu.restore(public_only)  # the CU restores public objects
            assert {k.object_class for k in restored} == {"public"}
        with app.open_session("noclone", no_clone_co, role="CO") as noclone:
            with pytest.raises(FailedPrecondition, match="private_key_cloning is off"):
                noclone.restore(data)
            assert noclone.list_keys() == []


def test_backing_up_an_m_of_n_partition_needs_the_state_key_use_needs(
    trio: DevCluster, tmp_path: Path
) -> None:
    """(our choice) a backup takes key material out of the partition: AUTHORIZED, or SESSION_AUTHORIZED here."""
    from hsmnode.crypto.cards import load_card, new_set

    pw = new_partition(trio, "mofn-bk", domain="hsmnode-dev", requires_authorization=True)
    card_set = new_set(2, 2, "bk", tmp_path)
    cards = [load_card(tmp_path / f"{label}.card") for label, _ in card_set.cards]
    with trio.app_client() as app, app.open_session("mofn-bk", pw["co"], role="CO") as co:

        def change(target: str, action: str, **extra: Any) -> str:
            challenge = co.auth_challenge(action)
            signed = [(card.label, card.sign(challenge.data)) for card in cards]
            return co.auth_change(target, challenge, signed, pw["co"], **extra)

        change("ASSOCIATED", "associate", card_set=(card_set.set_id, card_set.threshold, card_set.cards))
        co.generate_key("held", "Ed25519", "255", usage=["sign"])
        with pytest.raises(FailedPrecondition, match=r"key use requires state .*\(now ASSOCIATED\)"):
            co.backup()
        change("SESSION_AUTHORIZED", "session-authorize")
        assert co.backup().startswith(b"HSMNODE-BACKUP-1\n")
