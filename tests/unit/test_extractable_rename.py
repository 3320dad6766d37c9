"""Issue 13's rename of `exportable` to PKCS#11's `extractable` (CKA_EXTRACTABLE): the old name is
accepted for one release on the wire, in the SDK and on the command line, and the stored name in the
Raft log does not change (the cluster-level checks are in tests/integration/test_keys.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hsmnode.cli.key import _key_json, extractable_of
from hsmnode.cli.main import cli
from hsmnode.client import KeyInfo
from hsmnode.client._convert import extractable as sdk_extractable
from hsmnode.client._convert import key as key_info_of
from hsmnode.domain import commands as c
from hsmnode.domain.errors import CommandDecodeError
from hsmnode.pb import keys_pb2
from hsmnode.server.keys import extractable, key_info
from hsmnode.service.errors import DomainError, ErrorCode
from hsmnode.service.key_views import KeyView


def key_create(allowed: bool) -> c.KeyCreate:
    return c.KeyCreate(
        actor="partition:pay:CO#2#0",
        request_id="r1",
        timestamp=1,
        container="partition:pay",
        object_id="a" * 32,
        label="k",
        key_type="AES",
        size="256",
        object_class="secret",
        extractable=allowed,
        usage=("encrypt",),
        wrapped=b"w",
        public_der=b"",
        origin="generated",
    )


def test_the_log_keeps_the_stored_name_so_old_and_new_members_write_the_same_bytes() -> None:
    payload = key_create(True).encode()
    body = json.loads(payload)["body"]
    assert body["exportable"] is True and "extractable" not in body
    assert c.decode(payload) == key_create(True)


def test_the_log_refuses_the_code_name_as_an_unknown_field() -> None:
    data = json.loads(key_create(False).encode())
    data["body"]["extractable"] = data["body"].pop("exportable")
    with pytest.raises(CommandDecodeError, match="unknown field.*extractable"):
        c.decode(c.canonical_json(data))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, False),
        ({"exportable": True}, True),  # a client before the rename
        ({"extractable": True}, True),
        ({"extractable": False}, False),
        ({"extractable": True, "exportable": True}, True),  # the SDK of this release sends both
        ({"extractable": True, "exportable": False}, True),
    ],
)
@pytest.mark.parametrize(
    "request_type", [keys_pb2.GenerateKeyRequest, keys_pb2.ImportKeyRequest, keys_pb2.UnwrapKeyRequest]
)
def test_a_request_is_decided_by_extractable_when_set_else_by_the_deprecated_field(
    request_type: type, fields: dict[str, bool], expected: bool
) -> None:
    assert extractable(request_type(**fields)) is expected


def test_a_request_whose_two_fields_disagree_is_refused_naming_both() -> None:
    with pytest.raises(DomainError) as info:
        extractable(keys_pb2.ImportKeyRequest(exportable=True, extractable=False))
    assert info.value.code is ErrorCode.INVALID_ARGUMENT
    assert info.value.message.startswith(
        "ImportKeyRequest: extractable=false and the deprecated exportable=true disagree"
    )


def view(allowed: bool) -> KeyView:
    return KeyView("id", "k", "AES", "256", "secret", allowed, ("encrypt",), b"", "generated", 1, "p", False)


@pytest.mark.parametrize("allowed", [True, False])
def test_an_answer_carries_both_fields_and_the_sdk_reads_an_old_members_answer(allowed: bool) -> None:
    answer = key_info(view(allowed))
    assert (answer.extractable, answer.exportable) == (allowed, allowed)
    assert key_info_of(answer).extractable is allowed
    old = keys_pb2.KeyInfo(id="id", object_class="secret", exportable=allowed)  # no field 13
    assert key_info_of(old).extractable is allowed


def test_the_sdk_keyword_and_attribute_keep_their_old_name_with_a_deprecation_warning() -> None:
    assert sdk_extractable(None, None) is False and sdk_extractable(True, None) is True
    with pytest.warns(DeprecationWarning, match="exportable= is deprecated: pass extractable="):
        assert sdk_extractable(None, True) is True
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="disagree"):
        sdk_extractable(False, True)
    info = key_info_of(key_info(view(True)))
    with pytest.warns(DeprecationWarning, match="KeyInfo.exportable is deprecated"):
        assert info.exportable is True


def test_the_cli_flag_and_json_keep_the_old_name_for_one_release() -> None:
    assert extractable_of(None, False) is False
    assert extractable_of(True, False) is True and extractable_of(None, True) is True
    with pytest.raises(Exception, match="disagree"):
        extractable_of(False, True)
    info: KeyInfo = key_info_of(key_info(view(True)))
    data = _key_json(info)
    assert (data["extractable"], data["exportable"]) == (True, True)
    shown = CliRunner().invoke(cli, ["key", "generate", "--help"]).output
    assert "--extractable / --no-extractable" in shown and "--exportable" not in shown


GENERATE = ["key", "generate", "k", "--on", "nowhere", "--type", "AES", "--size", "256", "--usage", "wrap"]


def test_the_old_cli_flag_is_noted_on_stderr_and_refused_beside_no_extractable(tmp_path: Path) -> None:
    profile = ["--profile", str(tmp_path / "no-profile.json")]
    old = CliRunner().invoke(cli, [*GENERATE, "--exportable", *profile])
    assert "The option 'exportable' is deprecated. Use --extractable" in old.stderr
    assert "no session on 'nowhere'" in old.stderr  # it went on to the session (there is none here)
    both = CliRunner().invoke(cli, [*GENERATE, "--exportable", "--no-extractable", *profile])
    assert both.exit_code == 2
    assert "--exportable (deprecated) and --no-extractable disagree" in both.stderr
