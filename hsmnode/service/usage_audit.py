"""A member's key-usage audit chain (DOMAIN.md §6): sign, verify, encrypt, decrypt served here.

Key use is served by the contacted member without a Raft round trip, so its audit
records stay on that member too: an append-only file in the data dir, one canonical
JSON record per line, hash-chained like the cluster chain (domain/audit.py), each
naming the member. `audit list` and `audit verify` read it through the Audit service.

    data_dir/usage-audit.log     mode 0600, opened O_APPEND; never rewritten
    one line per record: {"hash": ..., "prev_hash": ..., "record": <the hashed body, canonical JSON>}

A record reaches the page cache before the answer leaves (one write(2) per unary use,
one per CryptoStream batch for all its records; no fsync, like the Raft journal). A batch's
record stands for `count` uses of one key with one outcome (the hashed body's `count`,
present when above 1: records without it, older ones included, stand for one use). A torn last line (a crash mid-write) is reported
by `verify`; the chain then continues after the last whole record.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hsmnode.domain.audit import (
    GENESIS_HASH,
    AuditCategory,
    AuditRecord,
    chain_hash,
    record_body,
    verify_chain,
)

USAGE_LOG = "usage-audit.log"
# what a record is written from: (command, container, key, outcome, detail, count)
UsageEntry = tuple[str, str, str, str, str, int]
_TAIL = 64 * 1024


@dataclass(frozen=True)
class LocalChainCheck:
    ok: bool
    length: int
    head_hash: str
    problem: str


class UsageLog:
    """One member's key-usage chain. Thread-safe: gRPC workers append concurrently."""

    def __init__(self, data_dir: Path, member: str) -> None:
        self.path = data_dir / USAGE_LOG
        self.member = member
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._seq, self._head = self._resume()

    def _resume(self) -> tuple[int, str]:
        """(seq, hash) of the last whole record, read from the file's tail."""
        size = self.path.stat().st_size
        if size == 0:
            return 0, GENESIS_HASH
        with open(self.path, "rb") as f:
            f.seek(max(0, size - _TAIL))
            tail = f.read()
        if not tail.endswith(b"\n"):  # a record torn by a crash: keep it on a line of its own
            os.write(self._fd, b"\n")
        lines = tail.splitlines()
        for line in reversed(lines):
            try:
                data = json.loads(line)
                return int(data["record"]["seq"]), str(data["hash"])
            except (ValueError, KeyError, TypeError):
                continue
        return 0, GENESIS_HASH

    def append(
        self,
        *,
        timestamp: int,
        actor: str,
        command: str,
        container: str,
        key: str,
        outcome: str,
        detail: str,
        count: int = 1,
    ) -> int:
        """Append one record; its sequence number. The line is written before this returns."""
        return self.append_many(timestamp, actor, [(command, container, key, outcome, detail, count)])

    def append_many(self, timestamp: int, actor: str, uses: Sequence[UsageEntry]) -> int:
        """Append a record per use (command, container, key, outcome, detail, count: how many uses the
        record stands for, a CryptoStream batch's), all by `actor` at `timestamp`, with one write(2);
        the last sequence number. Raises OSError when the file cannot be written (nothing is then
        chained: the next append continues from the last written record)."""
        lines = []
        member, category = self.member, AuditCategory.KEY_USAGE.value
        with self._lock:
            seq, head = self._seq, self._head
            for command, container, key, outcome, detail, count in uses:
                seq += 1
                body = record_body(
                    seq,
                    timestamp,
                    actor,
                    "",
                    command,
                    outcome,
                    detail,
                    category,
                    container,
                    key,
                    member,
                    count=count if count > 1 else 0,
                )
                digest = chain_hash(head, body)
                lines.append(
                    b'{"hash":"%s","prev_hash":"%s","record":%s}\n' % (digest.encode(), head.encode(), body)
                )
                head = digest
            os.write(self._fd, b"".join(lines))
            self._seq, self._head = seq, head
        return seq

    def _read(self) -> tuple[list[AuditRecord], str]:
        """Every whole record, and a problem sentence for a line that is not one."""
        records: list[AuditRecord] = []
        problem = ""
        with open(self.path, "rb") as f:
            for number, line in enumerate(f, start=1):
                try:
                    data = json.loads(line)
                    records.append(
                        AuditRecord.from_data(
                            {**data["record"], "hash": data["hash"], "prev_hash": data["prev_hash"]}
                        )
                    )
                except (ValueError, KeyError, TypeError):
                    problem = problem or (
                        f"line {number} of {self.path} is not an audit record (torn by a crash, or altered)"
                    )
        return records, problem

    def records(self, after_seq: int = 0, limit: int | None = None) -> tuple[list[AuditRecord], int]:
        """(records after `after_seq`, at most `limit`; the chain's length)."""
        records, _ = self._read()
        selected = records[after_seq:]
        return (selected if limit is None else selected[:limit]), len(records)

    def verify(self) -> LocalChainCheck:
        records, problem = self._read()
        problem = verify_chain(records) or problem
        if not problem and any(r.member != self.member for r in records):
            problem = f"a record names another member than {self.member} (copied from another member?)"
        head = records[-1].hash if records else GENESIS_HASH
        return LocalChainCheck(ok=not problem, length=len(records), head_hash=head, problem=problem)

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)
