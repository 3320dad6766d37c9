"""Issue 14: python-pkcs11 applications through p11-kit-client.so (bookworm's 0.24.1, and p11-kit 0.25.5's for
AES-GCM and key wrapping) and the bridge, on a real cluster;
two applications through two bridges on two members see each other's keys."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hsmnode.ops.devcluster import DevCluster
from tests.common.cluster import IN_PROCESS, start_cluster
from tests.integration.helpers import as_auditor
from tests.integration.pkcs11_support import (
    CLIENT_MODULE,
    BridgeProcess,
    client_module_025,
    require_pkcs11_tools,
)

pytestmark = pytest.mark.cluster
pkcs11 = pytest.importorskip("pkcs11", reason="python-pkcs11 is in the test extra")
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass  # noqa: E402
from pkcs11 import exceptions as p11err  # noqa: E402
from pkcs11.mechanisms import GCMParams  # noqa: E402
from pkcs11.util.ec import encode_named_curve_parameters  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, BridgeProcess]]:
    require_pkcs11_tools()
    cluster = start_cluster(tmp_path_factory.mktemp("p11py"), fault_injection=False, kind=IN_PROCESS)
    bridge = None
    try:
        bridge = BridgeProcess(cluster)
        yield cluster, bridge
    finally:
        if bridge is not None:
            bridge.stop()
        cluster.stop()


@pytest.fixture(scope="module")
def token(world: tuple[DevCluster, BridgeProcess]) -> Any:
    """The demo partition's token; python-pkcs11 loads p11-kit-client.so once per process."""
    os.environ["P11_KIT_SERVER_ADDRESS"] = world[1].address
    return pkcs11.lib(CLIENT_MODULE).get_token(token_label="demo")


def pin(cluster: DevCluster, role: str = "co_password") -> str:
    demo = cluster.demo()
    assert demo is not None
    return str(demo["partition"][role])


def test_python_pkcs11_keys_signatures_ciphers_attributes_and_searches(world, token) -> None:  # type: ignore[no-untyped-def]
    cluster, _ = world
    assert token.label == "demo" and token.manufacturer_id == "hsmnode"
    with token.open(user_pin=pin(cluster), rw=True) as session:
        params = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
        )
        ec_pub, ec_priv = params.generate_keypair(store=True, label="py-ec")
        rsa_pub, rsa_priv = session.generate_keypair(
            KeyType.RSA,
            2048,
            store=True,
            label="py-rsa",
            public_template={Attribute.ENCRYPT: True, Attribute.VERIFY: True},
            private_template={Attribute.DECRYPT: True, Attribute.SIGN: True},
        )
        aes = session.generate_key(
            KeyType.AES, 256, store=True, label="py-aes", template={Attribute.EXTRACTABLE: True}
        )

        digest = hashlib.sha256(b"python-pkcs11 was here").digest()
        signature = ec_priv.sign(digest, mechanism=Mechanism.ECDSA)
        assert len(signature) == 64 and ec_pub.verify(digest, signature, mechanism=Mechanism.ECDSA)
        assert not ec_pub.verify(digest, bytes(64), mechanism=Mechanism.ECDSA)
        for mech, kwargs in (
            (Mechanism.SHA256_RSA_PKCS, {}),
            (Mechanism.RSA_PKCS_PSS, {"mechanism_param": (Mechanism.SHA256, pkcs11.MGF.SHA256, 32)}),
        ):
            data = b"message" if mech == Mechanism.SHA256_RSA_PKCS else digest
            sig = rsa_priv.sign(data, mechanism=mech, **kwargs)
            assert rsa_pub.verify(data, sig, mechanism=mech, **kwargs)
        chunks = [b"multi", b"-part ", b"signing"]  # hashed in the bridge, signed as a digest in the cluster
        sig = rsa_priv.sign(iter(chunks), mechanism=Mechanism.SHA256_RSA_PKCS)
        assert sig == rsa_priv.sign(
            b"".join(chunks), mechanism=Mechanism.SHA256_RSA_PKCS
        )  # PKCS#1 v1.5 is deterministic

        oaep = (Mechanism.SHA256, pkcs11.MGF.SHA256, None)
        ciphertext = rsa_pub.encrypt(b"secret note", mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep)
        assert (
            rsa_priv.decrypt(ciphertext, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep)
            == b"secret note"
        )

        # no p11-kit client forwards AES-KWP (bookworm's refuses it itself); AES-GCM wrapping needs
        # p11-kit >= 0.25 (test_python_pkcs11_aes_gcm_and_wrap_through_p11_kit_025)
        with pytest.raises(p11err.MechanismInvalid):
            aes.wrap_key(aes, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        with pytest.raises(p11err.MechanismInvalid):
            aes.wrap_key(aes, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(bytes(12)))

        # attributes and searches
        assert ec_priv[Attribute.LABEL] == "py-ec" and ec_priv[Attribute.ID] == ec_pub[Attribute.ID]
        assert ec_pub[Attribute.EC_PARAMS] == encode_named_curve_parameters("secp256r1")
        assert len(ec_pub[Attribute.EC_POINT]) == 67
        assert (
            rsa_pub[Attribute.MODULUS_BITS] == 2048 and rsa_pub[Attribute.PUBLIC_EXPONENT] == b"\x01\x00\x01"
        )
        assert aes[Attribute.VALUE_LEN] == 32 and aes[Attribute.EXTRACTABLE] and aes[Attribute.SENSITIVE]
        with pytest.raises(p11err.AttributeSensitive):
            aes[Attribute.VALUE]
        with pytest.raises(p11err.AttributeSensitive):
            rsa_priv[Attribute.PRIVATE_EXPONENT]
        privates = {o.label for o in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})}
        assert {"py-ec", "py-rsa"} <= privates and "py-aes" not in privates
        found = list(session.get_objects({Attribute.LABEL: "py-rsa"}))
        assert sorted(o.object_class for o in found) == [ObjectClass.PUBLIC_KEY, ObjectClass.PRIVATE_KEY]
        assert session.get_key(label="py-aes").key_type == KeyType.AES
        assert len(session.generate_random(512)) == 64  # python-pkcs11 counts bits
        assert session.digest(b"abc", mechanism=Mechanism.SHA256) == hashlib.sha256(b"abc").digest()

        # a session object (CKA_TOKEN false) lives as long as its session
        temporary = session.generate_key(KeyType.AES, 128, label="py-session-key")
        assert not temporary[Attribute.TOKEN]
    with token.open(user_pin=pin(cluster)) as session:
        assert not list(session.get_objects({Attribute.LABEL: "py-session-key"}))
        assert list(session.get_objects({Attribute.LABEL: "py-ec"}))


@pytest.fixture(scope="module")
def token025(world: tuple[DevCluster, BridgeProcess]) -> Any:
    """The demo token through p11-kit 0.25.5's client module (`make pkcs11-clients`), which forwards
    CK_GCM_PARAMS; loaded beside bookworm's in the same process."""
    os.environ["P11_KIT_SERVER_ADDRESS"] = world[1].address
    return pkcs11.lib(client_module_025()).get_token(token_label="demo")


def test_python_pkcs11_aes_gcm_and_wrap_through_p11_kit_025(world, token025) -> None:  # type: ignore[no-untyped-def]
    """AES-GCM encrypt/decrypt and C_WrapKey/C_UnwrapKey with CKM_AES_GCM (the one wrap mechanism a p11-kit
    client forwards). The wrapping key is imported with a value the test knows (C_CreateObject), so
    `cryptography` opens the ciphertext and the wrapped key outside the product; the member wraps."""
    cluster, _ = world
    kek = os.urandom(32)
    with token025.open(user_pin=pin(cluster), rw=True) as session:
        wrapper = session.create_object(
            {
                Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: KeyType.AES,
                Attribute.VALUE: kek,
                Attribute.TOKEN: True,
                Attribute.LABEL: "py-kek",
                Attribute.ENCRYPT: True,
                Attribute.DECRYPT: True,
                Attribute.WRAP: True,
                Attribute.UNWRAP: True,
            }
        )
        iv, aad = os.urandom(12), b"header"
        plain = b"AES-GCM through p11-kit 0.25's client module" * 4
        ciphertext = wrapper.encrypt(plain, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, aad))
        assert AESGCM(kek).decrypt(iv, ciphertext, aad) == plain  # outside the product
        assert (
            wrapper.decrypt(ciphertext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, aad))
            == plain
        )
        with pytest.raises(p11err.EncryptedDataInvalid):
            wrapper.decrypt(ciphertext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, b"other"))

        target = session.generate_key(
            KeyType.AES, 256, store=True, label="py-wrapped", template={Attribute.EXTRACTABLE: True}
        )
        wrap_iv = os.urandom(12)
        wrapped = wrapper.wrap_key(
            target, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(wrap_iv, aad)
        )
        value = AESGCM(kek).decrypt(wrap_iv, wrapped, aad)  # the target's value, never seen in plaintext
        assert len(value) == 32 and value not in wrapped
        nonce = os.urandom(12)
        sealed = target.encrypt(
            b"sealed by the target", mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce)
        )
        assert AESGCM(value).decrypt(nonce, sealed, None) == b"sealed by the target"

        back = wrapper.unwrap_key(
            ObjectClass.SECRET_KEY,
            KeyType.AES,
            wrapped,
            mechanism=Mechanism.AES_GCM,
            mechanism_param=GCMParams(wrap_iv, aad),
            label="py-unwrapped",
            store=True,
            template={Attribute.DECRYPT: True, Attribute.ENCRYPT: False},
        )
        assert back[Attribute.VALUE_LEN] == 32 and back[Attribute.LABEL] == "py-unwrapped"
        opened = back.decrypt(sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce))
        assert opened == b"sealed by the target"

        # bad input: the right CKR codes, and the bridge keeps serving
        with pytest.raises(p11err.WrappedKeyInvalid):
            wrapper.unwrap_key(
                ObjectClass.SECRET_KEY, KeyType.AES, wrapped[:-1] + bytes([wrapped[-1] ^ 1]),
                mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(wrap_iv, aad), label="py-tampered",
            )  # fmt: skip
        with pytest.raises(p11err.MechanismParamInvalid):
            wrapper.wrap_key(target, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(wrap_iv[:8]))
        with pytest.raises(p11err.KeyUnextractable):  # unwrapped without CKA_EXTRACTABLE
            wrapper.wrap_key(back, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(os.urandom(12)))
        assert (
            wrapper.wrap_key(target, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(wrap_iv, aad))
            == wrapped
        )


def test_python_pkcs11_login_rules(world, token) -> None:  # type: ignore[no-untyped-def]
    cluster, _ = world
    with pytest.raises(p11err.PinIncorrect):
        token.open(user_pin="Wrong-pin-but-long")
    with pytest.raises(p11err.PinLenRange):
        token.open(user_pin="short")
    with token.open(
        user_pin=pin(cluster, "cu_password"), user_type=0x80000001, rw=True
    ) as cu:  # Luna CKU_CRYPTO_USER
        assert list(cu.get_objects({Attribute.LABEL: "py-ec"}))  # the CU uses keys...
        with pytest.raises(p11err.UserNotLoggedIn):  # ...but creates no private objects
            cu.generate_key(KeyType.AES, 128, store=True, label="cu-aes")


def test_signs_through_the_bridge_are_in_the_key_usage_audit_of_the_member_that_served_them(
    world, token
) -> None:  # type: ignore[no-untyped-def]
    """DOMAIN.md §6 under the bridge: the bridge reaches the cluster with its registered NTLS client
    certificate (channel separation lets it through) and every C_Sign is one key.sign record, with
    the pre-hashed mechanism, in the key-usage chain of the member that served it."""
    cluster, _ = world
    with token.open(user_pin=pin(cluster), rw=True) as session:
        params = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
        )
        _, private = params.generate_keypair(store=True, label="py-audited")
        digest = hashlib.sha256(b"audited through the bridge").digest()
        for _ in range(3):
            assert len(private.sign(digest, mechanism=Mechanism.ECDSA)) == 64
        key_id = private[Attribute.ID].hex()
    signs = []
    for member in cluster.members:
        auditor = as_auditor(cluster, member.id)
        with auditor.client:
            records = auditor.audit_list(limit=1000, chain="member").records
        signs += [r for r in records if r.command == "key.sign" and r.key == key_id]
    assert len(signs) == 3, signs
    for record in signs:
        assert record.outcome == "ok" and record.container == "partition:demo", record
        assert record.actor.startswith("client:") and "ECDSA-DIGEST" in record.detail, record
        assert record.member in {m.id for m in cluster.members} and record.chain == "member", record


APP = textwrap.dedent(
    """
    import hashlib, json, os, sys, time
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism
    from pkcs11.util.ec import encode_named_curve_parameters
    token = pkcs11.lib(sys.argv[1]).get_token(token_label="demo")
    digest = hashlib.sha256(b"shared").digest()
    with token.open(user_pin=os.environ["PIN"], rw=True) as s:
        if sys.argv[2] == "create":
            p = s.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
            pub, priv = p.generate_keypair(store=True, label="shared-across-bridges")
            print(json.dumps({"signature": priv.sign(digest, mechanism=Mechanism.ECDSA).hex()}))
        else:
            for _ in range(100):
                found = list(s.get_objects({Attribute.LABEL: "shared-across-bridges", Attribute.CLASS: pkcs11.ObjectClass.PUBLIC_KEY}))
                if found:
                    break
                time.sleep(0.1)
            ok = found[0].verify(digest, bytes.fromhex(sys.argv[3]), mechanism=Mechanism.ECDSA)
            print(json.dumps({"found": len(found), "verified": ok}))
    """
)


def test_two_applications_through_two_bridges_on_two_members_share_keys(world) -> None:  # type: ignore[no-untyped-def]
    cluster, _ = world
    first = BridgeProcess(cluster, [cluster.members[0].grpc])
    second = BridgeProcess(cluster, [cluster.members[1].grpc])
    try:
        env = {"PIN": pin(cluster)}

        def app(bridge: BridgeProcess, *args: str) -> dict[str, Any]:
            out = subprocess.run(
                [sys.executable, "-c", APP, CLIENT_MODULE, *args],
                env={**bridge.env, **env},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert out.returncode == 0, out.stderr
            return dict(json.loads(out.stdout))

        created = app(first, "create")
        seen = app(second, "find", created["signature"])
        assert seen == {"found": 1, "verified": True}
    finally:
        first.stop()
        second.stop()
