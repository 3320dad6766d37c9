"""PKCS#11 test plumbing: bridge processes, the p11-kit client module, and a raw protocol client."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hsmnode.devcluster import DevCluster
from hsmnode.pkcs11.rpc.calls import BY_NAME, HANDSHAKE
from hsmnode.pkcs11.rpc.transport import encode_frame, read_frame
from hsmnode.pkcs11.rpc.wire import Attribute, Mechanism, Reader, Writer

CLIENT_MODULE = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"  # Debian bookworm's, p11-kit 0.24.1
NEEDED = "p11-kit-modules and opensc (make system-packages installs them)"


def _built(relative: str) -> str:
    """A client `make pkcs11-clients` built into the cache directory scripts/pkcs11-clients.sh names."""
    cache = os.environ.get("HSMNODE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hsmnode"
    )
    path = os.path.join(cache, relative)
    if not Path(path).exists():
        pytest.fail(f"{path} missing: `make pkcs11-clients` builds it (make test does)")
    return path


def client_module_025() -> str:
    """p11-kit 0.25.5's client module: forwards AES-GCM (CK_GCM_PARAMS), as bookworm's 0.24.1 does not."""
    return _built("p11-kit-0.25.5/p11-kit-client.so")


def pkcs11_tool_026() -> str:
    """OpenSC 0.26.1's pkcs11-tool: encrypts and decrypts with AES-GCM, as bookworm's 0.23.0 does not."""
    return _built("opensc-0.26.1/pkcs11-tool")


def require_pkcs11_tools() -> None:
    """Fail (not skip) with the packages to install: the suite promises these tests run."""
    missing = [
        p
        for p, ok in (
            (CLIENT_MODULE, Path(CLIENT_MODULE).exists()),
            ("pkcs11-tool", shutil.which("pkcs11-tool")),
        )
        if not ok
    ]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: install {NEEDED}")


class BridgeProcess:
    """`hsmnode pkcs11 serve` as a user runs it, on a socket of its own."""

    def __init__(self, cluster: DevCluster, endpoints: list[str] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="p11-"))  # short: unix socket paths are limited to 108 bytes
        self.socket = self.dir / "bridge.sock"
        self.log = self.dir / "bridge.log"
        args = [sys.executable, "-m", "hsmnode", "pkcs11", "serve", "--profile", str(cluster.profile_path)]
        args += ["--socket", str(self.socket), "-v"]
        for endpoint in endpoints or []:
            args += ["--endpoint", endpoint]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert line.startswith("export P11_KIT_SERVER_ADDRESS="), (line, self.log.read_text())
        self.address = line.strip().split("=", 1)[1]
        assert self.address == f"unix:path={self.socket}"

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, P11_KIT_SERVER_ADDRESS=self.address)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def pkcs11_tool(
    bridge: BridgeProcess,
    *args: str,
    timeout: float = 60,
    module: str = CLIENT_MODULE,
    tool: str = "pkcs11-tool",
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool, "--module", module, *args],
        env=bridge.env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class RawClient:
    """Speaks the p11-kit protocol directly (what p11-kit-client.so sends), for bad input and fuzzing."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(path))
        self.sock.sendall(b"\x00")
        assert self.sock.recv(1) == b"\x00"  # protocol version 0
        self.code = 0x10

    def close(self) -> None:
        self.sock.close()

    def send_body(self, body: bytes) -> bytes:
        self.code += 1
        self.sock.sendall(encode_frame(self.code, body, b"client"))
        frame = read_frame(self.sock)
        assert frame is not None, "the bridge closed the connection"
        assert frame.code == self.code
        return frame.body

    @staticmethod
    def request(name: str, *values: object) -> bytes:
        call = BY_NAME[name]
        w = Writer()
        w.u32(call.id)
        w.byte_array(call.request.encode())
        for part, value in zip(call.request_parts, values, strict=True):
            if part == "u":
                w.u64(int(value))  # type: ignore[call-overload]
            elif part == "y":
                w.byte(int(value))  # type: ignore[call-overload]
            elif part in ("fy", "fu"):
                w.u32(int(value))  # type: ignore[call-overload]
            elif part == "ay":
                if value is None:
                    w.byte(0)
                    w.u32(0)
                else:
                    w.byte(1)
                    w.byte_array(value)  # type: ignore[arg-type]
            elif part == "z":
                w.byte_array(value)  # type: ignore[arg-type]
            elif part == "aA":
                attrs = list(value)  # type: ignore[call-overload]
                w.u32(len(attrs))
                for a in attrs:
                    w.attribute(a)
            elif part == "fA":
                pairs = list(value)  # type: ignore[call-overload]
                w.u32(len(pairs))
                for kind, room in pairs:
                    w.u32(kind)
                    w.u32(room)
            elif part == "M":
                w.mechanism(value)  # type: ignore[arg-type]
        return w.getvalue()

    def call(self, name: str, *values: object) -> tuple[int, Reader]:
        """(CKR code, a reader positioned after the answer's signature)."""
        body = self.send_body(self.request(name, *values))
        r = Reader(body)
        call_id = r.u32()
        r.byte_array()
        if call_id == 0:
            return r.u64(), r
        assert call_id == BY_NAME[name].id
        return 0, r

    def initialize(self) -> None:
        rv, _ = self.call("C_Initialize", HANDSHAKE, 0, b"\x00")
        assert rv == 0


def wait_for(fn, timeout: float = 20.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


__all__ = [
    "Attribute",
    "BridgeProcess",
    "client_module_025",
    "pkcs11_tool_026",
    "Mechanism",
    "RawClient",
    "pkcs11_tool",
    "require_pkcs11_tools",
    "wait_for",
]
