"""The bridge process's listener: a unix socket (mode 0600) speaking the p11-kit RPC protocol.

One thread reads each application's connection; its calls run on a shared pool, so the
threads of one application (p11-kit-client multiplexes them on one socket, numbering each
call) are served concurrently, and answers go back as they are ready, under a write lock.
A malformed frame gets an ERROR answer with its CKR code (`rpc.dispatch`); a frame larger
than `max_frame` gets CKR_DEVICE_MEMORY and the connection closes, since the stream cannot
be resynchronized. Neither affects other connections or the cluster.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from hsmnode.pkcs11.rpc import dispatch
from hsmnode.pkcs11.rpc.calls import PROTOCOL_VERSION
from hsmnode.pkcs11.rpc.constants import CKR
from hsmnode.pkcs11.rpc.transport import (
    DEFAULT_MAX_FRAME,
    FrameTooLarge,
    encode_frame,
    read_frame,
    server_handshake,
)
from hsmnode.pkcs11.token import Token

log = logging.getLogger("hsmnode.pkcs11")


class BridgeError(Exception):
    """The bridge cannot start (socket path in use, not creatable...)."""


class Bridge:
    """Serves `token` on the unix socket `path` until `stop()`."""

    def __init__(
        self, token: Token, path: Path, *, workers: int = 16, max_frame: int = DEFAULT_MAX_FRAME
    ) -> None:
        self.token = token
        self.path = Path(path)
        self.max_frame = max_frame
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="p11-call")
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """The value for P11_KIT_SERVER_ADDRESS."""
        return f"unix:path={self.path}"

    def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise BridgeError(f"{self.path} exists and is not a socket: choose another --socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.path))
                raise BridgeError(f"another bridge is listening on {self.path}")
            except OSError:
                self.path.unlink()  # a stale socket from a bridge that died
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is born 0600: only this user's applications connect
        try:
            listener.bind(str(self.path))
        except OSError as exc:
            listener.close()
            raise BridgeError(f"cannot listen on {self.path}: {exc}") from None
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, name="p11-accept", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def wait(self) -> None:
        self._stopped.wait()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.add(sock)
            threading.Thread(target=self._serve, args=(sock,), name="p11-conn", daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        conn = self.token.connect()
        write_lock = threading.Lock()
        pending: set[Future[None]] = set()

        def answer(code: int, body: bytes) -> None:
            reply = dispatch.handle(self.token, conn, body)
            with write_lock, contextlib.suppress(OSError):
                sock.sendall(encode_frame(code, reply))

        try:
            if server_handshake(sock, PROTOCOL_VERSION) is None:
                return
            while not self._stopped.is_set():
                try:
                    frame = read_frame(sock, self.max_frame)
                except FrameTooLarge as exc:
                    log.warning("connection %d: %s; closing it", conn.id, exc)
                    with write_lock:
                        sock.sendall(encode_frame(exc.code, dispatch.error_body(CKR.DEVICE_MEMORY)))
                    return
                if frame is None:
                    return
                future = self._pool.submit(answer, frame.code, frame.body)
                pending.add(future)
                future.add_done_callback(pending.discard)
        except OSError as exc:
            log.debug("connection %d ended: %s", conn.id, exc)
        except RuntimeError:  # the pool shut down: the bridge is stopping
            return
        finally:
            for future in list(pending):
                with contextlib.suppress(Exception):
                    future.result(timeout=30)
            try:
                self.token.disconnect(conn)
            except Exception:
                log.exception("connection %d: cleanup failed", conn.id)
            with self._lock:
                self._connections.discard(sock)
            sock.close()
