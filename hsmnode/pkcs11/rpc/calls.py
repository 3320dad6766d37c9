"""The p11-kit RPC call table, protocol version 0 (p11-kit `rpc-message.h`, 0.24.1).

Each call is numbered by its position; a message starts with the u32 call id and the
call's signature as a byte array, which the receiver checks. Signature letters:

    u  CK_ULONG (u64)          y  CK_BYTE            z  NUL-free string (byte array)
    ay byte array with a       au ulong array with    aA attribute array with values
       presence byte              a presence byte
    fy "room for N bytes":     fu room for N ulongs   fA attribute types with the
       the caller's buffer                               caller's buffer lengths
       length (0 = NULL)
    M  mechanism               s  blank-padded string v  CK_VERSION (2 bytes)

Bookworm's p11-kit-client.so (0.24.1) asks for protocol version 0 and speaks exactly these
66 calls; later versions add PKCS#11 3.0 calls at 66 and above, which this bridge answers
with CKR_FUNCTION_NOT_SUPPORTED.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROTOCOL_VERSION = 0
HANDSHAKE = b"PRIVATE-GNOME-KEYRING-PKCS11-PROTOCOL-V-1"  # C_Initialize's first argument

_TOKEN = re.compile(r"a[yuA]|f[yuA]|[uyzMsv]")


@dataclass(frozen=True)
class Call:
    id: int
    name: str
    request: str
    response: str

    @property
    def request_parts(self) -> tuple[str, ...]:
        return tuple(_TOKEN.findall(self.request))

    @property
    def response_parts(self) -> tuple[str, ...]:
        return tuple(_TOKEN.findall(self.response))


_TABLE = [
    ("ERROR", "", "u"),
    ("C_Initialize", "ayyay", ""),
    ("C_Finalize", "", ""),
    ("C_GetInfo", "", "vsusv"),
    ("C_GetSlotList", "yfu", "au"),
    ("C_GetSlotInfo", "u", "ssuvv"),
    ("C_GetTokenInfo", "u", "ssssuuuuuuuuuuuvvs"),
    ("C_GetMechanismList", "ufu", "au"),
    ("C_GetMechanismInfo", "uu", "uuu"),
    ("C_InitToken", "uayz", ""),
    ("C_OpenSession", "uu", "u"),
    ("C_CloseSession", "u", ""),
    ("C_CloseAllSessions", "u", ""),
    ("C_GetSessionInfo", "u", "uuuu"),
    ("C_InitPIN", "uay", ""),
    ("C_SetPIN", "uayay", ""),
    ("C_GetOperationState", "ufy", "ay"),
    ("C_SetOperationState", "uayuu", ""),
    ("C_Login", "uuay", ""),
    ("C_Logout", "u", ""),
    ("C_CreateObject", "uaA", "u"),
    ("C_CopyObject", "uuaA", "u"),
    ("C_DestroyObject", "uu", ""),
    ("C_GetObjectSize", "uu", "u"),
    ("C_GetAttributeValue", "uufA", "aAu"),
    ("C_SetAttributeValue", "uuaA", ""),
    ("C_FindObjectsInit", "uaA", ""),
    ("C_FindObjects", "ufu", "au"),
    ("C_FindObjectsFinal", "u", ""),
    ("C_EncryptInit", "uMu", ""),
    ("C_Encrypt", "uayfy", "ay"),
    ("C_EncryptUpdate", "uayfy", "ay"),
    ("C_EncryptFinal", "ufy", "ay"),
    ("C_DecryptInit", "uMu", ""),
    ("C_Decrypt", "uayfy", "ay"),
    ("C_DecryptUpdate", "uayfy", "ay"),
    ("C_DecryptFinal", "ufy", "ay"),
    ("C_DigestInit", "uM", ""),
    ("C_Digest", "uayfy", "ay"),
    ("C_DigestUpdate", "uay", ""),
    ("C_DigestKey", "uu", ""),
    ("C_DigestFinal", "ufy", "ay"),
    ("C_SignInit", "uMu", ""),
    ("C_Sign", "uayfy", "ay"),
    ("C_SignUpdate", "uay", ""),
    ("C_SignFinal", "ufy", "ay"),
    ("C_SignRecoverInit", "uMu", ""),
    ("C_SignRecover", "uayfy", "ay"),
    ("C_VerifyInit", "uMu", ""),
    ("C_Verify", "uayay", ""),
    ("C_VerifyUpdate", "uay", ""),
    ("C_VerifyFinal", "uay", ""),
    ("C_VerifyRecoverInit", "uMu", ""),
    ("C_VerifyRecover", "uayfy", "ay"),
    ("C_DigestEncryptUpdate", "uayfy", "ay"),
    ("C_DecryptDigestUpdate", "uayfy", "ay"),
    ("C_SignEncryptUpdate", "uayfy", "ay"),
    ("C_DecryptVerifyUpdate", "uayfy", "ay"),
    ("C_GenerateKey", "uMaA", "u"),
    ("C_GenerateKeyPair", "uMaAaA", "uu"),
    ("C_WrapKey", "uMuufy", "ay"),
    ("C_UnwrapKey", "uMuayaA", "u"),
    ("C_DeriveKey", "uMuaA", "u"),
    ("C_SeedRandom", "uay", ""),
    ("C_GenerateRandom", "ufy", "ay"),
    ("C_WaitForSlotEvent", "u", "u"),
]

CALLS: tuple[Call, ...] = tuple(Call(i, name, req, resp) for i, (name, req, resp) in enumerate(_TABLE))
BY_NAME: dict[str, Call] = {c.name: c for c in CALLS}
ERROR = CALLS[0]
