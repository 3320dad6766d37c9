"""Durable mode refuses a data directory where fsync fails, naming it; dumps are fsynced and renamed."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from hsmnode.raft import durable


def test_fsync_probe_passes_on_a_real_filesystem(tmp_path: Path) -> None:
    durable.check_fsync(tmp_path)
    assert list(tmp_path.iterdir()) == []  # the probe cleans up


def test_a_filesystem_where_fsync_fails_is_refused_with_the_directory_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(fd: int) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(durable, "fsync", failing)
    with pytest.raises(
        durable.FsyncUnavailable, match=rf"data directory {tmp_path}: fsync failed \(Invalid argument\)"
    ):
        durable.check_fsync(tmp_path)


def test_durable_replace_fsyncs_the_file_then_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []

    def record(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        os.fsync(fd)

    monkeypatch.setattr(durable, "fsync", record)
    tmp = tmp_path / "dump.tmp"
    tmp.write_bytes(b"state")
    durable.durable_replace(str(tmp), str(tmp_path / "dump"))
    assert (tmp_path / "dump").read_bytes() == b"state" and not tmp.exists()
    assert synced == [str(tmp), str(tmp_path)]


def test_a_member_in_durable_mode_refuses_to_start_where_fsync_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hsmnode.replication import RaftSettings, Replicator

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(durable, "fsync", failing)
    settings = RaftSettings(
        self_address="127.0.0.1:1", partner_addresses=(), data_dir=tmp_path, password="x" * 20, durable=True
    )
    with pytest.raises(OSError, match=rf"data directory {tmp_path}: fsync failed .*durable = false"):
        Replicator(settings)
