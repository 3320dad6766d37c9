"""The CLI refuses a bad file or endpoint option with one clear usage line (no traceback) before
it connects anywhere: every option naming a file to read or write, every HOST:PORT option."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hsmnode.cli._output import read_input
from hsmnode.cli.main import cli


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert not isinstance(result.exception, (OSError, ValueError)), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["crypto", "verify", "k", "--on", "p", "--in", "-", "--signature", "missing.sig"], "--signature"),
        (["crypto", "sign", "k", "--on", "p", "--in", "missing.bin"], "--in"),
        (["key", "import", "k", "--on", "p", "--type", "AES", "--usage", "encrypt", "--in", "nope"], "--in"),
        (["auth", "associate", "--on", "p", "--set", "nope.json", "--card", "c1"], "--set"),
    ],
)
def test_a_missing_input_file_is_named(tmp_path: Path, args: list[str], option: str) -> None:
    code, out = run(*args)
    assert code == 2
    assert option in out and "does not exist" in out


@pytest.mark.parametrize(
    "args",
    [
        ["crypto", "sign", "k", "--on", "p", "--in", "-", "--out", "{tmp}/no/such/dir/sig"],
        ["key", "export", "k", "--on", "p", "--out", "{tmp}/no/such/dir/k.pem"],
        ["partition", "backup", "p", "--out", "{tmp}/no/such/dir/p.bak"],
        ["cluster", "backup", "--out", "{tmp}/no/such/dir/c.bak"],
    ],
)
def test_an_output_file_in_a_missing_directory_is_named(tmp_path: Path, args: list[str]) -> None:
    code, out = run(*[a.format(tmp=tmp_path) for a in args])
    assert code == 2
    assert "--out" in out and f"directory {tmp_path}/no/such/dir does not exist" in out


@pytest.mark.parametrize("endpoint", ["nonsense", "host:", ":50051", "host:99999", "host:port"])
def test_an_endpoint_not_host_port_is_a_usage_error(endpoint: str) -> None:
    code, out = run("cluster", "status", "--endpoint", endpoint)
    assert code == 2
    assert "--endpoint" in out and "is not HOST:PORT" in out


def test_an_unreadable_input_is_one_error_line(tmp_path: Path) -> None:
    with pytest.raises(click.FileError) as caught:
        read_input(str(tmp_path))  # a directory: the option types refuse it; read_input says so too
    assert caught.value.format_message().startswith(f"Could not open file {str(tmp_path)!r}: Is a directory")


def test_an_unknown_key_type_filter_names_the_known_ones() -> None:
    code, out = run("key", "list", "--on", "p", "--type", "FOO")
    assert code == 2
    assert "'FOO' is not one of 'AES', 'RSA', 'EC', 'Ed25519'" in out


def test_decrypting_a_file_shorter_than_iv_and_tag_names_the_minimum(tmp_path: Path) -> None:
    short = tmp_path / "short.bin"
    short.write_bytes(b"x" * 11)
    code, out = run("crypto", "decrypt", "k", "--on", "p", "--in", str(short))
    assert code == 2
    assert "holds 11 bytes, fewer than AES-GCM's minimum of 28 (a 12-byte IV" in out
    assert "must not be empty" not in out


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["drill", "--duration", "-5"], "--duration"),
        (["drill", "--fault-ratio", "2"], "--fault-ratio"),
        (["dev", "--nodes", "0"], "--nodes"),
    ],
)
def test_out_of_range_numbers_are_usage_errors(args: list[str], option: str) -> None:
    code, out = run(*args)
    assert code == 2 and option in out and "not in the range" in out


def test_help_texts_agree_with_the_behaviour() -> None:
    policy_help = run("partition", "policy", "--help")[1]
    assert "online_authorization" in policy_help
    dev_help = " ".join(run("dev", "--help")[1].split())
    assert "on an existing DIR, grow or shrink it to N" in dev_help


def test_key_list_without_a_type_filter_is_no_usage_error(tmp_path: Path) -> None:
    """The filter is optional: no --type lists every type (a '' default once failed click's Choice)."""
    code, out = run("key", "list", "--on", "p", "--profile", str(tmp_path / "none.json"))
    assert code != 2 and "--type" not in out, out


def test_a_key_type_without_a_default_mechanism_asks_for_one() -> None:
    # crypto sign/verify/encrypt/decrypt without --mechanism take the key type's; an AES key has no
    # signing mechanism, so the CLI says which to name instead of sending ECDSA-SHA256 to be refused
    from types import SimpleNamespace

    from hsmnode.cli.crypto import CIPHER_DEFAULTS, SIGN_DEFAULTS, mechanism_for

    aes = SimpleNamespace(session=SimpleNamespace(show_key=lambda ref: SimpleNamespace(key_type="AES")))
    assert mechanism_for(aes, "k", None, CIPHER_DEFAULTS) == "AES-GCM"  # type: ignore[arg-type]
    assert mechanism_for(aes, "k", "RSA-OAEP-SHA256", SIGN_DEFAULTS) == "RSA-OAEP-SHA256"  # type: ignore[arg-type]
    with pytest.raises(click.UsageError, match="key 'k' is AES, which has no default here: name one with"):
        mechanism_for(aes, "k", None, SIGN_DEFAULTS)  # type: ignore[arg-type]
