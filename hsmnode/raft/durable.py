"""Durable mode: what reaches disk before an answer leaves the member.

pysyncobj 0.3.17 never fsyncs (its issue #84; PR #98 unmerged): the journal is an mmap
written in place, `.meta` (term, vote, commit index) and dumps are written and renamed.
A power loss of a majority can then lose an acknowledged write. In durable mode
(`[raft] durable = true`) the engine keeps this order, per Raft §5 ("persistent state on
all servers, updated on stable storage before responding to RPCs"):

    leader    appends entries during a tick; at the start of the next tick the journal is
              msync'ed + fsync'ed once for all of them (group commit), and only then does
              pysyncobj count the leader's own copy towards the commit index; a client is
              answered when its entry is committed and applied, so after that fsync
    follower  holds every AppendEntries acknowledgement (next_node_idx) until the journal
              holding those entries is fsync'ed; one fsync per poll round covers all
    term/vote written to `.meta.tmp`, fsync'ed, renamed, directory fsync'ed, before the
              vote or the next message that reflects them
    dumps     written to a temporary file, fsync'ed, renamed, directory fsync'ed (always,
              also outside durable mode: it runs in the forked child, off the tick thread)

`check_fsync(dir)` probes the data directory at start-up: durable mode refuses a
filesystem where fsync fails rather than promising what it cannot keep.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pysyncobj.serializer as _serializer
from pysyncobj import pickle as pysyncobj_pickle
from pysyncobj.journal import MetaStorer

# Seam for the fsync-ordering test: every fsync this module makes goes through here.
fsync: Callable[[int], None] = os.fsync


class FsyncUnavailable(Exception):
    """The data directory's filesystem cannot fsync; the message names the directory and errno."""


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsync(fd)
    finally:
        os.close(fd)


def durable_replace(tmp: str, final: str) -> None:
    """Rename `tmp` over `final` so that a crash leaves either the old or the whole new file."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    fsync_dir(os.path.dirname(os.path.abspath(final)))


class DurableMetaStorer(MetaStorer):  # type: ignore[misc]
    """pysyncobj's `.meta` writer with fsync before and after the rename."""

    def storeMeta(self, meta: Any) -> None:  # noqa: N802 - pysyncobj's name
        path = self.getPath()
        with open(path + ".tmp", "wb") as f:
            f.write(pysyncobj_pickle.dumps(meta))
            f.flush()
            fsync(f.fileno())
        shutil.move(path + ".tmp", path)
        fsync_dir(os.path.dirname(os.path.abspath(path)))


def make_meta_durable(journal: Any) -> None:
    """Swap the journal's `.meta` writer for the fsyncing one (a FileJournal only)."""
    storer = getattr(journal, "_FileJournal__metaStorer", None)
    if storer is not None and not isinstance(storer, DurableMetaStorer):
        journal._FileJournal__metaStorer = DurableMetaStorer(storer.getPath())


def journal_signature(journal: Any) -> tuple[int, int, int]:
    """Changes whenever the journal's content does: (bytes used, entries, last index)."""
    offset = getattr(journal, "_FileJournal__currentOffset", 0)
    length = len(journal)
    return (offset, length, journal[-1][1] if length else 0)


def sync_journal(journal: Any) -> bool:
    """msync + fsync a FileJournal; False for an in-memory journal (nothing to sync)."""
    resizable = getattr(journal, "_FileJournal__journalFile", None)
    if resizable is None:
        return False
    resizable.flush()  # msync(MS_SYNC) of the mapping
    fsync(resizable._ResizableFile__f.fileno())  # and the file (size, metadata)
    return True


def check_fsync(directory: Path) -> None:
    """Write, fsync and remove a probe file in `directory`; FsyncUnavailable if fsync fails."""
    probe = directory / ".fsync-probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"probe")
            fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(directory)
    except OSError as exc:
        raise FsyncUnavailable(
            f"data directory {directory}: fsync failed ({exc.strerror or exc}); durable mode needs a "
            "filesystem that supports fsync (move data_dir, or set [raft] durable = false and accept "
            "that a power loss of a majority can lose acknowledged writes)"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def install_durable_dumps() -> None:
    """Make pysyncobj write every dump (its own and received snapshots) via durable_replace."""
    _serializer.atomicReplace = durable_replace
