"""The state machine pysyncobj replicates: `ReplicatedState`, the HSM state behind one `apply(bytes)`.

Its replicated methods are frozen (hsmnode/replication.py's docstring: pysyncobj numbers them by
sorted name); `apply` never raises; an entry is one command or a batch entry of several
(hsmnode/domain/batch.py), each command applied exactly as its own entry would be; snapshots are
plain versioned data converted in pysyncobj's forked child (`_SnapshotRef`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pysyncobj import SyncObjConsumer, replicated

from hsmnode.domain.apply import apply as apply_command
from hsmnode.domain.batch import is_batch, split_batch
from hsmnode.domain.commands import Command, decode
from hsmnode.domain.errors import CommandDecodeError, ErrorCode
from hsmnode.domain.result import Result
from hsmnode.domain.state import HsmState
from hsmnode.raft.snapshots import freeze_long_lived

log = logging.getLogger("hsmnode.replication")  # the name operators filter on (apply's refusals)


class _SnapshotRef:
    """What `_serialize` hands to pysyncobj: converted to plain data only when pickled.

    pysyncobj forks a child to write the dump and pickles there, so the deep
    conversion runs in the child on a copy-on-write image of the state, off the
    tick thread, and the dump holds only dict/list/str/int (DESIGN.md §3.4).
    The child must not take the state lock: another thread may hold it at fork time.
    """

    __slots__ = ("_state",)

    def __init__(self, state: HsmState) -> None:
        self._state = state

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self._state.to_data(),))


class ReplicatedState(SyncObjConsumer):  # type: ignore[misc]
    """The consumer pysyncobj replicates: the HSM state behind one apply(bytes)."""

    def __init__(self, initial: HsmState | None = None) -> None:
        super().__init__()
        self.lock = threading.RLock()
        self.applied = threading.Condition(threading.Lock())
        # a restored cluster's members start from the backup's state (hsmnode/backup/seed.py)
        self.state = initial if initial is not None else HsmState()
        # the Raft index of the last command applied to `state` (under `lock`): a consistent read
        # knows which index it saw. pysyncobj advances its own applied index only after apply returns.
        self.state_index = 0
        # called after each applied entry with (its decoded commands and their Results, the entry's
        # seconds: decode and apply): the member's metrics (one histogram observation per entry, as
        # hsmnode_raft_apply_duration_seconds is documented, not one per command of a batch entry)
        self.observer: Callable[[list[tuple[Command, Result]], float], None] | None = None
        # pysyncobj compacts its log by entries (logCompactionMinEntries); a batch entry holds many
        # commands, so the commands batched since the last snapshot count too (0: no such rule)
        self.compact_after = 0
        self._batched_since_snapshot = 0

    # The frozen set of replicated methods: apply, barrier. See the module docstring.

    @replicated  # type: ignore[misc,untyped-decorator,unused-ignore]
    def apply(self, payload: bytes) -> Result | list[Result]:
        result = self.apply_payload(payload)
        with self.applied:
            self.applied.notify_all()
        return result

    @replicated  # type: ignore[misc,untyped-decorator,unused-ignore]
    def barrier(self) -> None:
        self._note_index()

    def _note_index(self) -> None:
        if self._syncObj is not None:  # during apply pysyncobj's applied index is this entry's - 1
            with self.lock:
                self.state_index = int(self._syncObj.raftLastApplied) + 1

    def apply_payload(self, payload: bytes) -> Result | list[Result]:
        """Decode and apply one log entry: a command's Result, or for a batch entry (domain/batch.py)
        each of its commands' Results in order, each command applied exactly as its own entry would be
        (a malformed batch: one INVALID_ARGUMENT Result, nothing applied). Never raises."""
        started = time.perf_counter()
        applied: list[tuple[Command, Result]] = []
        if is_batch(payload):
            try:
                commands = split_batch(payload)
            except CommandDecodeError as exc:
                log.error("refused undecodable batch entry %r: %s", _preview(payload), exc.message)
                return Result.error(ErrorCode.INVALID_ARGUMENT, exc.message)
            self._count_batched(len(commands))
            with self.lock:  # readers see a batch entry whole or not at all (read_indexed: state at an index)
                results: Result | list[Result] = [self._apply_one(command, applied) for command in commands]
        else:
            results = self._apply_one(payload, applied)
        if self.observer is not None:
            try:
                self.observer(applied, time.perf_counter() - started)
            except Exception:  # metrics never stop apply
                log.exception("apply observer failed")
        return results

    def _count_batched(self, commands: int) -> None:
        """Ask for a snapshot once `compact_after` commands came in batch entries since the last one:
        the log (its journal size, a restart's replay, a lagging follower's catch-up) stays bounded by
        commands, not only by entries. Tick thread."""
        self._batched_since_snapshot += commands
        if self.compact_after and self._batched_since_snapshot >= self.compact_after and self._syncObj:
            self._batched_since_snapshot = 0
            self._syncObj.forceLogCompaction()

    def apply_command_bytes(self, payload: bytes) -> Result:
        """Decode and apply one command (a plain entry, or one command of a batch entry). Never raises."""
        return self._apply_one(payload, [])

    def _apply_one(self, payload: bytes, applied: list[tuple[Command, Result]]) -> Result:
        """apply_command_bytes, appending (command, Result) to `applied` when the command decoded."""
        try:
            cmd = decode(payload)
        except CommandDecodeError as exc:
            log.error("refused undecodable command %r: %s", _preview(payload), exc.message)
            return Result.error(ErrorCode.INVALID_ARGUMENT, exc.message)
        except Exception:
            log.exception("unexpected error decoding command %r", _preview(payload))
            return Result.error(ErrorCode.INTERNAL, "internal error decoding the command")
        try:
            with self.lock:
                result = apply_command(self.state, cmd)
                self._note_index()
        except Exception:
            log.critical(
                "apply raised outside the state machine for command %r", _preview(payload), exc_info=True
            )
            return Result.error(ErrorCode.INTERNAL, f"internal error applying {cmd.TYPE}")
        if result.internal_trace:
            log.error("apply failed for command %r:\n%s", _preview(payload), result.internal_trace)
        applied.append((cmd, result))
        return result

    def _serialize(self) -> _SnapshotRef:
        self._batched_since_snapshot = 0  # a snapshot starts: the log before it goes
        return _SnapshotRef(self.state)

    def _deserialize(self, data: Any) -> None:
        state = HsmState.from_data(data)
        with self.lock:
            self.state = state
            self.state_index = 0  # unknown until the next entry applies (pysyncobj sets its index later)
        freeze_long_lived()  # a loaded state leaves the garbage collector's walks (raft/snapshots.py)


def _preview(payload: Any, limit: int = 300) -> str:
    text = repr(payload)
    return text if len(text) <= limit else text[:limit] + "..."
