"""`hsmnode key ...`: keys in a cached partition or keyring session (--on NAME).

Key material comes from --in FILE or stdin ("-"); exports go to --out FILE or stdout.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from typing import Any

import click

from hsmnode.cli._command import ContainerCall, container_command, on_option
from hsmnode.cli._options import IN_FILE, OUT_FILE
from hsmnode.cli._output import Column, read_input, table, write_output
from hsmnode.client import KeyInfo
from hsmnode.client._partition import ONLY_SIZE

USAGE_HELP = "Usage flag: sign, verify, encrypt, decrypt, wrap, unwrap (repeat)."
KEY_TYPES = click.Choice(["AES", "RSA", "EC", "Ed25519"])
SIZES = {"AES": "128 or 256", "RSA": "2048, 3072 or 4096", "EC": "P-256 or P-384"}

KEY_COLUMNS = [
    Column("ID", "id", sep="  "),
    Column("LABEL", "label", 20),
    Column("TYPE", "key_type", 7),
    Column("SIZE", "size", 6),
    Column("CLASS", "object_class", 7),
    Column("EXTRACTABLE", lambda k: f"extractable={k.extractable}", 17),
    Column("USAGE", lambda k: ",".join(k.usage) or "-"),
]


def _key_json(k: KeyInfo) -> dict[str, Any]:
    d = dataclasses.asdict(k)
    d["exportable"] = k.extractable  # deprecated name of `extractable`, kept in --json for one release
    d["usage"] = list(k.usage)
    d["public_der"] = base64.b64encode(k.public_der).decode()
    return d


def extractable_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--extractable/--no-extractable (CKA_EXTRACTABLE), and the deprecated --exportable, hidden from
    --help and accepted for one release with a deprecation message on stderr (issue 13's rename)."""
    command = click.option(
        "--exportable",
        is_flag=True,
        hidden=True,
        deprecated="Use --extractable (PKCS#11 CKA_EXTRACTABLE); --exportable is accepted for one more release.",
    )(command)
    return click.option(
        "--extractable/--no-extractable",
        default=None,
        help="Allow wrapping the key off the HSM (CKA_EXTRACTABLE; default: not extractable).",
    )(command)


def extractable_of(extractable: bool | None, exportable: bool) -> bool:
    """The key's CKA_EXTRACTABLE from --extractable/--no-extractable and the deprecated --exportable."""
    if exportable and extractable is False:
        raise click.UsageError("--exportable (deprecated) and --no-extractable disagree: pass one of them")
    return bool(extractable) or exportable


def _emit_keys(call: ContainerCall, keys: list[KeyInfo], one: bool) -> None:
    data: Any = _key_json(keys[0]) if one else [_key_json(k) for k in keys]
    call.emit(data, lambda: table(keys, KEY_COLUMNS, header=False))


@click.group()
def key() -> None:
    """Keys in a partition or keyring session."""


@container_command(key, "generate", on=on_option())
@click.argument("label")
@click.option("--type", "key_type", required=True, type=KEY_TYPES)
@click.option(
    "--size", help="AES 128/256, RSA 2048/3072/4096, EC P-256/P-384; Ed25519: 255, may be left out."
)
@click.option("--usage", multiple=True, required=True, help=USAGE_HELP)
@extractable_options
def key_generate(
    call: ContainerCall,
    label: str,
    key_type: str,
    size: str | None,
    usage: tuple[str, ...],
    extractable: bool | None,
    exportable: bool,
) -> None:
    """Generate a key inside the HSM (the member wraps it under the cluster SMK)."""
    if size is None and key_type not in ONLY_SIZE:
        raise click.UsageError(f"--size is needed for an {key_type} key ({SIZES[key_type]})")
    allowed = extractable_of(extractable, exportable)
    k = call.session.generate_key(label, key_type, size, usage=list(usage), extractable=allowed)
    _emit_keys(call, [k], one=True)


@container_command(key, "import", on=on_option())
@click.argument("label")
@click.option("--type", "key_type", required=True, type=KEY_TYPES)
@click.option(
    "--in",
    "source",
    required=True,
    type=IN_FILE,
    help="File with the key: a public key PEM (--public), an AES value, or a private key (PKCS#8 DER/PEM); - for stdin.",
)
@click.option(
    "--public", "public", is_flag=True, help="The file holds a public key (PEM); the CU may import these."
)
@click.option(
    "--wrapped-with",
    "wrapping",
    default=None,
    metavar="KEY",
    help="The file holds key material wrapped (AES-KWP) under KEY.",
)
@click.option("--usage", multiple=True, required=True, help=USAGE_HELP)
@extractable_options
def key_import(
    call: ContainerCall,
    label: str,
    key_type: str,
    source: str,
    public: bool,
    wrapping: str | None,
    usage: tuple[str, ...],
    extractable: bool | None,
    exportable: bool,
) -> None:
    """Import a public key, a wrapped key, or plaintext key material."""
    allowed = extractable_of(extractable, exportable)
    data = read_input(source)
    s = call.session
    if public:
        k = s.import_public_key(label, data, usage=list(usage), key_type=key_type)
    elif wrapping:
        k = s.unwrap_key(
            wrapping, data, label=label, key_type=key_type, usage=list(usage), extractable=allowed
        )
    else:
        k = s.import_key(label, key_type, data, usage=list(usage), extractable=allowed)
    _emit_keys(call, [k], one=True)


@container_command(key, "list", on=on_option())
@click.option("--label", default="")
@click.option("--type", "key_type", default=None, type=KEY_TYPES)
@click.option("--id", "key_id", default="")
def key_list(call: ContainerCall, label: str, key_type: str | None, key_id: str) -> None:
    """Find keys by label, id or type."""
    _emit_keys(call, call.session.list_keys(label=label, key_type=key_type or "", key_id=key_id), one=False)


@container_command(key, "show", on=on_option())
@click.argument("key_ref")
def key_show(call: ContainerCall, key_ref: str) -> None:
    """One key's attributes (by id or label)."""
    _emit_keys(call, [call.session.show_key(key_ref)], one=True)


@container_command(key, "destroy", on=on_option(), json=False)
@click.argument("key_ref")
def key_destroy(call: ContainerCall, key_ref: str) -> None:
    """Destroy a key on every member."""
    call.session.destroy_key(key_ref)
    click.echo(f"key {key_ref} destroyed")


@container_command(key, "export", on=on_option(), json=False)
@click.argument("key_ref")
@click.option(
    "--wrap-with",
    "wrapping",
    default=None,
    metavar="KEY",
    help="Export wrapped (AES-KWP) under KEY; without it, the public key (PEM).",
)
@click.option("--out", default=None, type=OUT_FILE, help="File to write (default: stdout).")
def key_export(call: ContainerCall, key_ref: str, wrapping: str | None, out: str | None) -> None:
    """Export a public key as PEM, or an extractable key wrapped under another."""
    s = call.session
    write_output(out, s.wrap_key(wrapping, key_ref) if wrapping else s.export_public_key(key_ref))
