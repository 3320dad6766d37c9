"""PKCS#11 mechanisms the token offers and the SDK mechanism each maps onto.

    signing (key type)              one-shot SDK mechanism       multi-part: bridge hashes, then
    CKM_ECDSA (EC)                  ECDSA-DIGEST                 (one-shot only: input is a digest)
    CKM_ECDSA_SHA256/384/512 (EC)   ECDSA-SHA256/384/512         ECDSA-DIGEST
    CKM_RSA_PKCS (RSA)              RSA-PKCS1-DIGESTINFO         (one-shot only)
    CKM_SHA256/384/512_RSA_PKCS     RSA-PKCS1-SHA256/384/512     RSA-PKCS1-DIGESTINFO
    CKM_RSA_PKCS_PSS (RSA)          RSA-PSS-SHAxxx-DIGEST        (one-shot only)
    CKM_SHA256/384/512_RSA_PKCS_PSS RSA-PSS-SHA256/384/512       RSA-PSS-SHAxxx-DIGEST
    CKM_EDDSA (EC_EDWARDS)          Ed25519                      (whole message, up to 64 KiB)

PSS parameters must name the mechanism's hash, MGF1 with that hash, and a salt as long as
the digest (what the cluster does); anything else is CKR_MECHANISM_PARAM_INVALID.
Bookworm's p11-kit-client (0.24.1) forwards only mechanisms without parameters plus RSA-PSS
and RSA-OAEP: CKM_ECDSA_SHAxxx, the hashed PSS variants, AES-GCM, EdDSA, Edwards key
generation and AES-KWP never leave the application through it (the client module answers
CKR_MECHANISM_INVALID itself); p11-kit >= 0.25 forwards ECDSA-SHAxxx, hashed PSS and GCM
(p11-kit/rpc-message.c: mechanism_has_no_parameters and p11_rpc_mechanism_serializers). No
version up to 0.25.10 forwards CKM_AES_KEY_WRAP or CKM_AES_KEY_WRAP_KWP, so C_WrapKey and
C_UnwrapKey through a client module use CKM_AES_GCM, which the member does (Keys.Wrap).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hsmnode.pkcs11.rpc.constants import (
    CKF_DECRYPT,
    CKF_DIGEST,
    CKF_EC_F_P,
    CKF_EC_NAMEDCURVE,
    CKF_EC_UNCOMPRESS,
    CKF_ENCRYPT,
    CKF_GENERATE,
    CKF_GENERATE_KEY_PAIR,
    CKF_HW,
    CKF_SIGN,
    CKF_UNWRAP,
    CKF_VERIFY,
    CKF_WRAP,
    CKG,
    CKK,
    CKM,
    CKR,
)
from hsmnode.pkcs11.rpc.dispatch import CkError
from hsmnode.pkcs11.rpc.wire import Mechanism

# keyed by int: a mechanism type read off the wire is a plain integer (CKM members hash alike)
HASH_MECHANISMS: dict[int, str] = {CKM.SHA256: "sha256", CKM.SHA384: "sha384", CKM.SHA512: "sha512"}
_MGF = {"SHA256": CKG.MGF1_SHA256, "SHA384": CKG.MGF1_SHA384, "SHA512": CKG.MGF1_SHA512}
_HASH_CKM: dict[int, str] = {CKM.SHA256: "SHA256", CKM.SHA384: "SHA384", CKM.SHA512: "SHA512"}
DIGEST_INFO_PREFIX = {
    "SHA256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "SHA384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "SHA512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


@dataclass(frozen=True)
class SignMechanism:
    key_type: int  # CKK
    one_shot: str  # SDK mechanism for C_Sign / C_Verify
    hash_name: str = ""  # "SHA256"...: the bridge hashes multi-part input itself
    prehashed: str = ""  # SDK mechanism for a digest the bridge computed (multi-part)
    digest_info: bool = False  # wrap the digest in a DigestInfo (PKCS#1 v1.5)


SIGN: dict[int, SignMechanism] = {
    CKM.ECDSA: SignMechanism(CKK.EC, "ECDSA-DIGEST"),
    CKM.ECDSA_SHA256: SignMechanism(CKK.EC, "ECDSA-SHA256", "SHA256", "ECDSA-DIGEST"),
    CKM.ECDSA_SHA384: SignMechanism(CKK.EC, "ECDSA-SHA384", "SHA384", "ECDSA-DIGEST"),
    CKM.ECDSA_SHA512: SignMechanism(CKK.EC, "ECDSA-SHA512", "SHA512", "ECDSA-DIGEST"),
    CKM.RSA_PKCS: SignMechanism(CKK.RSA, "RSA-PKCS1-DIGESTINFO"),
    CKM.SHA256_RSA_PKCS: SignMechanism(CKK.RSA, "RSA-PKCS1-SHA256", "SHA256", "RSA-PKCS1-DIGESTINFO", True),
    CKM.SHA384_RSA_PKCS: SignMechanism(CKK.RSA, "RSA-PKCS1-SHA384", "SHA384", "RSA-PKCS1-DIGESTINFO", True),
    CKM.SHA512_RSA_PKCS: SignMechanism(CKK.RSA, "RSA-PKCS1-SHA512", "SHA512", "RSA-PKCS1-DIGESTINFO", True),
    CKM.RSA_PKCS_PSS: SignMechanism(CKK.RSA, ""),  # the hash comes from the parameter
    CKM.SHA256_RSA_PKCS_PSS: SignMechanism(CKK.RSA, "RSA-PSS-SHA256", "SHA256", "RSA-PSS-SHA256-DIGEST"),
    CKM.SHA384_RSA_PKCS_PSS: SignMechanism(CKK.RSA, "RSA-PSS-SHA384", "SHA384", "RSA-PSS-SHA384-DIGEST"),
    CKM.SHA512_RSA_PKCS_PSS: SignMechanism(CKK.RSA, "RSA-PSS-SHA512", "SHA512", "RSA-PSS-SHA512-DIGEST"),
    CKM.EDDSA: SignMechanism(CKK.EC_EDWARDS, "Ed25519"),
}

# (min, max key size, flags) for C_GetMechanismInfo: bits for RSA/EC/AES, bytes never
INFO: dict[int, tuple[int, int, int]] = {
    CKM.RSA_PKCS_KEY_PAIR_GEN: (2048, 4096, CKF_HW | CKF_GENERATE_KEY_PAIR),
    CKM.EC_KEY_PAIR_GEN: (
        256,
        384,
        CKF_HW | CKF_GENERATE_KEY_PAIR | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS,
    ),
    CKM.EC_EDWARDS_KEY_PAIR_GEN: (255, 255, CKF_HW | CKF_GENERATE_KEY_PAIR),
    CKM.AES_KEY_GEN: (16, 32, CKF_HW | CKF_GENERATE),
    CKM.RSA_PKCS: (2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    CKM.SHA256_RSA_PKCS: (2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    CKM.SHA384_RSA_PKCS: (2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    CKM.SHA512_RSA_PKCS: (2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    CKM.RSA_PKCS_PSS: (2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    CKM.SHA256_RSA_PKCS_PSS: (2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    CKM.SHA384_RSA_PKCS_PSS: (2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    CKM.SHA512_RSA_PKCS_PSS: (2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    CKM.RSA_PKCS_OAEP: (2048, 4096, CKF_HW | CKF_ENCRYPT | CKF_DECRYPT),
    CKM.ECDSA: (256, 384, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_NAMEDCURVE),
    CKM.ECDSA_SHA256: (256, 384, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_NAMEDCURVE),
    CKM.ECDSA_SHA384: (256, 384, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_NAMEDCURVE),
    CKM.ECDSA_SHA512: (256, 384, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_NAMEDCURVE),
    CKM.EDDSA: (255, 255, CKF_HW | CKF_SIGN | CKF_VERIFY),
    CKM.AES_GCM: (16, 32, CKF_HW | CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP),
    CKM.AES_KEY_WRAP_KWP: (16, 32, CKF_HW | CKF_WRAP | CKF_UNWRAP),
    CKM.SHA256: (0, 0, CKF_DIGEST),
    CKM.SHA384: (0, 0, CKF_DIGEST),
    CKM.SHA512: (0, 0, CKF_DIGEST),
}


def _pss_hash(mechanism: Mechanism, expected: str = "") -> str:
    """The hash an RSA-PSS parameter names, after checking it fits what the cluster signs."""
    param = mechanism.parameter
    if not isinstance(param, tuple) or len(param) != 3:
        raise CkError(CKR.MECHANISM_PARAM_INVALID, "RSA-PSS needs a CK_RSA_PKCS_PSS_PARAMS parameter")
    hash_alg, mgf, salt = param
    name = _HASH_CKM.get(int(hash_alg or 0), "")
    if not name or (expected and name != expected):
        raise CkError(CKR.MECHANISM_PARAM_INVALID, f"RSA-PSS hash {hash_alg!r} is not supported here")
    if mgf != _MGF[name] or salt != hashlib.new(name.lower()).digest_size:
        raise CkError(
            CKR.MECHANISM_PARAM_INVALID,
            f"RSA-PSS with {name} needs MGF1-{name} and a salt of the digest's length",
        )
    return name


def sign_mechanism(mechanism: Mechanism) -> SignMechanism:
    """The signing mechanism for C_SignInit/C_VerifyInit; CkError for unknown ones or bad parameters."""
    spec = SIGN.get(mechanism.type)
    if spec is None:
        raise CkError(CKR.MECHANISM_INVALID, f"mechanism {mechanism.type:#x} cannot sign here")
    if mechanism.type == CKM.RSA_PKCS_PSS:
        name = _pss_hash(mechanism)
        return SignMechanism(CKK.RSA, f"RSA-PSS-{name}-DIGEST")
    if spec.one_shot.startswith("RSA-PSS"):
        if mechanism.parameter is not None:
            _pss_hash(mechanism, spec.hash_name)
    elif mechanism.parameter not in (None, b""):
        raise CkError(CKR.MECHANISM_PARAM_INVALID, f"mechanism {mechanism.type:#x} takes no parameter")
    return spec


def oaep_check(mechanism: Mechanism) -> str:
    """The SDK mechanism for CKM_RSA_PKCS_OAEP: SHA-256, MGF1-SHA256, no label."""
    param = mechanism.parameter
    if not isinstance(param, tuple) or len(param) != 4:
        raise CkError(CKR.MECHANISM_PARAM_INVALID, "RSA-OAEP needs a CK_RSA_PKCS_OAEP_PARAMS parameter")
    hash_alg, mgf, _source, label = param
    if hash_alg != CKM.SHA256 or mgf != CKG.MGF1_SHA256 or label:
        raise CkError(CKR.MECHANISM_PARAM_INVALID, "RSA-OAEP here is SHA-256 with MGF1-SHA256 and no label")
    return "RSA-OAEP-SHA256"


def gcm_params(mechanism: Mechanism) -> tuple[bytes, bytes]:
    """(IV, AAD) of a CKM_AES_GCM parameter (CK_GCM_PARAMS): what the cluster does is a 12-byte IV and a
    128-bit tag (PKCS#11 3.0 §2.12.3 allows others); anything else is CKR_MECHANISM_PARAM_INVALID."""
    param = mechanism.parameter
    if not isinstance(param, tuple) or len(param) != 4:
        raise CkError(CKR.MECHANISM_PARAM_INVALID, "AES-GCM needs a CK_GCM_PARAMS parameter")
    iv, _iv_bits, aad, tag_bits = param
    if not isinstance(iv, bytes) or len(iv) != 12 or tag_bits != 128:
        raise CkError(CKR.MECHANISM_PARAM_INVALID, "AES-GCM here takes a 12-byte IV and a 128-bit tag")
    return iv, bytes(aad or b"")


def wrap_mechanism(mechanism: Mechanism) -> tuple[str, bytes, bytes]:
    """(SDK wrap mechanism, IV, AAD) for C_WrapKey/C_UnwrapKey: CKM_AES_GCM (forwarded by p11-kit >= 0.25)
    or CKM_AES_KEY_WRAP_KWP (forwarded by no p11-kit client; raw protocol clients)."""
    if mechanism.type == CKM.AES_GCM:
        return ("AES-GCM", *gcm_params(mechanism))
    if mechanism.type == CKM.AES_KEY_WRAP_KWP:
        if mechanism.parameter not in (None, b""):
            raise CkError(CKR.MECHANISM_PARAM_INVALID, "AES-KWP here takes no parameter (the RFC 5649 IV)")
        return "AES-KWP", b"", b""
    raise CkError(
        CKR.MECHANISM_INVALID, f"mechanism {mechanism.type:#x} cannot wrap here (AES-GCM, AES-KWP can)"
    )


def digest_for_signature(spec: SignMechanism, data: bytes) -> bytes:
    """What the prehashed SDK mechanism signs for multi-part input: the digest, or its DigestInfo."""
    digest = hashlib.new(spec.hash_name.lower(), data).digest()
    return DIGEST_INFO_PREFIX[spec.hash_name] + digest if spec.digest_info else digest
