"""Key use — sign, verify, encrypt, decrypt — one operation (the unary Keys RPCs) or a batch of them
(a CryptoStream batch), through the same checks in the same order:

    step                                                              once per
    the session token (claims)                                        call / batch
    the operation's own input: check_data, check_ciphertext           operation
    the lease; the key's container authorized (grants, M-of-N gate,   call / group
      activation); the key found; not blocked; its usage flag;
      the mechanism fits the key; the material unwrapped and loaded
    the crypto (crypto/operations.py)                                 operation

A batch groups its operations by (operation, key reference, mechanism) — all share the batch's
session — and runs a group's per-key steps once, when its first operation has passed its own checks
(a unary call checks its input before the key, so an operation with bad input gets its input error,
whatever the key). A per-key refusal (no such key, no permission, blocked, no usage flag, wrong
mechanism, lease lost) answers every operation of the group with the error its unary call gets; a
per-operation error (empty data, bad IV, a ciphertext that does not check out) fails that operation
alone. The loaded key (the signer, the AESGCM object) lives only while its group runs.

A group's RSA private-key operations (sign, decrypt) run on the stream's thread and the member's
helper threads at once (HELPERS: one per further CPU), each taking the next operation when free:
`cryptography` releases the GIL while it runs one (~0.5-0.7 ms at 2048 bits), so a batch of them
uses every core a member has instead of one (issue 16: RSA-2048 coalesced from 16 threads, bench/
README "RSA coalesced"). Each operation still checks its own deadline just before it runs; the
answers, errors and records are the same as one thread's, in no fixed order among the records.

Audit (DOMAIN.md §6, key_audit.py): a unary use is one key-usage record; a batch writes one record
per (group, outcome, message) with the count of operations it stands for ("sign ×64 with key 'k'
(ECDSA-SHA256)"), all in one write after the batch ran and before any answer leaves. When that write
fails, the batch raises ReplicationError and none of its answers is given (no unaudited key use).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

from hsmnode.crypto import operations as ops
from hsmnode.crypto.keys import KeyMaterialError
from hsmnode.domain.errors import DomainError
from hsmnode.domain.model import ObjectClass
from hsmnode.service.call import Call
from hsmnode.service.context import KEY_SESSIONS, NodeContext
from hsmnode.service.key_access import KeyAccess, check_mechanism
from hsmnode.service.key_audit import KeyAudit, Use, refusal, target, use_detail
from hsmnode.service.key_fields import SIGN_HINT, check_ciphertext, check_data, invalid
from hsmnode.service.key_views import LocatedKey
from hsmnode.sessions import Claims

log = logging.getLogger(__name__)


# What each operation reads of its request: the unary RPCs pass these tuples, a batch passes the
# CryptoOp's SignRequest, VerifyRequest... (same field names).
class SignInput(NamedTuple):
    data: bytes


class VerifyInput(NamedTuple):
    data: bytes
    signature: bytes


class EncryptInput(NamedTuple):
    data: bytes
    aad: bytes
    iv: bytes


class DecryptInput(NamedTuple):
    ciphertext: bytes
    iv: bytes
    aad: bytes


@dataclass(frozen=True)
class Operation:
    """One kind of key use. `command`: its audit name; `usage`: the usage flag it needs;
    `mechanisms`: mechanism -> (key type, hash); `check(mechanism, request)`: the request's own
    input (raises DomainError); `tool(access, key, mechanism)`: the key loaded for the mechanism
    (crypto/operations.py's signer, encryptor...); `run(tool, request)`: one operation's answer
    (raises KeyMaterialError); `names_mechanism`: whether its crypto errors name the mechanism;
    `private`: whether it uses the private (or secret) key's material."""

    command: str
    usage: str
    mechanisms: dict[str, tuple[str, str]]
    check: Callable[[str, Any], None]
    tool: Callable[[KeyAccess, LocatedKey, str], Any]
    run: Callable[[Any, Any], Any]
    names_mechanism: bool
    private: bool = False

    def fault(self, key: LocatedKey, mechanism: str, exc: KeyMaterialError) -> DomainError:
        """The INVALID_ARGUMENT a crypto error answers: "key 'k', ECDSA-DIGEST: <why>"."""
        where = f"key '{key.label}', {mechanism}" if self.names_mechanism else f"key '{key.label}'"
        return invalid(f"{where}: {exc}")


def _check_signature(mechanism: str, r: Any) -> None:
    check_data(r.data, hint=SIGN_HINT)
    check_data(r.signature, "signature")


SIGN = Operation(
    "key.sign",
    "sign",
    ops.SIGN_MECHANISMS,
    lambda mechanism, r: check_data(r.data, hint=SIGN_HINT),
    lambda access, key, mechanism: ops.signer(mechanism, access.material(key)),
    lambda sign, r: sign(r.data),
    True,
    private=True,
)
VERIFY = Operation(
    "key.verify",
    "verify",
    ops.SIGN_MECHANISMS,
    _check_signature,
    lambda access, key, mechanism: ops.verifier(mechanism, key.public_der),
    lambda verify, r: verify(r.data, r.signature),
    True,
)
ENCRYPT = Operation(
    "key.encrypt",
    "encrypt",
    ops.CIPHER_MECHANISMS,
    lambda mechanism, r: check_data(r.data),
    lambda access, key, mechanism: ops.encryptor(
        mechanism, access.material(key) if key.object_class == ObjectClass.SECRET else key.public_der
    ),
    lambda encrypt, r: encrypt(r.data, r.aad, r.iv),
    False,
)
DECRYPT = Operation(
    "key.decrypt",
    "decrypt",
    ops.CIPHER_MECHANISMS,
    lambda mechanism, r: check_ciphertext(mechanism, r.ciphertext),
    lambda access, key, mechanism: ops.decryptor(mechanism, access.material(key)),
    lambda decrypt, r: decrypt(r.ciphertext, r.iv, r.aad),
    False,
    private=True,
)
# by the name a CryptoOp's oneof gives each
OPERATIONS: dict[str, Operation] = {"sign": SIGN, "verify": VERIFY, "encrypt": ENCRYPT, "decrypt": DECRYPT}


class Expired:
    """The error of a batch operation whose deadline passed before the member ran it."""


EXPIRED = Expired()
# one operation of a batch: (its OPERATIONS name, its request — with .key and .mechanism —, the
# time.monotonic() by which it must have run, or None)
BatchOp = tuple[str, Any, float | None]


@dataclass
class BatchAnswers:
    """What a batch answers, by the position of each operation: `answers[i]` its answer (bytes, a
    bool for verify, (ciphertext, iv) for encrypt) or None when `errors[i]` holds its error: a
    DomainError, a ReplicationError, EXPIRED, or another exception (an internal error, logged).
    `ops` and `failed`: operations and failures by operation name (the member's metrics);
    `helper_cpu`: CPU seconds the member's helper threads spent on it (KeyUses, HELPERS)."""

    answers: list[Any]
    errors: dict[int, BaseException | Expired] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    helper_cpu: float = 0.0


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# Threads besides a stream's own that run a batch's RSA private-key operations (module docstring):
# one per CPU this process may use, less the stream's thread, at most 3; 0 on one CPU.
HELPERS = min(3, _cpus() - 1)


def _spread(op: Operation, mechanism: str) -> bool:
    """Are `op`'s operations with this mechanism's keys run on several threads at once? RSA private-key
    operations (sign, decrypt: ~0.5-0.7 ms each at 2048 bits) are, because `cryptography` releases
    the GIL while it runs them; the rest cost less than handing them to another thread."""
    return op.private and op.mechanisms[mechanism][0] == "RSA"


class KeyUses:
    """Runs key uses for KeyService: `one` for a unary RPC, `batch` for a CryptoStream batch.
    `helpers`: threads besides the caller's that run a batch's RSA private-key operations (HELPERS)."""

    def __init__(self, ctx: NodeContext, access: KeyAccess, audit: KeyAudit, helpers: int = HELPERS) -> None:
        self._ctx = ctx
        self._access = access
        self._audit = audit
        self._helper_count = helpers
        self._helpers = ThreadPoolExecutor(helpers, thread_name_prefix="key-use") if helpers > 0 else None

    def _tool(self, op: Operation, key: LocatedKey, mechanism: str) -> Any:
        check_mechanism(op.mechanisms, mechanism, key)
        return op.tool(self._access, key, mechanism)

    def one(self, call: Call, op: Operation, key_ref: str, mechanism: str, request: Any) -> Any:
        """One key use, audited. Raises DomainError / ReplicationError as the unary RPC answers them."""
        claims = self._ctx.claims(call, *KEY_SESSIONS)
        with self._audit.use(claims, op.command, key_ref, mechanism) as use:
            op.check(mechanism, request)
            key = self._access.usable(claims, key_ref, op.usage)
            use.found(key)
            tool = self._tool(op, key, mechanism)
            try:
                return op.run(tool, request)
            except KeyMaterialError as exc:
                raise op.fault(key, mechanism, exc) from None

    def batch(self, call: Call, batch: Sequence[BatchOp]) -> BatchAnswers:
        """Every operation of a batch under the call's session, grouped as the module says. Raises
        ReplicationError when the batch's key-usage records cannot be written (answer none of it)."""
        done = BatchAnswers([None] * len(batch))
        try:
            claims = self._ctx.claims(call, *KEY_SESSIONS)
        except DomainError as exc:  # not a key use yet: not audited, as in the unary RPC
            for i, (name, _, deadline) in enumerate(batch):
                done.errors[i] = EXPIRED if deadline is not None and time.monotonic() >= deadline else exc
                done.ops[name] = done.ops.get(name, 0) + 1
            done.failed = dict(done.ops)
            return done
        groups: dict[tuple[str, str, str], list[int]] = {}
        for i, (name, request, _) in enumerate(batch):
            members = groups.get((name, request.key, request.mechanism))
            if members is None:
                groups[(name, request.key, request.mechanism)] = [i]
            else:
                members.append(i)
        uses: list[Use] = []
        for (name, key_ref, mechanism), members in groups.items():
            failed = self._group(claims, OPERATIONS[name], key_ref, mechanism, members, batch, done, uses)
            done.ops[name] = done.ops.get(name, 0) + len(members)
            done.failed[name] = done.failed.get(name, 0) + failed
        self._audit.record_uses(claims, uses)
        return done

    def _group(
        self,
        claims: Claims,
        op: Operation,
        key_ref: str,
        mechanism: str,
        members: list[int],
        batch: Sequence[BatchOp],
        done: BatchAnswers,
        uses: list[Use],
    ) -> int:
        """Run one group's operations into `done`, its key-usage records onto `uses`; the failures.
        Each operation's deadline and input are checked in order, the key once at the first that
        passes; then those ready run, each after a last look at its deadline: on this thread, or,
        for the operations `_spread` names, on this thread and the member's helpers at once."""
        errors = done.errors
        check, monotonic = op.check, time.monotonic
        key: LocatedKey | None = None
        tool: Any = None
        refused: BaseException | None = None  # the key's refusal, for every operation of the group
        refused_fault: tuple[bool, str, str] | None = None  # and how its records name it
        # (the key was found, outcome, message) -> operations, for the records
        faults: dict[tuple[bool, str, str], int] = {}
        ready: list[int] = []
        for i in members:
            _, request, deadline = batch[i]
            if deadline is not None and monotonic() >= deadline:
                errors[i] = EXPIRED
                continue
            try:
                check(mechanism, request)
            except DomainError as exc:
                errors[i] = exc
                fault = (False, str(exc.code), exc.message)
                faults[fault] = faults.get(fault, 0) + 1
                continue
            if tool is None and refused is None:
                try:
                    key = self._access.usable(claims, key_ref, op.usage)
                    tool = self._tool(op, key, mechanism)
                except Exception as exc:
                    refused, recorded = exc, refusal(exc)
                    if recorded is None:  # an internal error: logged, answered, not recorded
                        log.exception("unexpected error preparing %s with key %r", op.command, key_ref)
                    else:
                        refused_fault = (key is not None, *recorded)
            if refused is not None:
                errors[i] = refused
                if refused_fault is not None:
                    faults[refused_fault] = faults.get(refused_fault, 0) + 1
                continue
            ready.append(i)
        ok = 0
        if ready:
            assert key is not None
            run = partial(self._run, op, key, mechanism, tool, batch, done)
            if len(ready) > 1 and self._helpers is not None and _spread(op, mechanism):
                ok = self._run_spread(run, ready, faults, done)
            else:
                ok = run(deque(ready), faults)
        container, ref = target(claims, key_ref)  # what a record names when the key was not found
        tally = [((True, "ok", ""), ok)] if ok else []
        for (found, outcome, why), count in tally + list(faults.items()):
            if found and key is not None:
                where, key_id, name = key.container, key.id, key.label or key.id
            else:
                where, key_id, name = container, ref, ref
            detail = use_detail(op.command, name, mechanism, why, count)
            uses.append(Use(op.command, where, key_id, outcome, detail, count))
        return len(members) - ok

    @staticmethod
    def _run(
        op: Operation,
        key: LocatedKey,
        mechanism: str,
        tool: Any,
        batch: Sequence[BatchOp],
        done: BatchAnswers,
        ready: deque[int],
        faults: dict[tuple[bool, str, str], int],
    ) -> int:
        """Run the operations taken from `ready` (popleft: several threads may take from one deque)
        into `done`, their crypto faults counted in `faults` (this thread's own); the successes."""
        answers, errors = done.answers, done.errors
        run, monotonic = op.run, time.monotonic
        ok = 0
        while True:
            try:
                i = ready.popleft()
            except IndexError:
                return ok
            deadline = batch[i][2]
            if deadline is not None and monotonic() >= deadline:
                errors[i] = EXPIRED
                continue
            try:
                answers[i] = run(tool, batch[i][1])
                ok += 1
            except KeyMaterialError as exc:
                error = errors[i] = op.fault(key, mechanism, exc)
                fault = (True, str(error.code), error.message)
                faults[fault] = faults.get(fault, 0) + 1
            except Exception as exc:  # an internal error: this operation's alone, not recorded
                log.exception("unexpected error in %s with key %r", op.command, key.id)
                errors[i] = exc

    def _run_spread(
        self,
        run: Callable[[deque[int], dict[tuple[bool, str, str], int]], int],
        ready: list[int],
        faults: dict[tuple[bool, str, str], int],
        done: BatchAnswers,
    ) -> int:
        """`run` the operations `ready` on this thread and the member's helpers at once (each takes
        the next operation when it is free); the successes, the helpers' faults added to `faults`,
        their CPU to `done.helper_cpu`. A helper that has not started when this thread ran out of
        operations is not waited for."""
        assert self._helpers is not None
        queue = deque(ready)
        theirs: list[dict[tuple[bool, str, str], int]] = [
            {} for _ in range(min(self._helper_count, len(ready) - 1))
        ]
        started = [self._helpers.submit(_timed, run, queue, f) for f in theirs]
        ok = run(queue, faults)
        for future, their_faults in zip(started, theirs, strict=True):
            if future.cancel():
                continue
            their_ok, cpu = future.result()
            ok += their_ok
            done.helper_cpu += cpu
            for fault, count in their_faults.items():
                faults[fault] = faults.get(fault, 0) + count
        return ok


def _timed(
    run: Callable[[deque[int], dict[tuple[bool, str, str], int]], int],
    ready: deque[int],
    faults: dict[tuple[bool, str, str], int],
) -> tuple[int, float]:
    """A helper thread's `run`: its successes and the CPU seconds it spent."""
    started = time.thread_time()
    ok = run(ready, faults)
    return ok, time.thread_time() - started
