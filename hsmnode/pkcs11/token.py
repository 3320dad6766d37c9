"""The PKCS#11 token the bridge presents, mapped onto the public SDK (`hsmnode.client`).

Slots and tokens: one slot per partition or keyring assigned to the bridge's NTLS client
identity (seed 000: only those are visible), refreshed from the cluster at every
C_GetSlotList; token label = partition name or keyring label.

Login (C_Login user type -> role): CKU_USER -> CO (KRCO on a keyring), CKU_SO -> PO (KRSO),
Luna's CKU_CRYPTO_USER 0x80000001 (older clients 0x8000001) -> CU. C_Logout forgets the
application's cluster session without ending it in the cluster: ending it there would end
every session of this client certificate on that role, other applications' too (sessions
are per certificate and role); the token simply expires.

Objects and crypto: see `objects.py`, `operations.py` and `keys.py`. Errors: `errors.py`.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any

from hsmnode.client import HsmClient, HsmError, KeyInfo, PartitionSession, Slot
from hsmnode.pkcs11 import mechanisms
from hsmnode.pkcs11.errors import sdk
from hsmnode.pkcs11.keys import KeyFunctions
from hsmnode.pkcs11.objects import SENSITIVE, P11Object, matches, objects_of
from hsmnode.pkcs11.rpc.calls import HANDSHAKE
from hsmnode.pkcs11.rpc.constants import (
    CKF_LOGIN_REQUIRED,
    CKF_RNG,
    CKF_RW_SESSION,
    CKF_SERIAL_SESSION,
    CKF_TOKEN_INITIALIZED,
    CKF_TOKEN_PRESENT,
    CKF_USER_PIN_INITIALIZED,
    CKF_USER_PIN_LOCKED,
    CKF_USER_PIN_TO_BE_CHANGED,
    CKO,
    CKR,
    CKS_RO_PUBLIC_SESSION,
    CKS_RO_USER_FUNCTIONS,
    CKS_RW_PUBLIC_SESSION,
    CKS_RW_SO_FUNCTIONS,
    CKS_RW_USER_FUNCTIONS,
    CKU_CRYPTO_USER,
    CKU_CRYPTO_USER_OLD,
    CKU_SO,
    CKU_USER,
    EFFECTIVELY_INFINITE,
    UNAVAILABLE_INFORMATION,
)
from hsmnode.pkcs11.rpc.dispatch import CkError
from hsmnode.pkcs11.rpc.wire import BOOL_ATTRIBUTES, Attribute
from hsmnode.pkcs11.state import Connection, Handles, Login, Session

log = logging.getLogger("hsmnode.pkcs11")

CRYPTOKI_VERSION = (2, 40)
BRIDGE_VERSION = (0, 1)
MANUFACTURER = "hsmnode"
ROLES = {
    "partition": {CKU_USER: "CO", CKU_SO: "PO", CKU_CRYPTO_USER: "CU", CKU_CRYPTO_USER_OLD: "CU"},
    "keyring": {CKU_USER: "KRCO", CKU_SO: "KRSO"},
}
PIN_MIN, PIN_MAX = 8, 255  # Luna (notes-vendor-hsms §2.3)


def _text(pin: bytes | None, what: str = "PIN") -> str:
    if pin is None:
        raise CkError(CKR.ARGUMENTS_BAD, f"a NULL {what} (no protected authentication path here)")
    try:
        return pin.decode()
    except UnicodeDecodeError:
        raise CkError(CKR.PIN_INVALID, f"the {what} is not UTF-8") from None


class Token(KeyFunctions):
    """The p11-kit RPC module: one per bridge process, shared by every connection."""

    def __init__(self, client: HsmClient) -> None:
        self.client = client
        self.handles = Handles()
        self._lock = threading.RLock()
        self._sessions: dict[int, Session] = {}
        self._session_numbers = itertools.count(1)
        self._connections = itertools.count(1)
        self._session_keys: dict[str, int] = {}  # key id -> session handle (CKA_TOKEN false)
        self._pin_flags: dict[str, int] = {}  # slot key -> CKF_USER_PIN_* learnt from logins

    # --- connections ------------------------------------------------------------------

    def connect(self) -> Connection:
        return Connection(next(self._connections))

    def disconnect(self, conn: Connection) -> None:
        """The application went away: close its sessions (and destroy its session objects)."""
        for session in [s for s in list(self._sessions.values()) if s.conn is conn]:
            self._close(session)
        conn.logins.clear()
        conn.initialized = False

    def _ready(self, conn: Connection) -> None:
        if not conn.initialized:
            raise CkError(CKR.CRYPTOKI_NOT_INITIALIZED, "call C_Initialize first")

    def session(self, conn: Connection, handle: int) -> Session:
        self._ready(conn)
        with self._lock:
            found = self._sessions.get(handle)
        if found is None or found.conn is not conn:  # unknown, or another application's
            raise CkError(CKR.SESSION_HANDLE_INVALID, f"no session {handle} in this application")
        return found

    def logged_in(self, session: Session) -> PartitionSession:
        login = session.login
        if login is None:
            raise CkError(CKR.USER_NOT_LOGGED_IN, f"log in to slot {session.slot} first")
        return login.session

    # --- general --------------------------------------------------------------------

    def C_Initialize(
        self, conn: Connection, handshake: bytes | None, _present: int, _reserved: bytes | None
    ) -> tuple[()]:
        if handshake != HANDSHAKE:
            raise CkError(CKR.DEVICE_ERROR, "C_Initialize without the p11-kit handshake string")
        if conn.initialized:
            raise CkError(CKR.CRYPTOKI_ALREADY_INITIALIZED)
        conn.initialized = True
        return ()

    def C_Finalize(self, conn: Connection) -> tuple[()]:
        self._ready(conn)
        self.disconnect(conn)
        return ()

    def C_GetInfo(self, conn: Connection) -> tuple[Any, ...]:
        self._ready(conn)
        return (CRYPTOKI_VERSION, MANUFACTURER, 0, "hsmnode PKCS#11 bridge", BRIDGE_VERSION)

    def _slots(self) -> dict[int, Slot]:
        slots = sdk(self.client.list_slots).slots
        return {self.handles.slot(s.partition, s.kind): s for s in slots}

    def _slot(self, slot_id: int) -> Slot:
        slot = self._slots().get(slot_id)
        if slot is None:
            raise CkError(CKR.SLOT_ID_INVALID, f"no slot {slot_id} is assigned to this client")
        return slot

    def C_GetSlotList(self, conn: Connection, _token_present: int, room: int) -> tuple[Any]:
        self._ready(conn)
        ids = sorted(self._slots())
        return (ids if room >= len(ids) and room else len(ids),)

    def C_GetSlotInfo(self, conn: Connection, slot_id: int) -> tuple[Any, ...]:
        self._ready(conn)
        slot = self._slot(slot_id)
        description = f"hsmnode {slot.kind} {slot.partition}"
        return (description, MANUFACTURER, CKF_TOKEN_PRESENT, BRIDGE_VERSION, BRIDGE_VERSION)

    def C_GetTokenInfo(self, conn: Connection, slot_id: int) -> tuple[Any, ...]:
        self._ready(conn)
        slot = self._slot(slot_id)
        flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED
        if slot.initialized:
            flags |= CKF_TOKEN_INITIALIZED
        flags |= self._pin_flags.get(f"{slot.kind}:{slot.partition}", 0)
        with self._lock:
            mine = [s for s in self._sessions.values() if s.slot == slot_id]
        model = "keyring" if slot.kind == "keyring" else "partition"
        return (
            slot.partition,
            MANUFACTURER,
            model,
            slot.label[:16],
            flags,
            EFFECTIVELY_INFINITE,
            len(mine),
            EFFECTIVELY_INFINITE,
            sum(1 for s in mine if s.rw),
            PIN_MAX,
            PIN_MIN,
            UNAVAILABLE_INFORMATION,
            UNAVAILABLE_INFORMATION,
            UNAVAILABLE_INFORMATION,
            UNAVAILABLE_INFORMATION,
            BRIDGE_VERSION,
            BRIDGE_VERSION,
            "",
        )

    def C_GetMechanismList(self, conn: Connection, slot_id: int, room: int) -> tuple[Any]:
        self._ready(conn)
        self._slot(slot_id)
        mechs = [int(m) for m in mechanisms.INFO]
        return (mechs if room >= len(mechs) and room else len(mechs),)

    def C_GetMechanismInfo(self, conn: Connection, slot_id: int, mech: int) -> tuple[int, int, int]:
        self._ready(conn)
        self._slot(slot_id)
        if mech not in mechanisms.INFO:
            raise CkError(CKR.MECHANISM_INVALID, f"mechanism {mech:#x} is not offered")
        return mechanisms.INFO[mech]

    # --- sessions -------------------------------------------------------------------

    def C_OpenSession(self, conn: Connection, slot_id: int, flags: int) -> tuple[int]:
        self._ready(conn)
        if not flags & CKF_SERIAL_SESSION:
            raise CkError(CKR.SESSION_PARALLEL_NOT_SUPPORTED, "open sessions with CKF_SERIAL_SESSION")
        slot = self._slot(slot_id)
        rw = bool(flags & CKF_RW_SESSION)
        login = conn.logins.get(slot_id)
        if login is not None and login.user_type == CKU_SO and not rw:
            raise CkError(CKR.SESSION_READ_WRITE_SO_EXISTS, "the SO is logged in: open a R/W session")
        with self._lock:
            handle = next(self._session_numbers)
            self._sessions[handle] = Session(handle, conn, slot_id, slot.partition, slot.kind, rw)
        return (handle,)

    def _destroy_session_objects(self, session: Session, login: Login | None) -> None:
        """Session objects end with their session, and with a logout (PKCS#11 v2.40 §5.6)."""
        with self._lock:
            mine = [k for k, h in self._session_keys.items() if h == session.handle]
            for key_id in mine:
                del self._session_keys[key_id]
        for key_id in mine:
            if login is not None:
                try:
                    login.session.destroy_key(key_id)
                except HsmError as exc:
                    log.warning(
                        "session object %s of session %d not destroyed: %s", key_id, session.handle, exc
                    )
            self.handles.forget_key(session.container, key_id)

    def _close(self, session: Session) -> None:
        self._destroy_session_objects(session, session.login)
        with self._lock:
            self._sessions.pop(session.handle, None)
            left = any(s.conn is session.conn and s.slot == session.slot for s in self._sessions.values())
        if not left:
            session.conn.logins.pop(session.slot, None)

    def C_CloseSession(self, conn: Connection, handle: int) -> tuple[()]:
        self._close(self.session(conn, handle))
        return ()

    def C_CloseAllSessions(self, conn: Connection, slot_id: int) -> tuple[()]:
        self._ready(conn)
        with self._lock:
            found = [s for s in self._sessions.values() if s.conn is conn and s.slot == slot_id]
        for session in found:
            self._close(session)
        return ()

    def C_GetSessionInfo(self, conn: Connection, handle: int) -> tuple[int, int, int, int]:
        session = self.session(conn, handle)
        login = session.login
        if login is None:
            state = CKS_RW_PUBLIC_SESSION if session.rw else CKS_RO_PUBLIC_SESSION
        elif login.user_type == CKU_SO:
            state = CKS_RW_SO_FUNCTIONS
        else:
            state = CKS_RW_USER_FUNCTIONS if session.rw else CKS_RO_USER_FUNCTIONS
        flags = CKF_SERIAL_SESSION | (CKF_RW_SESSION if session.rw else 0)
        return (session.slot, state, flags, 0)

    # --- login and PINs -------------------------------------------------------------

    def C_Login(self, conn: Connection, handle: int, user_type: int, pin: bytes | None) -> tuple[()]:
        session = self.session(conn, handle)
        role = ROLES[session.kind].get(user_type)
        if role is None:
            raise CkError(CKR.USER_TYPE_INVALID, f"user type {user_type:#x} has no role on a {session.kind}")
        current = session.login
        if current is not None:
            same = current.user_type == user_type or {current.role, role} == {"CU"}
            raise CkError(CKR.USER_ALREADY_LOGGED_IN if same else CKR.USER_ANOTHER_ALREADY_LOGGED_IN)
        if user_type == CKU_SO:
            with self._lock:
                if any(
                    s.conn is conn and s.slot == session.slot and not s.rw for s in self._sessions.values()
                ):
                    raise CkError(
                        CKR.SESSION_READ_ONLY_EXISTS, "close read-only sessions before the SO logs in"
                    )
        text = _text(pin)
        if not PIN_MIN <= len(text) <= PIN_MAX:
            raise CkError(CKR.PIN_LEN_RANGE, f"PINs are {PIN_MIN}-{PIN_MAX} characters")
        slot_key = session.container
        try:
            opened = sdk(lambda: self.client.open_session(session.name, text, role=role), "login")
        except CkError as exc:
            if exc.rv == CKR.PIN_EXPIRED:
                self._pin_flags[slot_key] = CKF_USER_PIN_TO_BE_CHANGED
            elif exc.rv == CKR.PIN_LOCKED:
                self._pin_flags[slot_key] = CKF_USER_PIN_LOCKED
            raise
        opened.keep = True  # never log out in the cluster (see the module docstring)
        self._pin_flags.pop(slot_key, None)
        conn.logins[session.slot] = Login(user_type, role, opened)
        return ()

    def C_Logout(self, conn: Connection, handle: int) -> tuple[()]:
        session = self.session(conn, handle)
        login = conn.logins.get(session.slot)
        if login is None:
            raise CkError(CKR.USER_NOT_LOGGED_IN)
        with self._lock:
            mine = [o for o in self._sessions.values() if o.conn is conn and o.slot == session.slot]
        for other in mine:
            self._destroy_session_objects(other, login)
            other.ops.clear()
            other.found = None
        conn.logins.pop(session.slot, None)
        return ()

    def C_SetPIN(self, conn: Connection, handle: int, old: bytes | None, new: bytes | None) -> tuple[()]:
        session = self.session(conn, handle)
        if not session.rw:
            raise CkError(CKR.SESSION_READ_ONLY, "C_SetPIN needs a R/W session")
        login = session.login
        role = login.role if login else ROLES[session.kind][CKU_USER]
        old_text, new_text = _text(old, "old PIN"), _text(new, "new PIN")
        if not PIN_MIN <= len(new_text) <= PIN_MAX:
            raise CkError(CKR.PIN_LEN_RANGE, f"PINs are {PIN_MIN}-{PIN_MAX} characters")
        sdk(lambda: self.client.change_partition_password(session.name, role, old_text, new_text), "setpin")
        self._pin_flags.pop(session.container, None)
        return ()

    def C_InitPIN(self, conn: Connection, handle: int, pin: bytes | None) -> tuple[()]:
        session = self.session(conn, handle)
        login = session.login
        if login is None or login.user_type != CKU_SO:
            raise CkError(CKR.USER_NOT_LOGGED_IN, "C_InitPIN needs the SO (PO or KRSO) logged in")
        text = _text(pin)
        if session.kind == "keyring":
            sdk(lambda: login.session.set_krco(text), "setpin")
        else:
            sdk(lambda: login.session.init_role("CO", text), "setpin")
        return ()

    # --- objects --------------------------------------------------------------------

    def keys(self, session: Session) -> list[KeyInfo]:
        if session.login is None:
            return []  # every object needs the cluster session, even the public halves
        return sdk(self.logged_in(session).list_keys)

    def obj(self, session: Session, handle: int) -> P11Object:
        found = self.handles.lookup(handle)
        if found is None or found.key.container != session.container:
            raise CkError(CKR.OBJECT_HANDLE_INVALID, f"no object {handle} on slot {session.slot}")
        if session.login is None and found.object_class != CKO.PUBLIC_KEY:
            raise CkError(CKR.OBJECT_HANDLE_INVALID, f"object {handle} is private: log in first")
        return found

    def attrs(self, obj: P11Object) -> dict[int, Any]:
        return obj.attributes(session_object=obj.key.id in self._session_keys)

    def remember(self, session: Session, key: KeyInfo, temporary: bool) -> list[int]:
        """Handles of a new key's objects (private first); session objects die with `session`."""
        if temporary:
            with self._lock:
                self._session_keys[key.id] = session.handle
        return [self.handles.object(o) for o in objects_of(key)]

    def C_FindObjectsInit(self, conn: Connection, handle: int, template: list[Attribute]) -> tuple[()]:
        session = self.session(conn, handle)
        if session.found is not None:
            raise CkError(CKR.OPERATION_ACTIVE, "a search is active: call C_FindObjectsFinal")
        found: list[int] = []
        for key in self.keys(session):
            for obj in objects_of(key):
                if matches(self.attrs(obj), template):
                    found.append(self.handles.object(obj))
        session.found = found
        return ()

    def C_FindObjects(self, conn: Connection, handle: int, room: int) -> tuple[Any]:
        session = self.session(conn, handle)
        if session.found is None:
            raise CkError(CKR.OPERATION_NOT_INITIALIZED, "call C_FindObjectsInit first")
        batch, session.found = session.found[:room], session.found[room:]
        return (batch,)

    def C_FindObjectsFinal(self, conn: Connection, handle: int) -> tuple[()]:
        session = self.session(conn, handle)
        if session.found is None:
            raise CkError(CKR.OPERATION_NOT_INITIALIZED, "no search is active")
        session.found = None
        return ()

    def C_GetAttributeValue(
        self, conn: Connection, handle: int, obj_handle: int, wanted: list[tuple[int, int]]
    ) -> tuple[list[Attribute], int]:
        session = self.session(conn, handle)
        attributes = self.attrs(self.obj(session, obj_handle))
        out: list[Attribute] = []
        rv = CKR.OK
        for kind, room in wanted:
            value = attributes.get(kind)
            if value is None:
                out.append(Attribute(kind, None))
                rv = rv or CKR.ATTRIBUTE_TYPE_INVALID
            elif value is SENSITIVE:
                out.append(Attribute(kind, None))
                rv = rv or CKR.ATTRIBUTE_SENSITIVE
            else:
                size = len(value) if isinstance(value, bytes) else 1 if kind in BOOL_ATTRIBUTES else 8
                # a CK_ULONG travels as 8 bytes but fits the 4-byte CK_ULONG of a 32-bit caller
                needed = 4 if size == 8 and not isinstance(value, bytes) else size
                if room and room < needed:
                    out.append(Attribute(kind, None))
                    rv = rv or CKR.BUFFER_TOO_SMALL
                else:
                    out.append(Attribute(kind, value, size))
        return out, int(rv)

    def C_SetAttributeValue(
        self, conn: Connection, handle: int, obj_handle: int, template: list[Attribute]
    ) -> tuple[()]:
        session = self.session(conn, handle)
        attributes = self.attrs(self.obj(session, obj_handle))
        for attr in template:
            if attributes.get(attr.type) != attr.value:
                raise CkError(
                    CKR.ACTION_PROHIBITED,
                    f"attribute {attr.type:#x}: cluster keys are not modifiable (CKA_MODIFIABLE is false)",
                )
        return ()

    def C_GetObjectSize(self, conn: Connection, handle: int, obj_handle: int) -> tuple[int]:
        self.obj(self.session(conn, handle), obj_handle)
        return (UNAVAILABLE_INFORMATION,)

    def C_DestroyObject(self, conn: Connection, handle: int, obj_handle: int) -> tuple[()]:
        session = self.session(conn, handle)
        obj = self.obj(session, obj_handle)
        temporary = obj.key.id in self._session_keys
        if not session.rw and not temporary:
            raise CkError(CKR.SESSION_READ_ONLY, "destroying a token object needs a R/W session")
        cluster = self.logged_in(session)
        sdk(lambda: cluster.destroy_key(obj.key.id))
        with self._lock:
            self._session_keys.pop(obj.key.id, None)
        self.handles.forget_key(session.container, obj.key.id)
        return ()

    # --- random ---------------------------------------------------------------------

    def C_SeedRandom(self, conn: Connection, handle: int, _seed: bytes | None) -> tuple[()]:
        self.session(conn, handle)
        raise CkError(CKR.RANDOM_SEED_NOT_SUPPORTED, "the cluster's RNG takes no seed")

    def C_GenerateRandom(self, conn: Connection, handle: int, room: int) -> tuple[bytes]:
        session = self.session(conn, handle)
        if not room:
            return (b"",)
        return (self._random(session, room),)

    def _random(self, session: Session, n: int) -> bytes:
        cluster = self.logged_in(session)
        chunks = []
        while n > 0:
            take = min(n, 65536)
            chunks.append(sdk(lambda take=take: cluster.random(take)))  # type: ignore[misc]
            n -= take
        return b"".join(chunks)
