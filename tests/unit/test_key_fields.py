"""What a key creation hands to Raft (service/key_fields.py) and the generation's attribute check
(service/keys.py): fresh version-4 object ids (and the SDK's request ids, made alike), and a
refusal raised on every call, never remembered."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import pytest

from hsmnode.client._outcome import new_request_id
from hsmnode.crypto import keys as kc
from hsmnode.domain.errors import DomainError, ErrorCode
from hsmnode.service.key_fields import fields, new_object_id
from hsmnode.service.keys import _generable


@pytest.mark.parametrize("new_id", [new_object_id, new_request_id], ids=["object id", "SDK request id"])
def test_ids_are_fresh_version_4_uuids_in_hex(new_id: Callable[[], str]) -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    for made in ids:
        parsed = uuid.UUID(made)
        assert (parsed.hex, parsed.version, parsed.variant) == (made, 4, uuid.RFC_4122)


def test_key_create_fields_carry_a_new_object_id_and_the_secret_wrapped_for_it() -> None:
    smk, secret = kc.Smk(os.urandom(32)), os.urandom(32)
    found = fields(
        smk, "partition:p", "k", "AES", "256", "secret", False, ["encrypt"], secret, b"", "generated"
    )
    assert uuid.UUID(found["object_id"]).version == 4
    assert secret not in found["wrapped"]
    assert smk.unwrap(f"hsmnode-key/partition:p/{found['object_id']}".encode(), found["wrapped"]) == secret


@pytest.mark.parametrize(
    ("key_type", "size", "object_class", "usage", "names"),
    [
        ("AES", "512", "secret", ("encrypt",), "not '512'"),
        ("AES", "256", "secret", ("sign",), "cannot carry usage sign"),
        ("AES", "256", "secret", (), "at least one usage flag"),
    ],
)
def test_a_refused_generation_is_refused_again_on_every_call(
    key_type: str, size: str, object_class: str, usage: tuple[str, ...], names: str
) -> None:
    for _ in range(2):  # the second call is not answered from the first's memory
        with pytest.raises(DomainError, match=names) as refused:
            _generable(key_type, size, object_class, usage)
        assert refused.value.code is ErrorCode.INVALID_ARGUMENT


def test_a_generable_combination_passes_every_time() -> None:
    for _ in range(2):
        _generable("AES", "256", "secret", ("encrypt", "decrypt"))
        _generable("EC", "P-256", "private", ("sign", "verify"))
