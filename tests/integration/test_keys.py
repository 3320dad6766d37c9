"""Keys and cryptographic operations through a real cluster (DOMAIN.md §1 partition level, §2 any
member serves crypto): results check out with an independent library, key attributes and partition policy
bound what a session may do, an isolated member stops serving, and bad input gets the right status."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hsmnode.client import (
    AlreadyExists,
    FailedPrecondition,
    HsmClient,
    InvalidArgument,
    NotFound,
    PartitionSession,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from hsmnode.ops.devcluster import DevCluster
from hsmnode.pb import keys_pb2, keys_pb2_grpc
from tests.integration.helpers import eventually, node_status

pytestmark = pytest.mark.cluster

NODES = ("node1", "node2", "node3")
DATA = b"pay 100 EUR to account 42"


def demo_of(cluster: DevCluster) -> dict[str, Any]:
    demo = cluster.demo()
    assert demo is not None
    return demo


def co_session(client: HsmClient, cluster: DevCluster) -> PartitionSession:
    return client.open_session("demo", demo_of(cluster)["partition"]["co_password"], role="CO")


def public_key(der: bytes) -> Any:
    """The key's public part, parsed by `cryptography` (outside hsmnode)."""
    return serialization.load_der_public_key(der)


def pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


# --- §2: any member serves a key's operations; results are standard --------------------------------


def test_key_generated_on_one_member_works_on_the_others_and_checks_out_with_an_independent_library(
    cluster: DevCluster,
) -> None:
    first, second, third = (cluster.app_client(n) for n in NODES)
    try:
        co = co_session(first, cluster)
        co.keep = True
        ec_key = co.generate_key("ec", "EC", "P-256", usage=["sign", "verify"])
        rsa_key = co.generate_key("rsa", "RSA", 2048, usage=["sign", "verify", "encrypt", "decrypt"])
        ed_key = co.generate_key("ed", "Ed25519", 255, usage=["sign", "verify"])
        aes_key = co.generate_key("aes", "AES", 256, usage=["encrypt", "decrypt"])
        assert (ec_key.key_type, ec_key.size, ec_key.object_class) == ("EC", "P-256", "private")
        assert (aes_key.size, aes_key.object_class, aes_key.public_der) == ("256", "secret", b"")
        on2 = second.resume_partition(co.token)
        on3 = third.resume_partition(co.token)
        eventually(lambda: len(on3.list_keys()) == 4, 5.0, "the four keys on node3")
        eventually(lambda: len(on2.list_keys()) == 4, 5.0, "the four keys on node2")

        signature = on3.sign("ec", DATA, mechanism="ECDSA-SHA256")
        public_key(ec_key.public_der).verify(signature, DATA, ec.ECDSA(hashes.SHA256()))
        signature = on3.sign("rsa", DATA, mechanism="RSA-PSS-SHA256")
        public_key(rsa_key.public_der).verify(signature, DATA, pss(), hashes.SHA256())
        signature = on3.sign("rsa", DATA, mechanism="RSA-PKCS1-SHA256")
        public_key(rsa_key.public_der).verify(signature, DATA, padding.PKCS1v15(), hashes.SHA256())
        signature = on3.sign("ed", DATA, mechanism="Ed25519")
        ed_public = public_key(ed_key.public_der)
        assert isinstance(ed_public, ed25519.Ed25519PublicKey)
        ed_public.verify(signature, DATA)
        assert on2.verify("ed", DATA, signature, mechanism="Ed25519")  # and the HSM agrees

        # the PEM export is the same public key
        pem = on2.export_public_key("ec")
        assert serialization.load_pem_public_key(pem).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == (ec_key.public_der)

        sealed = on2.encrypt("aes", DATA, mechanism="AES-GCM", aad=b"header")
        assert len(sealed.iv) == 12 and DATA not in sealed.ciphertext
        assert on3.decrypt("aes", sealed.ciphertext, mechanism="AES-GCM", iv=sealed.iv, aad=b"header") == DATA

        rsa_public = public_key(rsa_key.public_der)
        assert isinstance(rsa_public, rsa.RSAPublicKey) and rsa_public.key_size == 2048
        assert on3.decrypt("rsa", rsa_public.encrypt(DATA, oaep()), mechanism="RSA-OAEP-SHA256") == DATA
        sealed = on2.encrypt("rsa", DATA, mechanism="RSA-OAEP-SHA256")
        assert sealed.iv == b""
        assert on3.decrypt("rsa", sealed.ciphertext, mechanism="RSA-OAEP-SHA256") == DATA
    finally:
        for client in (first, second, third):
            client.close()


# --- key attributes and roles bound what a session may do ---------------------------------------------


def test_key_attributes_and_the_cu_role_limit_export_use_and_creation(cluster: DevCluster) -> None:
    part = demo_of(cluster)["partition"]
    with cluster.app_client() as app:
        with co_session(app, cluster) as co:
            co.generate_key("wrapper", "AES", 256, usage=["wrap", "unwrap"])
            co.generate_key("kept", "AES", 256, usage=["encrypt", "decrypt"])  # extractable=False
            co.generate_key("enc-only", "AES", 128, usage=["encrypt"], extractable=True)
            co.generate_key("ec-kept", "EC", "P-256", usage=["sign"])
            for target in ("kept", "ec-kept"):
                with pytest.raises(PermissionDenied, match="extractable") as info:
                    co.wrap_key("wrapper", target)
                assert f"'{target}'" in info.value.message
            with pytest.raises(PermissionDenied, match="usage flag 'sign'"):
                co.sign("enc-only", DATA, mechanism="ECDSA-SHA256")
            sealed = co.encrypt("enc-only", DATA, mechanism="AES-GCM")
            with pytest.raises(PermissionDenied, match="usage flag 'decrypt'"):
                co.decrypt("enc-only", sealed.ciphertext, mechanism="AES-GCM", iv=sealed.iv)
            with pytest.raises(PermissionDenied, match="usage flag 'verify'"):
                co.verify(
                    "ec-kept",
                    DATA,
                    co.sign("ec-kept", DATA, mechanism="ECDSA-SHA256"),
                    mechanism="ECDSA-SHA256",
                )
            assert co.wrap_key("wrapper", "enc-only")  # extractable and wrappable
            # issue 13's rename: a client of the release before sends only the deprecated field
            # `exportable`; an answer carries both fields; a request whose two fields disagree is refused
            old_client = keys_pb2.GenerateKeyRequest(
                request_id="old-client-1", label="old-client", key_type="AES", size="128", exportable=True
            )
            old_client.usage.append("encrypt")
            answer = co._call(keys_pb2_grpc.KeysStub, "Generate", old_client, write=True)
            assert (answer.extractable, answer.exportable) == (True, True)
            assert co.wrap_key("wrapper", "old-client")
            both = keys_pb2.GenerateKeyRequest(
                request_id="both-1",
                label="both",
                key_type="AES",
                size="128",
                exportable=True,
                extractable=False,
            )
            with pytest.raises(InvalidArgument, match="extractable=false and the deprecated exportable=true"):
                co._call(keys_pb2_grpc.KeysStub, "Generate", both, write=True)
            with pytest.warns(DeprecationWarning, match="exportable= is deprecated"):
                renamed = co.generate_key("old-keyword", "AES", 128, usage=["encrypt"], exportable=True)
            assert renamed.extractable and co.show_key("old-keyword").extractable
            co.destroy_key("old-keyword")
            co.destroy_key("old-client")

        local = ec.generate_private_key(ec.SECP256R1())
        pem = local.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with app.open_session("demo", part["cu_password"], role="CU") as cu:
            for key_type, size, usage in (("EC", "P-256", ["sign"]), ("AES", "256", ["encrypt"])):
                with pytest.raises(
                    PermissionDenied, match="the CU of partition 'demo' may not object.create"
                ):
                    cu.generate_key(f"cu-{key_type}", key_type, size, usage=usage)
            imported = cu.import_public_key("cu-public", pem, usage=["verify"])
            assert (imported.object_class, imported.origin, imported.extractable) == (
                "public",
                "imported",
                False,
            )
            signature = local.sign(DATA, ec.ECDSA(hashes.SHA256()))
            assert cu.verify("cu-public", DATA, signature, mechanism="ECDSA-SHA256")
            assert not cu.verify("cu-public", DATA + b"!", signature, mechanism="ECDSA-SHA256")
            with pytest.raises(PermissionDenied, match="usage flag 'sign'"):
                cu.sign("cu-public", DATA, mechanism="ECDSA-SHA256")
            with pytest.raises(InvalidArgument, match="cannot carry usage sign"):
                cu.import_public_key("cu-public-2", pem, usage=["sign"])
            labels = {k.label for k in cu.list_keys()}
        assert labels == {
            "wrapper",
            "kept",
            "enc-only",
            "ec-kept",
            "cu-public",
        }  # the CU created nothing else


def test_private_keys_are_wrapped_off_the_hsm_only_when_the_partition_policy_allows(
    cluster: DevCluster,
) -> None:
    part = demo_of(cluster)["partition"]
    with (
        cluster.app_client() as app,
        co_session(app, cluster) as co,
        app.open_session("demo", part["po_password"], role="PO") as po,
    ):
        co.generate_key("wrapper", "AES", 256, usage=["wrap", "unwrap"])
        original = co.generate_key("signer", "EC", "P-384", usage=["sign", "verify"], extractable=True)
        co.generate_key("secret", "AES", 128, usage=["encrypt", "decrypt"], extractable=True)
        # default policy: private_key_cloning=1, private_key_wrapping=0
        with pytest.raises(FailedPrecondition, match="private_key_wrapping") as info:
            co.wrap_key("wrapper", "signer")
        assert "partition 'demo'" in info.value.message
        assert co.wrap_key("wrapper", "secret")  # the policy concerns private keys only
        with pytest.raises(FailedPrecondition, match="cannot both be on"):
            po.set_policy("private_key_wrapping", 1)
        with pytest.raises(FailedPrecondition, match="private_key_wrapping"):
            co.wrap_key("wrapper", "signer")  # the refused policy change changed nothing
        po.set_policy("private_key_cloning", 0)
        po.set_policy("private_key_wrapping", 1)
        with pytest.raises(FailedPrecondition, match="cannot both be on"):
            po.set_policy("private_key_cloning", 1)

        wrapped = co.wrap_key("wrapper", "signer")
        back = co.unwrap_key("wrapper", wrapped, label="signer-back", key_type="EC", usage=["sign", "verify"])
        assert back.public_der == original.public_der
        assert (back.key_type, back.size, back.origin, back.extractable) == (
            "EC",
            "P-384",
            "unwrapped",
            False,
        )
        signature = co.sign("signer-back", DATA, mechanism="ECDSA-SHA384")
        public_key(original.public_der).verify(signature, DATA, ec.ECDSA(hashes.SHA384()))
        again = co.unwrap_key(
            "wrapper",
            co.wrap_key("wrapper", "secret"),
            label="secret-back",
            key_type="AES",
            usage=["decrypt"],
        )
        assert (again.size, again.object_class) == ("128", "secret")
        sealed = co.encrypt("secret", DATA, mechanism="AES-GCM")
        assert co.decrypt("secret-back", sealed.ciphertext, mechanism="AES-GCM", iv=sealed.iv) == DATA
        with pytest.raises(PermissionDenied, match="extractable"):
            co.wrap_key("wrapper", "signer-back")  # unwrapped without extractable=True
        with pytest.raises(InvalidArgument, match="is EC, not RSA"):
            co.unwrap_key("wrapper", wrapped, label="wrong-type", key_type="RSA", usage=["sign"])


def test_aes_gcm_wrapping_happens_in_the_member_and_unwraps_outside_with_the_wrapping_keys_value(
    cluster: DevCluster,
) -> None:
    """AES-GCM as a wrap mechanism (what a p11-kit client forwards, for C_WrapKey): the member wraps,
    the caller's IV and AAD; whoever holds the wrapping key's value unwraps it with `cryptography`."""
    with cluster.app_client() as app, co_session(app, cluster) as co:
        kek = os.urandom(32)
        co.import_key("gcm-kek", "AES", kek, usage=["wrap", "unwrap"])
        co.generate_key("gcm-target", "AES", 256, usage=["encrypt", "decrypt"], extractable=True)
        iv, aad = os.urandom(12), b"key for the backup site"
        wrapped = co.wrap_key("gcm-kek", "gcm-target", mechanism="AES-GCM", iv=iv, aad=aad)
        value = AESGCM(kek).decrypt(iv, wrapped, aad)  # ciphertext || tag, outside the product
        assert len(value) == 32 and len(wrapped) == 48
        ciphertext, nonce = co.encrypt("gcm-target", DATA, mechanism="AES-GCM")
        assert AESGCM(value).decrypt(nonce, ciphertext, None) == DATA  # it is the target key
        back = co.unwrap_key(
            "gcm-kek",
            wrapped,
            label="gcm-back",
            key_type="AES",
            usage=["decrypt"],
            mechanism="AES-GCM",
            iv=iv,
            aad=aad,
        )
        assert (back.size, back.origin) == ("256", "unwrapped")
        assert co.decrypt("gcm-back", ciphertext, mechanism="AES-GCM", iv=nonce) == DATA
        with pytest.raises(InvalidArgument, match="12-byte IV"):
            co.wrap_key("gcm-kek", "gcm-target", mechanism="AES-GCM", iv=iv[:8])
        with pytest.raises(InvalidArgument, match="'AES-CBC' is not supported"):
            co.wrap_key("gcm-kek", "gcm-target", mechanism="AES-CBC")
        with pytest.raises(InvalidArgument, match="does not unwrap under this key"):
            co.unwrap_key(
                "gcm-kek", wrapped, label="x", key_type="AES", usage=["decrypt"], mechanism="AES-GCM", iv=iv
            )  # the AAD is missing
        assert co.wrap_key("gcm-kek", "gcm-target")  # AES-KWP stays the default


# --- an isolated member stops serving after its lease -------------------------------------------------


@pytest.mark.processes
@pytest.mark.serial
def test_member_cut_off_from_the_others_refuses_crypto_once_its_lease_runs_out(cluster: DevCluster) -> None:
    with cluster.app_client("node3", timeout=2.0) as alone:
        co = co_session(alone, cluster)
        co.keep = True
        key = co.generate_key("ec", "EC", "P-256", usage=["sign", "verify"])
        public_key(key.public_der).verify(
            co.sign("ec", DATA, mechanism="ECDSA-SHA256"), DATA, ec.ECDSA(hashes.SHA256())
        )
        cluster.kill("node1")
        cluster.kill("node2")
        cut_off = time.monotonic()

        def refused() -> Unavailable | None:
            try:
                co.sign("ec", DATA, mechanism="ECDSA-SHA256")
            except Unavailable as exc:
                return exc
            return None

        error = eventually(refused, 10.0, "node3 to refuse signing")
        elapsed = time.monotonic() - cut_off
        assert elapsed < 5.5, f"node3 kept signing {elapsed:.1f}s after losing the others (lease 2s)"
        assert "no leader" in error.message and "refuses cryptographic operations" in error.message
        for operation in (
            lambda: co.random(16),
            lambda: co.verify("ec", DATA, b"x" * 64, mechanism="ECDSA-SHA256"),
        ):
            with pytest.raises(Unavailable, match="no leader"):
                operation()

        cluster.start("node1")
        cluster.start("node2")
        signature = eventually(lambda: co.sign("ec", DATA, mechanism="ECDSA-SHA256"), 30.0, "signing again")
        public_key(key.public_der).verify(signature, DATA, ec.ECDSA(hashes.SHA256()))


# --- bad input ----------------------------------------------------------------------------------


def test_a_public_key_of_another_type_and_an_unknown_type_filter_are_refused(cluster: DevCluster) -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with cluster.app_client() as app, co_session(app, cluster) as co:
        with pytest.raises(InvalidArgument, match="the PEM holds an EC public key, not RSA"):
            co.import_public_key("typed-rsa", ec_pem, usage=["verify"], key_type="RSA")
        assert co.list_keys(label="typed-rsa") == []
        assert co.import_public_key("typed-ec", ec_pem, usage=["verify"], key_type="EC").key_type == "EC"
        with pytest.raises(InvalidArgument, match="unknown key type 'FOO': use one of AES, RSA, EC, Ed25519"):
            co.list_keys(key_type="FOO")


def test_bad_crypto_input_gets_the_right_status_and_every_member_stays_up(cluster: DevCluster) -> None:
    with cluster.app_client() as app, co_session(app, cluster) as co:
        co.generate_key("ec", "EC", "P-256", usage=["sign", "verify"])
        co.generate_key("ed", "Ed25519", 255, usage=["sign", "verify"])
        co.generate_key("rsa", "RSA", 2048, usage=["sign", "verify", "encrypt", "decrypt"])
        co.generate_key("aes", "AES", 256, usage=["encrypt", "decrypt"])

        with pytest.raises(InvalidArgument, match="unknown mechanism 'ECDSA-MD5'"):
            co.sign("ec", DATA, mechanism="ECDSA-MD5")
        with pytest.raises(InvalidArgument, match="unknown mechanism 'AES-ECB'"):
            co.encrypt("aes", DATA, mechanism="AES-ECB")
        with pytest.raises(InvalidArgument, match="RSA-PSS-SHA256 needs an RSA key"):
            co.sign("ec", DATA, mechanism="RSA-PSS-SHA256")
        with pytest.raises(InvalidArgument, match="RSA-OAEP-SHA256 needs an RSA key"):
            co.encrypt("aes", DATA, mechanism="RSA-OAEP-SHA256")
        with pytest.raises(InvalidArgument, match="data must not be empty"):
            co.sign("ec", b"", mechanism="ECDSA-SHA256")
        with pytest.raises(InvalidArgument, match="the limit is 65536"):
            co.sign("ec", b"x" * (64 * 1024 + 1), mechanism="ECDSA-SHA256")
        with pytest.raises(InvalidArgument, match="the limit is 65536"):
            co.encrypt("aes", b"x" * (64 * 1024 + 1), mechanism="AES-GCM")
        assert co.sign("ec", b"x" * (64 * 1024), mechanism="ECDSA-SHA256")  # the limit itself is fine
        largest = b"x" * (64 * 1024)  # what it encrypts at the limit, it decrypts (ciphertext + 16-byte tag)
        sealed, iv = co.encrypt("aes", largest, mechanism="AES-GCM")
        assert (
            len(sealed) == len(largest) + 16
            and co.decrypt("aes", sealed, iv=iv, mechanism="AES-GCM") == largest
        )
        with pytest.raises(InvalidArgument, match="the limit is 65552") as refused:
            co.decrypt("aes", sealed + b"x", iv=iv, mechanism="AES-GCM")
        assert "hash it first" not in str(refused.value)
        with pytest.raises(ResourceExhausted, match=r"over the 4 MiB gRPC message limit .*\(ECDSA-DIGEST"):
            co.sign("ec", b"x" * (5 * 1000 * 1000), mechanism="ECDSA-SHA256")
        with pytest.raises(InvalidArgument, match="RSA-OAEP cannot encrypt this much"):
            co.encrypt("rsa", b"x" * 1000, mechanism="RSA-OAEP-SHA256")

        # a malformed or wrong signature is an answer (False), not an error
        good = co.sign("ec", DATA, mechanism="ECDSA-SHA256")
        assert co.verify("ec", DATA, good, mechanism="ECDSA-SHA256")
        for key, mechanism in (("ec", "ECDSA-SHA256"), ("ed", "Ed25519"), ("rsa", "RSA-PSS-SHA256")):
            for bad in (b"\x00", b"not a signature at all", good[:-1] + bytes([good[-1] ^ 1])):
                assert co.verify(key, DATA, bad, mechanism=mechanism) is False
        with pytest.raises(InvalidArgument, match="signature must not be empty"):
            co.verify("ec", DATA, b"", mechanism="ECDSA-SHA256")

        sealed = co.encrypt("aes", DATA, mechanism="AES-GCM")
        tampered = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
        with pytest.raises(InvalidArgument, match="authentication check"):
            co.decrypt("aes", tampered, mechanism="AES-GCM", iv=sealed.iv)
        with pytest.raises(InvalidArgument, match="authentication check"):
            co.decrypt("aes", sealed.ciphertext, mechanism="AES-GCM", iv=sealed.iv, aad=b"other")
        with pytest.raises(
            InvalidArgument, match="ciphertext is 15 bytes, shorter than AES-GCM's 16-byte tag"
        ):
            co.decrypt("aes", sealed.ciphertext[:15], mechanism="AES-GCM", iv=sealed.iv)
        with pytest.raises(InvalidArgument, match="12-byte IV"):
            co.decrypt("aes", sealed.ciphertext, mechanism="AES-GCM", iv=sealed.iv[:8])
        with pytest.raises(InvalidArgument, match="RSA-OAEP decryption failed"):
            co.decrypt("rsa", os.urandom(256), mechanism="RSA-OAEP-SHA256")
        assert co.decrypt("aes", sealed.ciphertext, mechanism="AES-GCM", iv=sealed.iv) == DATA

        with pytest.raises(InvalidArgument, match="unknown key type 'DES'"):
            co.generate_key("des", "DES", 56, usage=["encrypt"])
        with pytest.raises(InvalidArgument, match="AES keys come in 128, 256, not '192'"):
            co.generate_key("aes192", "AES", 192, usage=["encrypt"])
        with pytest.raises(InvalidArgument, match="EC keys come in P-256, P-384, not 'P-521'"):
            co.generate_key("p521", "EC", "P-521", usage=["sign"])
        with pytest.raises(InvalidArgument, match="unknown usage flag.*fly"):
            co.generate_key("fly", "AES", 256, usage=["fly"])
        with pytest.raises(InvalidArgument, match="cannot carry usage sign"):
            co.generate_key("aes-sign", "AES", 256, usage=["sign"])
        with pytest.raises(InvalidArgument, match="label must be 1-64 printable"):
            co.generate_key("x" * 65, "AES", 256, usage=["encrypt"])
        with pytest.raises(AlreadyExists, match="already holds a key labelled 'ec'"):
            co.generate_key("ec", "EC", "P-384", usage=["sign"])
        with pytest.raises(NotFound, match="no key 'nosuch'"):
            co.sign("nosuch", DATA, mechanism="ECDSA-SHA256")
        with pytest.raises(NotFound, match="no key 'nosuch'"):
            co.destroy_key("nosuch")
        with pytest.raises(NotFound, match="no key 'nosuch'"):
            co.show_key("nosuch")
        for length in (0, 70000):
            with pytest.raises(InvalidArgument, match="random length must be 1-65536"):
                co.random(length)
        assert len(co.random(32)) == 32
        with pytest.raises(InvalidArgument, match="unknown digest 'MD5'"):
            co.digest(DATA, mechanism="MD5")

        assert {k.label for k in co.list_keys()} == {"ec", "ed", "rsa", "aes"}  # nothing half-created
    for node in NODES:
        status = node_status(cluster, node)
        assert status.ready and status.has_quorum, (node, status)
