"""Finding a key a session may act on, for the key use cases: the member's lease, the key's container
authorized (own or granted, DOMAIN.md §4; the M-of-N gate for key use, §5; the partition activated
on this member, §3), the key found by id or label, and for key use its blocked flag, usage flags,
mechanism and SMK-wrapped material. One place for these checks: the unary Keys RPCs, CryptoStream
batches (key_use.py) and the key writes (keys.py) all call them."""

from __future__ import annotations

from hsmnode.crypto import keys as kc
from hsmnode.domain import mofn
from hsmnode.domain.access import authorize, check_activated
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.domain.model import Partition
from hsmnode.domain.state import HsmState
from hsmnode.service.context import NodeContext
from hsmnode.service.key_audit import target
from hsmnode.service.key_fields import invalid
from hsmnode.service.key_views import LocatedKey, aad_for
from hsmnode.service.mofn import session_authorized
from hsmnode.sessions import Claims


class KeyAccess:
    """The checks above against this member's replicated state, and the SMK that unwraps material."""

    def __init__(self, ctx: NodeContext, smk: kc.Smk) -> None:
        self._ctx = ctx
        self._smk = smk

    def within_lease(self) -> None:
        """ReplicationError("unavailable") outside the member's leader lease (Replicator.require_lease)."""
        self._ctx.replicator.require_lease()

    def locate(self, claims: Claims, key_ref: str, operation: str) -> LocatedKey:
        """Authorize `operation` on the key's container (own, or granted) and find the key by id or label.

        Raises DomainError: PERMISSION_DENIED / FAILED_PRECONDITION from the container's rules,
        NOT_FOUND naming the key and the container."""
        now = self._ctx.clock_ms()
        container, ref = target(claims, key_ref)
        started = self._ctx.started_ms

        def find(s: HsmState) -> LocatedKey | None:
            authorize(s, claims.actor, operation, now, container)
            if operation == "crypto.use":
                mofn.gate(s, container, "use", session_authorized=session_authorized(s, claims, container))
            holder = s.container(container)
            if holder is None:
                return None
            if isinstance(holder, Partition):
                check_activated(holder, started)  # held per member: lost when this member restarted
            key = holder.objects.get(ref)
            if key is None:
                matches = holder.objects.by_label(ref)  # O(1): the label index (domain/objects.py)
                key = matches[0] if len(matches) == 1 else None
            return LocatedKey(key, container) if key else None

        key = self._ctx.read(find)
        if key is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no key {ref!r} in {container.replace(':', ' ', 1)}")
        return key

    def usable(self, claims: Claims, key_ref: str, usage: str) -> LocatedKey:
        """The key, if this session may use it for `usage` (a usage flag: sign, encrypt, wrap...) now:
        within the lease, `locate`d for crypto.use, not blocked, the flag set. Raises ReplicationError
        outside the lease, DomainError FAILED_PRECONDITION for a blocked key, PERMISSION_DENIED for a
        missing flag, and what `locate` raises."""
        self.within_lease()
        key = self.locate(claims, key_ref, "crypto.use")
        if key.blocked:
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                f"key '{key.label}' is blocked: it cannot be used even when authorized",
            )
        if usage not in key.usage:
            raise DomainError(
                ErrorCode.PERMISSION_DENIED,
                f"key '{key.label}' lacks the usage flag '{usage}' (it has: {', '.join(key.usage) or 'none'})",
            )
        return key

    def material(self, key: LocatedKey) -> bytes:
        """The key's plaintext material (AES value or PKCS#8 DER), unwrapped under the SMK: keep it no
        longer than the operation (or batch) needs it. DomainError FAILED_PRECONDITION when it fails
        its integrity check."""
        try:
            return self._smk.unwrap(aad_for(key.container, key.id), key.wrapped)
        except kc.KeyMaterialError as exc:
            raise DomainError(ErrorCode.FAILED_PRECONDITION, f"key '{key.label}': {exc}") from None


def check_mechanism(table: dict[str, tuple[str, str]], mechanism: str, key: LocatedKey) -> None:
    """INVALID_ARGUMENT unless `mechanism` is in `table` (mechanism -> (key type, hash)) and fits the
    key's type."""
    if mechanism not in table:
        raise invalid(f"unknown mechanism {mechanism!r} (known: {', '.join(table)})")
    needed = table[mechanism][0]
    if key.key_type != needed:
        raise invalid(f"key '{key.label}' is {key.key_type}; {mechanism} needs an {needed} key")
