"""Key material never lies on disk in plaintext, and a member refuses an SMK it should not use."""

from __future__ import annotations

import base64
import os
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

from hsmnode.ops.devcluster import DevCluster
from tests.integration.helpers import converged
from tests.integration.test_node_startup import serve

pytestmark = pytest.mark.cluster

EVERY_KIND = [
    ("AES", "128"),
    ("AES", "256"),
    ("RSA", "2048"),
    ("RSA", "3072"),
    ("RSA", "4096"),
    ("EC", "P-256"),
    ("EC", "P-384"),
    ("Ed25519", "255"),
]


def secret_parts(key_type: str, material: bytes) -> list[bytes]:
    """The genuinely secret numbers of a key (not the public point or exponent a PKCS#8 also carries)."""
    if key_type == "AES":
        return [material]
    private = serialization.load_der_private_key(material, password=None)
    if isinstance(private, rsa.RSAPrivateKey):
        n = private.private_numbers()
        return [x.to_bytes((x.bit_length() + 7) // 8, "big") for x in (n.d, n.p, n.q)]
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return [private.private_numbers().private_value.to_bytes((private.curve.key_size + 7) // 8, "big")]
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    return [private.private_bytes_raw()]


def needles(part: bytes) -> list[bytes]:
    """A secret part raw, and in base64 at each of the three alignments an enclosing base64 field
    could give it (commands and snapshots carry bytes as base64)."""
    found = [part]
    for shift in range(3):
        usable = (len(part) - shift) // 3 * 3
        found.append(base64.b64encode(part[shift : shift + usable]))
    return found


def disk_images(root: Path) -> dict[Path, bytes]:
    """Every file under the cluster directory, gzip files (pysyncobj dumps) also decompressed: as far
    as they go, since a member may be writing a dump while it is read (CI once met one cut short)."""
    images = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            images[path] = data
            if data[:2] == b"\x1f\x8b":
                inflate = zlib.decompressobj(wbits=31)  # gzip framing; a truncated stream gives its start
                images[path.with_suffix(path.suffix + ".gunzipped")] = inflate.decompress(data)
    return images


def test_no_member_stores_secret_or_private_key_bytes_in_plaintext(cluster: DevCluster) -> None:
    demo = cluster.demo()
    assert demo is not None
    wrapping_value = os.urandom(32)  # a wrapping key whose value the test knows, imported in plaintext
    secrets: dict[str, list[bytes]] = {"wrap": [wrapping_value]}
    # RSA-3072/4096 generation takes seconds of CPU on a busy machine: past the SDK's default 5 s a
    # Generate whose outcome is known (every member answers in the end) would fail as OutcomeUnknown
    with cluster.app_client(timeout=30.0) as app:
        with app.open_session("demo", demo["partition"]["po_password"], role="PO") as po:
            po.set_policy("private_key_cloning", 0)
            po.set_policy("private_key_wrapping", 1)
        with app.open_session("demo", demo["partition"]["co_password"], role="CO") as co:
            co.import_key("wrap", "AES", wrapping_value, usage=["wrap", "unwrap"])
            for key_type, size in EVERY_KIND:
                label = f"{key_type}-{size}"
                usage = ["encrypt", "decrypt"] if key_type == "AES" else ["sign", "verify"]
                co.generate_key(label, key_type, size, usage=usage, extractable=True)
                # wrapped off the HSM and unwrapped here: the test learns each key's plaintext
                material = aes_key_unwrap_with_padding(wrapping_value, co.wrap_key("wrap", label))
                secrets[label] = secret_parts(key_type, material)
            # more writes than the compaction threshold, so every member also writes a dump
            for i in range(45):
                co.random(1 + i)
                co.generate_key(f"filler-{i}", "AES", "128", usage=["encrypt"])
    converged(cluster, [m.id for m in cluster.members], timeout=30.0)
    for m in cluster.members:
        assert any(p.name.startswith("raft.dump") for p in m.data_dir.iterdir()), f"{m.id} wrote no dump"
    images = disk_images(cluster.root)
    assert len(secrets) == 1 + len(EVERY_KIND)
    for label, parts in secrets.items():
        for needle in (n for part in parts for n in needles(part)):
            holders = [str(p) for p, data in images.items() if needle in data]
            assert not holders, f"plaintext of key {label} found in {holders}"


@pytest.mark.processes
def test_a_member_holding_another_smk_refuses_to_serve(cluster: DevCluster) -> None:
    victim = cluster.members[2]
    cluster.stop(victim.id)
    smk = victim.data_dir / "smk.key"
    smk.write_text(os.urandom(32).hex() + "\n")
    cluster.start(victim.id)
    deadline_proc = cluster._procs[victim.id]
    deadline_proc.wait(30)
    assert deadline_proc.returncode == 3
    assert "differs from this member's" in victim.log_path.read_text()


@pytest.mark.processes
def test_a_member_refuses_to_start_without_its_smk_or_with_an_open_one(cluster: DevCluster) -> None:
    member = cluster.members[2]
    cluster.stop(member.id)
    smk = member.data_dir / "smk.key"
    value = smk.read_text()
    smk.chmod(0o644)
    result = serve(member.config_path)
    assert result.returncode == 2 and "readable by others" in result.stderr and "chmod 600" in result.stderr
    smk.unlink()
    result = serve(member.config_path)
    assert result.returncode == 2 and "no SMK at" in result.stderr
    smk.write_text(value)
    smk.chmod(0o600)
    cluster.start(member.id)
    converged(cluster, [m.id for m in cluster.members], timeout=30.0)
