"""Issue 14: OpenSC's pkcs11-tool, through Debian's p11-kit-client.so (bookworm's 0.24.1; for AES-GCM, p11-kit
0.25.5's client module and OpenSC 0.26.1's pkcs11-tool, built by `make pkcs11-clients`) and the bridge, on a
real cluster;
bad input straight on the bridge's socket (the bridge and the cluster stay up, right CKR codes)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hsmnode.ops.devcluster import DevCluster
from hsmnode.pkcs11.rpc.calls import CALLS
from hsmnode.pkcs11.rpc.constants import CKA, CKF_RW_SESSION, CKF_SERIAL_SESSION, CKM, CKO, CKR, CKU_USER
from hsmnode.pkcs11.rpc.transport import HEADER
from tests.common.cluster import PROCESSES, start_cluster
from tests.integration.pkcs11_support import (
    Attribute,
    BridgeProcess,
    Mechanism,
    RawClient,
    client_module_025,
    pkcs11_tool,
    pkcs11_tool_026,
    require_pkcs11_tools,
)

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, BridgeProcess]]:
    require_pkcs11_tools()
    # named as `make run` names it, so the README's example finds hsmnode-dev/profile.json
    cluster = start_cluster(
        # processes: hypothesis fails a draw when another thread of its process uses `random`, as
        # in-process members do (pysyncobj's election timeouts)
        tmp_path_factory.mktemp("p11tool") / "hsmnode-dev",
        fault_injection=False,
        kind=PROCESSES,
    )
    bridge = None
    try:
        bridge = BridgeProcess(cluster)
        yield cluster, bridge
    finally:
        if bridge is not None:
            bridge.stop()
        cluster.stop()


def co_pin(cluster: DevCluster) -> str:
    demo = cluster.demo()
    assert demo is not None
    return str(demo["partition"]["co_password"])


def key_id(listing: str, label: str) -> str:
    match = re.search(rf"label:\s+{label}\n\s+ID:\s+([0-9a-f]+)", listing)
    assert match, listing
    return match.group(1)


def test_pkcs11_tool_lists_exactly_the_clients_slots(world: tuple[DevCluster, BridgeProcess]) -> None:
    _, bridge = world
    out = pkcs11_tool(bridge, "--list-slots")
    assert out.returncode == 0, out.stderr
    labels = re.findall(r"token label\s+:\s+(\S+)", out.stdout)
    assert labels == ["demo", "demo-ring"]  # demo-client holds these; never `cluster` (seed 000)
    assert "login required" in out.stdout and "token initialized" in out.stdout


def test_pkcs11_tool_generates_signs_and_deletes_with_signatures_checked_by_openssl(
    world: tuple[DevCluster, BridgeProcess], tmp_path: Path
) -> None:
    cluster, bridge = world
    login = ("--token-label", "demo", "--login", "--pin", co_pin(cluster))
    for args in (
        ("--keypairgen", "--key-type", "EC:prime256v1", "--label", "tool-ec"),
        ("--keypairgen", "--key-type", "rsa:2048", "--label", "tool-rsa"),
        ("--keygen", "--key-type", "AES:32", "--label", "tool-aes"),
    ):
        out = pkcs11_tool(bridge, *login, *args)
        assert out.returncode == 0, out.stderr
    listing = pkcs11_tool(bridge, *login, "--list-objects").stdout
    assert "Secret Key Object; AES length 32" in listing and "Private Key Object; EC" in listing
    ec, rsa = key_id(listing, "tool-ec"), key_id(listing, "tool-rsa")
    message = tmp_path / "message.txt"
    message.write_bytes(b"signed through a clustered PKCS#11 token\n")
    (tmp_path / "message.sha256").write_bytes(hashlib.sha256(message.read_bytes()).digest())
    for key, mech, source, extra in (
        (
            ec,
            "ECDSA",
            "message.sha256",
            ("--signature-format", "openssl"),
        ),  # the caller hashes (what OpenSSL does)
        (rsa, "SHA256-RSA-PKCS", "message.txt", ()),
    ):
        out = pkcs11_tool(
            bridge,
            *login,
            "--sign",
            "-m",
            mech,
            "--id",
            key,
            "-i",
            str(tmp_path / source),
            "-o",
            str(tmp_path / f"{mech}.sig"),
            *extra,
        )
        assert out.returncode == 0, out.stderr
        out = pkcs11_tool(
            bridge,
            *login,
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            key,
            "-o",
            str(tmp_path / f"{mech}.der"),
        )
        assert out.returncode == 0, out.stderr
        checked = subprocess.run(
            [
                "openssl",
                "dgst",
                "-sha256",
                "-keyform",
                "DER",
                "-verify",
                str(tmp_path / f"{mech}.der"),
                "-signature",
                str(tmp_path / f"{mech}.sig"),
                str(message),
            ],
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0 and "Verified OK" in checked.stdout, (mech, checked.stderr)
    out = pkcs11_tool(bridge, *login, "--delete-object", "--type", "privkey", "--id", ec)
    assert out.returncode == 0, out.stderr
    listing = pkcs11_tool(bridge, *login, "--list-objects").stdout
    assert "tool-ec" not in listing and "tool-rsa" in listing  # a key pair is one cluster key: both halves go


def test_pkcs11_tool_encrypts_and_decrypts_with_aes_gcm_checked_outside_the_product(
    world: tuple[DevCluster, BridgeProcess], tmp_path: Path
) -> None:
    """Through p11-kit 0.25.5's client module and OpenSC 0.26.1's pkcs11-tool (`make pkcs11-clients`): the
    key is imported with a value the test knows (C_CreateObject), so `cryptography` opens the ciphertext
    outside the product (AES-256-GCM, the tool's IV and AAD, 128-bit tag); a tampered tag is refused."""
    cluster, bridge = world
    via = {"module": client_module_025(), "tool": pkcs11_tool_026()}
    login = ("--token-label", "demo", "--login", "--pin", co_pin(cluster))
    value, iv, aad = os.urandom(32), os.urandom(12), b"record 42"
    (tmp_path / "key").write_bytes(value)
    out = pkcs11_tool(
        bridge, *login, "--write-object", str(tmp_path / "key"), "--type", "secrkey", "--key-type", "AES:32",
        "--label", "tool-gcm", "--usage-decrypt", **via,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    plain = b"encrypted by pkcs11-tool through a clustered token\n" * 3
    (tmp_path / "plain").write_bytes(plain)
    listing = pkcs11_tool(bridge, *login, "--list-objects", "--type", "secrkey", **via).stdout
    key = key_id(listing, "tool-gcm")  # OpenSC 0.26 picks the key for --encrypt by --id, not --label
    gcm = ("-m", "AES-GCM", "--id", key, "--iv", iv.hex(), "--aad", aad.hex(), "--tag-bits-len", "128")  # fmt: skip
    out = pkcs11_tool(
        bridge, *login, "--encrypt", *gcm, "-i", str(tmp_path / "plain"), "-o", str(tmp_path / "ct"), **via
    )
    assert out.returncode == 0, out.stderr
    ciphertext = (tmp_path / "ct").read_bytes()
    assert len(ciphertext) == len(plain) + 16
    assert AESGCM(value).decrypt(iv, ciphertext, aad) == plain  # outside the product
    out = pkcs11_tool(
        bridge, *login, "--decrypt", *gcm, "-i", str(tmp_path / "ct"), "-o", str(tmp_path / "back"), **via
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "back").read_bytes() == plain
    (tmp_path / "ct").write_bytes(ciphertext[:-1] + bytes([ciphertext[-1] ^ 1]))
    out = pkcs11_tool(
        bridge, *login, "--decrypt", *gcm, "-i", str(tmp_path / "ct"), "-o", str(tmp_path / "back"), **via
    )
    assert out.returncode != 0 and "CKR_ENCRYPTED_DATA_INVALID" in out.stderr, out.stderr


def test_bookworms_pkcs11_tool_and_client_module_each_lack_aes_gcm(
    world: tuple[DevCluster, BridgeProcess], tmp_path: Path
) -> None:
    """Why `make pkcs11-clients` builds both: p11-kit 0.24.1's client serializes no CK_GCM_PARAMS and drops
    AES-GCM (and ECDSA-SHAxxx) from the mechanism list, where 0.25.5's lists it with wrap and unwrap; and
    OpenSC 0.23.0's pkcs11-tool refuses AES-GCM itself (its encrypt_data() knows AES-ECB/CBC only),
    whatever the module."""
    cluster, bridge = world
    old = pkcs11_tool(bridge, "--token-label", "demo", "--list-mechanisms")
    new = pkcs11_tool(bridge, "--token-label", "demo", "--list-mechanisms", module=client_module_025())
    assert old.returncode == 0 and new.returncode == 0, (old.stderr, new.stderr)
    assert "AES-GCM" not in old.stdout and "ECDSA-SHA256" not in old.stdout, old.stdout
    gcm = next(line for line in new.stdout.splitlines() if "AES-GCM" in line)
    assert all(flag in gcm for flag in ("encrypt", "decrypt", "wrap", "unwrap")), gcm
    assert "ECDSA-SHA256" in new.stdout
    login = ("--token-label", "demo", "--login", "--pin", co_pin(cluster))
    (tmp_path / "plain").write_bytes(b"x" * 32)
    out = pkcs11_tool(
        bridge, *login, "--encrypt", "-m", "AES-GCM", "--label", "tool-aes", "--iv", "00" * 12,
        "-i", str(tmp_path / "plain"), "-o", str(tmp_path / "ct"), module=client_module_025(),
    )  # fmt: skip
    assert out.returncode != 0 and "Mechanism AES-GCM illegal or not supported" in out.stderr, out.stderr


def _readme_blocks() -> tuple[str, str, str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## PKCS#11") :]
    blocks = re.findall(r"```(sh|python)\n(.*?)```", section, re.S)
    return blocks[0][1], blocks[1][1], blocks[2][1]


def test_readme_pkcs11_examples_run_as_written(world: tuple[DevCluster, BridgeProcess]) -> None:
    cluster, _ = world
    serve, tool, app = _readme_blocks()
    assert serve.split("#")[0].split() == [".venv/bin/hsmnode", "pkcs11", "serve"]
    runtime = tempfile.mkdtemp(prefix="xdg-")  # the default socket's directory, private to this test
    env = dict(os.environ, XDG_RUNTIME_DIR=runtime)
    cwd = cluster.root.parent  # where `make run` keeps hsmnode-dev/
    bridge = subprocess.Popen(
        [sys.executable, "-m", "hsmnode", "pkcs11", "serve"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert bridge.stdout is not None
        assert (
            bridge.stdout.readline().strip()
            == f"export P11_KIT_SERVER_ADDRESS=unix:path={runtime}/hsmnode-pkcs11.sock"
        )
        shell = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", tool],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shell.returncode == 0 and "Verified OK" in shell.stdout, shell.stderr
        env["P11_KIT_SERVER_ADDRESS"] = f"unix:path={runtime}/hsmnode-pkcs11.sock"
        python = subprocess.run(
            [sys.executable, "-c", app], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        assert python.returncode == 0, python.stderr
        assert "64 byte ECDSA signature" in python.stdout and "2048 bit RSA modulus" in python.stdout
    finally:
        bridge.terminate()
        bridge.wait(10)
        if bridge.stdout is not None:
            bridge.stdout.close()
        shutil.rmtree(runtime, ignore_errors=True)


def test_wrong_pin_is_rejected_and_repeated_wrong_pins_lock(world: tuple[DevCluster, BridgeProcess]) -> None:
    """On the keyring, whose lock (10 failures, DOMAIN.md §1) no other test of this module needs."""
    _, bridge = world
    codes = []
    for _ in range(11):
        out = pkcs11_tool(
            bridge, "--token-label", "demo-ring", "--login", "--pin", "Wrong-pin-123", "--list-objects"
        )
        codes.append(re.search(r"CKR_\w+", out.stderr).group(0) if "CKR_" in out.stderr else out.stderr)  # type: ignore[union-attr]
    assert codes[0] == "CKR_PIN_INCORRECT"
    assert codes[9:] == ["CKR_PIN_LOCKED", "CKR_PIN_LOCKED"], codes
    slots = pkcs11_tool(bridge, "--list-slots").stdout
    assert "user PIN locked" in slots[slots.rindex("demo-ring") :]


# --- bad input, straight on the socket --------------------------------------------------------


@pytest.fixture
def raw(world: tuple[DevCluster, BridgeProcess]) -> Iterator[RawClient]:
    client = RawClient(world[1].socket)
    yield client
    client.close()


def still_up(world: tuple[DevCluster, BridgeProcess]) -> None:
    cluster, bridge = world
    assert bridge.alive()
    probe = RawClient(bridge.socket)
    try:
        probe.initialize()
        rv, _ = probe.call("C_GetSlotList", 1, 8)
        assert rv == 0
    finally:
        probe.close()
    cluster.wait_for_leader(timeout=10)


def open_logged_in(world: tuple[DevCluster, BridgeProcess], raw: RawClient) -> int:
    raw.initialize()
    rv, r = raw.call("C_OpenSession", 1, CKF_SERIAL_SESSION | CKF_RW_SESSION)
    assert rv == 0
    session = r.u64()
    rv, _ = raw.call("C_Login", session, CKU_USER, co_pin(world[0]).encode())
    assert rv == 0
    return session


def test_calls_before_initialize_unknown_calls_and_malformed_bodies_get_ckr_codes(world, raw) -> None:  # type: ignore[no-untyped-def]
    assert raw.call("C_GetInfo")[0] == CKR.CRYPTOKI_NOT_INITIALIZED
    assert raw.call("C_OpenSession", 1, CKF_SERIAL_SESSION)[0] == CKR.CRYPTOKI_NOT_INITIALIZED
    raw.initialize()
    assert (
        raw.call("C_Initialize", b"PRIVATE-GNOME-KEYRING-PKCS11-PROTOCOL-V-1", 0, b"\x00")[0]
        == CKR.CRYPTOKI_ALREADY_INITIALIZED
    )

    def error_of(body: bytes) -> int:
        reply = raw.send_body(body)
        assert reply[:4] == b"\x00\x00\x00\x00", reply  # the ERROR call
        return int.from_bytes(reply[-8:], "big")

    assert error_of((len(CALLS) + 7).to_bytes(4, "big")) == CKR.FUNCTION_NOT_SUPPORTED
    assert error_of((len(CALLS)).to_bytes(4, "big") + b"\x00\x00\x00\x00") == CKR.FUNCTION_NOT_SUPPORTED
    get_info = RawClient.request("C_GetSlotInfo", 1)
    assert error_of(get_info[:-3]) == CKR.DEVICE_ERROR  # truncated
    assert error_of(get_info + b"junk") == CKR.DEVICE_ERROR  # trailing bytes
    assert error_of(b"\x00\x00") == CKR.DEVICE_ERROR
    wrong_signature = get_info.replace(b"\x00\x00\x00\x01u", b"\x00\x00\x00\x01y", 1)
    assert error_of(wrong_signature) == CKR.DEVICE_ERROR
    # the same connection still works after each of them
    assert raw.call("C_GetSlotList", 1, 8)[0] == 0
    still_up(world)


def test_oversized_frames_are_refused_and_only_their_connection_closes(world, raw) -> None:  # type: ignore[no-untyped-def]
    raw.initialize()
    raw.sock.sendall(HEADER.pack(99, 0, 64 * 1024 * 1024))
    reply = raw.sock.recv(64)
    assert reply[12:16] == b"\x00\x00\x00\x00" and int.from_bytes(reply[-8:], "big") == CKR.DEVICE_MEMORY
    assert raw.sock.recv(1) == b""  # closed: the stream cannot be resynchronized
    still_up(world)


def test_templates_sensitive_values_mechanisms_and_foreign_handles(world, raw) -> None:  # type: ignore[no-untyped-def]
    session = open_logged_in(world, raw)
    ec_params = bytes.fromhex("06082a8648ce3d030107")
    rv, r = raw.call(
        "C_GenerateKeyPair",
        session,
        Mechanism(CKM.EC_KEY_PAIR_GEN),
        [
            Attribute(CKA.EC_PARAMS, ec_params, len(ec_params)),
            Attribute(CKA.VERIFY, 1, 1),
            Attribute(CKA.TOKEN, 1, 1),
        ],
        [Attribute(CKA.SIGN, 1, 1), Attribute(CKA.LABEL, b"raw-ec", 6), Attribute(CKA.TOKEN, 1, 1)],
    )
    assert rv == 0
    public, private = r.u64(), r.u64()
    # a wrong attribute type: a 1-byte CKA_CLASS
    rv, _ = raw.call("C_FindObjectsInit", session, [Attribute(CKA.CLASS, CKO.PRIVATE_KEY, 1)])
    assert rv == CKR.ATTRIBUTE_VALUE_INVALID
    # a template asking for a sensitive value: the rest is answered, the value is not
    rv, r = raw.call("C_GetAttributeValue", session, private, [(CKA.LABEL, 64), (CKA.VALUE, 64)])
    assert rv == 0
    attrs = [r.attribute() for _ in range(r.u32())]
    assert attrs[0].value == b"raw-ec" and attrs[1].value is None and r.u64() == CKR.ATTRIBUTE_SENSITIVE
    # a mechanism the key does not allow: RSA signing with an EC key; decrypting with a signing key
    assert (
        raw.call("C_SignInit", session, Mechanism(CKM.SHA256_RSA_PKCS), private)[0]
        == CKR.KEY_TYPE_INCONSISTENT
    )
    assert raw.call("C_SignInit", session, Mechanism(CKM.ECDSA), public)[0] == CKR.KEY_TYPE_INCONSISTENT
    assert raw.call("C_SignInit", session, Mechanism(0x8000_1234), private)[0] == CKR.MECHANISM_INVALID
    # a session handle from another application, an object handle from another slot
    other = RawClient(world[1].socket)
    try:
        other.initialize()
        assert (
            other.call("C_SignInit", session, Mechanism(CKM.ECDSA), private)[0] == CKR.SESSION_HANDLE_INVALID
        )
        rv, r = other.call("C_OpenSession", 2, CKF_SERIAL_SESSION)  # the keyring's slot
        assert rv == 0
        assert other.call("C_SignInit", r.u64(), Mechanism(CKM.ECDSA), private)[0] == CKR.KEY_HANDLE_INVALID
    finally:
        other.close()
    # and the key works
    assert raw.call("C_SignInit", session, Mechanism(CKM.ECDSA), private)[0] == 0
    rv, r = raw.call("C_Sign", session, hashlib.sha256(b"m").digest(), 64)
    assert rv == 0 and r.byte() == 1 and len(r.byte_array() or b"") == 64
    assert raw.call("C_DestroyObject", session, private)[0] == 0
    still_up(world)


def test_raw_aes_gcm_round_trip(world, raw) -> None:  # type: ignore[no-untyped-def]
    """What p11-kit >= 0.25 clients send for AES-GCM (CK_GCM_PARAMS serialized): the bridge encrypts
    with the caller's IV, and the ciphertext decrypts."""
    session = open_logged_in(world, raw)
    rv, r = raw.call(
        "C_GenerateKey",
        session,
        Mechanism(CKM.AES_KEY_GEN),
        [Attribute(CKA.VALUE_LEN, 32, 8), Attribute(CKA.ENCRYPT, 1, 1), Attribute(CKA.DECRYPT, 1, 1)],
    )
    assert rv == 0
    key = r.u64()
    gcm = Mechanism(CKM.AES_GCM, (b"\x01" * 12, 96, b"header", 128))
    assert raw.call("C_EncryptInit", session, gcm, key)[0] == 0
    rv, r = raw.call("C_Encrypt", session, b"attack at dawn", 0)  # length first, as callers do
    assert rv == 0 and r.byte() == 0
    size = r.u32()
    rv, r = raw.call("C_Encrypt", session, b"attack at dawn", size)
    assert rv == 0 and r.byte() == 1
    ciphertext = r.byte_array()
    assert ciphertext is not None and len(ciphertext) == 14 + 16
    assert raw.call("C_DecryptInit", session, gcm, key)[0] == 0
    rv, r = raw.call("C_Decrypt", session, ciphertext, 64)
    assert rv == 0 and r.byte() == 1 and r.byte_array() == b"attack at dawn"
    assert raw.call("C_DecryptInit", session, gcm, key)[0] == 0
    # the tag's last bit flipped (replacing its last byte with 0x00 changed nothing for 1 tag in 256)
    tampered = ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])
    assert raw.call("C_Decrypt", session, tampered, 64)[0] == CKR.ENCRYPTED_DATA_INVALID


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    call_id=st.integers(min_value=0, max_value=80),
    tail=st.binary(max_size=96),
    with_signature=st.booleans(),
)
@example(
    call_id=2, tail=b"", with_signature=True
)  # a well-formed C_Finalize: the connection must re-initialize
@example(call_id=43, tail=b"\x00" * 5, with_signature=True)  # C_Sign cut short
def test_fuzzed_frames_get_ckr_codes_and_the_bridge_stays_up(world, call_id, tail, with_signature) -> None:  # type: ignore[no-untyped-def]
    _, bridge = world
    client = RawClient(bridge.socket)
    try:
        client.initialize()
        body = call_id.to_bytes(4, "big")
        if with_signature and call_id < len(CALLS):
            sig = CALLS[call_id].request.encode()
            body += len(sig).to_bytes(4, "big") + sig
        reply = client.send_body(body + tail)
        assert len(reply) >= 4  # an answer, never a dropped connection
        rv = client.call("C_GetSlotList", 1, 8)[0]
        if rv == CKR.CRYPTOKI_NOT_INITIALIZED:  # the frame was a well-formed C_Finalize
            client.initialize()
            rv = client.call("C_GetSlotList", 1, 8)[0]
        assert rv == 0
    finally:
        client.close()
    assert bridge.alive()


def test_a_second_bridge_on_a_taken_socket_says_so_in_one_line(
    world: tuple[DevCluster, BridgeProcess],
) -> None:
    # a new user: the refusal came as a Python traceback ending in BridgeError
    cluster, bridge = world
    second = subprocess.run(
        [sys.executable, "-m", "hsmnode", "pkcs11", "serve", "--profile", str(cluster.profile_path)]
        + ["--socket", str(bridge.socket)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert second.stderr.strip() == f"error: UNAVAILABLE: another bridge is listening on {bridge.socket}"
    assert bridge.alive()
