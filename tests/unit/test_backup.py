"""Backup and restore without a cluster: the apply rules of cluster.backup / cluster.restore, the backup
file's refusals (each names its reason), and `hsmnode cluster restore` refusing before it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hsmnode.backup import fileformat
from hsmnode.backup.seed import SeedError, load_seed, write_seed
from hsmnode.crypto.keys import Smk, new_smk
from hsmnode.domain import commands as c
from hsmnode.domain.errors import ErrorCode
from tests.unit.world import World, with_partition, with_users

HSMNODE = [sys.executable, "-m", "hsmnode"]


# --- apply ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, allowed", [("admin", True), ("operator", False), ("monitor", False), ("audit", False)]
)
def test_only_admin_takes_a_backup_and_every_attempt_is_audited(who: str, allowed: bool) -> None:
    w = with_users()
    result = w.apply(c.ClusterBackup, w.user(who))
    assert result.ok is allowed
    if not allowed:
        assert result.code is ErrorCode.PERMISSION_DENIED
    record = w.state.audit_records()[-1]
    assert record.command == "cluster.backup" and record.outcome == ("ok" if allowed else "PERMISSION_DENIED")


def test_a_member_node_takes_scheduled_backups_only() -> None:
    w = with_users()
    assert w.apply(c.ClusterBackup, "node:node1", scheduled=True).ok
    assert w.apply(c.ClusterBackup, "node:node1").code is ErrorCode.PERMISSION_DENIED


def restore_cmd(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "cluster_id": "c-new",
        "source_cluster_id": "c-test",
        "source_index": 42,
        "members": ("n1|127.0.0.1:1|127.0.0.1:2",),
    }
    return {**base, **fields}


def test_restore_binds_the_backed_up_state_to_the_new_cluster_and_members_once() -> None:
    w = with_partition()
    users = set(w.state.users)
    assert (
        w.ok(c.ClusterRestore, "node:n1", **restore_cmd()).value["audit"].startswith("cluster c-new restored")
    )
    assert w.state.cluster_id == "c-new" and w.state.members == {"n1": ("127.0.0.1:1", "127.0.0.1:2")}
    assert set(w.state.users) == users and "pay" in w.state.partitions
    assert w.ok(c.ClusterRestore, "node:n2", **restore_cmd()).value["audit"] == "already restored"


@pytest.mark.parametrize(
    "actor, fields, code",
    [
        ("user:admin#1", {}, ErrorCode.PERMISSION_DENIED),
        ("node:n1", {"cluster_id": "c-test"}, ErrorCode.INVALID_ARGUMENT),
        ("node:n1", {"source_cluster_id": "c-other"}, ErrorCode.FAILED_PRECONDITION),
        ("node:n1", {"members": ("n1|only-raft",)}, ErrorCode.INVALID_ARGUMENT),
    ],
)
def test_restore_refusals_change_nothing(actor: str, fields: dict[str, object], code: ErrorCode) -> None:
    w = with_users()
    before = w.state.cluster_id, dict(w.state.members)
    assert w.apply(c.ClusterRestore, actor, **restore_cmd(**fields)).code is code
    assert (w.state.cluster_id, w.state.members) == before


def test_a_member_without_the_backup_refuses_to_bind_an_empty_state() -> None:
    result = World().apply(c.ClusterRestore, "node:n1", **restore_cmd())
    assert result.code is ErrorCode.FAILED_PRECONDITION and "start every member" in result.message


# --- the file ---------------------------------------------------------------------------


SMK_RAW = new_smk()


@pytest.fixture
def smk() -> Smk:
    return Smk(SMK_RAW)


def backup_of(w: World, smk: Smk) -> tuple[fileformat.BackupHeader, bytes]:
    return fileformat.build(w.state.to_data(), index=77, taken_at_ms=w.now, taken_by="node1", smk=smk)


def test_a_backup_round_trips_with_its_counts_and_hides_everything_but_the_header(smk: Smk) -> None:
    w = with_partition()
    header, blob = backup_of(w, smk)
    assert (header.cluster_id, header.index, header.user_count, header.partition_count) == (
        "c-test",
        77,
        4,
        1,
    )
    assert header.audit_length == len(w.state.audit)
    for secret in (b"hash:admin", b"hash:co0", b"pay"):
        assert secret not in blob
    opened, state = fileformat.open_backup(blob, smk)
    assert opened == header and state.digest() == w.state.digest()


def tamper(blob: bytes, at: int) -> bytes:
    return blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1 :]


@pytest.mark.parametrize(
    "damage, reason, words",
    [
        (lambda b: b[:-10], "truncated", "is truncated: its header declares"),
        (lambda b: b[:30], "truncated", "truncated inside its header"),
        (lambda b: b + b"x", "trailing_data", "bytes after its encrypted body"),
        (lambda b: tamper(b, len(b) - 5), "altered", "failed authentication"),
        (lambda b: b.replace(b'"index":77', b'"index":78'), "altered", "failed authentication"),
        (lambda b: b"PK\x03\x04" + b, "not_a_backup", "is not an hsmnode backup"),
        (lambda b: b.replace(b'"format":1', b'"format":9'), "unsupported_format", "format 9"),
        (lambda b: b.replace(b'"index":77', b'"index":[]'), "bad_header", "index must be int"),
    ],
)
def test_a_damaged_backup_is_refused_naming_the_reason(smk: Smk, damage, reason: str, words: str) -> None:  # type: ignore[no-untyped-def]
    _header, blob = backup_of(with_users(), smk)
    with pytest.raises(fileformat.BackupError) as caught:
        fileformat.open_backup(damage(blob), smk, "cluster.hsmbackup")
    assert caught.value.reason == reason and words in caught.value.message


def test_a_backup_from_another_cluster_or_smk_names_the_cluster_and_both_check_values(smk: Smk) -> None:
    _header, blob = backup_of(with_users(), smk)
    other = Smk(new_smk())
    with pytest.raises(fileformat.BackupError) as caught:
        fileformat.open_backup(blob, other, "b.hsmbackup")
    assert caught.value.reason == "wrong_smk"
    assert "cluster c-test" in caught.value.message and smk.check_value in caught.value.message
    assert other.check_value in caught.value.message


def test_a_seed_of_the_same_cluster_id_or_a_missing_seed_stops_the_member(tmp_path: Path, smk: Smk) -> None:
    header, blob = backup_of(with_users(), smk)
    write_seed(tmp_path, blob, header)
    assert load_seed(tmp_path, smk, "c-new") is not None
    with pytest.raises(SeedError, match="a restore builds a new cluster"):
        load_seed(tmp_path, smk, "c-test")
    (tmp_path / "restore.hsmbackup").unlink()
    with pytest.raises(SeedError, match="put the same backup file there again"):
        load_seed(tmp_path, smk, "c-new")
    (tmp_path / "raft.dump").write_bytes(b"")  # the member's own snapshot supersedes the seed
    assert load_seed(tmp_path, smk, "c-new") is None


# --- hsmnode cluster restore: refused before anything is written -----------------------


def restore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HSMNODE, "cluster", "restore", *args, "--json"], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def files(tmp_path: Path, smk: Smk) -> dict[str, Path]:
    """A backup and two SMK files (hex, mode 0600): its own and another cluster's."""
    _header, blob = backup_of(with_partition(), smk)
    paths = {
        "backup": tmp_path / "c.hsmbackup",
        "smk": tmp_path / "smk.key",
        "other_smk": tmp_path / "other.key",
    }
    paths["backup"].write_bytes(blob)
    for name, key in (("smk", SMK_RAW), ("other_smk", new_smk())):
        paths[name].write_text(key.hex() + "\n")
        os.chmod(paths[name], 0o600)
    return paths


@pytest.mark.parametrize(
    "case, code, words",
    [
        ("other_smk", "WRONG_SMK", "give cluster c-test's SMK"),
        ("truncated", "TRUNCATED", "copy the whole file again"),
        ("tampered", "ALTERED", "altered after it was written"),
        ("non_empty", "TARGET_NOT_EMPTY", "is not an empty directory"),
    ],
)
def test_restore_refuses_before_anything_is_written(
    tmp_path: Path, files: dict[str, Path], case: str, code: str, words: str
) -> None:
    backup, smk, target = files["backup"], files["smk"], tmp_path / "target"
    if case == "other_smk":
        smk = files["other_smk"]
    elif case == "truncated":
        backup.write_bytes(backup.read_bytes()[:-100])
    elif case == "tampered":
        backup.write_bytes(tamper(backup.read_bytes(), len(backup.read_bytes()) - 50))
    else:
        target.mkdir()
        (target / "notes.txt").write_text("mine\n")
    done = restore("--backup", str(backup), "--dir", str(target), "--smk", str(smk))
    assert done.returncode == 1, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["code"] == code and words in error["message"]
    assert (
        sorted(p.name for p in target.iterdir()) == (["notes.txt"] if case == "non_empty" else [])
        if target.exists()
        else True
    )
    assert not target.exists() or case == "non_empty"
