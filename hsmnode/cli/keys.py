"""`hsmnode key ...`, `hsmnode keyring ...`, `hsmnode crypto ...`: keys, keyrings and operations.

Key and crypto commands act in a cached session (hsmnode session open NAME): pick it
with --on NAME (a partition or a keyring). Data comes from --in FILE or stdin ("-"),
results go to --out FILE or stdout.
"""

from __future__ import annotations

import base64
import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from hsmnode.cli._common import (
    container_session,
    emit,
    emit_record,
    json_option,
    password_option,
    profile_options,
    reports_errors,
)
from hsmnode.client import KeyInfo


def on_option(fn):  # type: ignore[no-untyped-def]
    return click.option(
        "--on", "on", required=True, metavar="NAME", help="The partition or keyring of a cached session."
    )(fn)


def _read(path: str) -> bytes:
    return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()


def _write(path: str | None, data: bytes) -> None:
    if path is None or path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        Path(path).write_bytes(data)


def _key_json(k: KeyInfo) -> dict[str, Any]:
    d = dataclasses.asdict(k)
    d["usage"] = list(k.usage)
    d["public_der"] = base64.b64encode(k.public_der).decode()
    return d


def _key_line(k: KeyInfo) -> str:
    flags = ",".join(k.usage) or "-"
    return f"{k.id}  {k.label:<20} {k.key_type:<7} {k.size:<6} {k.object_class:<7} exportable={k.exportable!s:<5} {flags}"


USAGE_HELP = "Usage flag: sign, verify, encrypt, decrypt, wrap, unwrap (repeat)."


@click.group()
def key() -> None:
    """Keys in a partition or keyring session."""


@key.command("generate")
@click.argument("label")
@click.option("--type", "key_type", required=True, type=click.Choice(["AES", "RSA", "EC", "Ed25519"]))
@click.option("--size", required=True, help="AES 128/256, RSA 2048/3072/4096, EC P-256/P-384, Ed25519 255.")
@click.option("--usage", multiple=True, required=True, help=USAGE_HELP)
@click.option("--exportable", is_flag=True, help="Allow wrapping the key off the HSM.")
@on_option
@profile_options
@json_option
@reports_errors
def key_generate(label, key_type, size, usage, exportable, on, profile, endpoints, as_json) -> None:  # type: ignore[no-untyped-def]
    """Generate a key inside the HSM (the member wraps it under the cluster SMK)."""
    client, s = container_session(profile, endpoints, on)
    with client:
        k = s.generate_key(label, key_type, size, usage=list(usage), exportable=exportable)
    emit(as_json, _key_json(k), lambda: click.echo(_key_line(k)))


@key.command("import")
@click.argument("label")
@click.option("--type", "key_type", required=True, type=click.Choice(["AES", "RSA", "EC", "Ed25519"]))
@click.option(
    "--in",
    "source",
    required=True,
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
@click.option("--exportable", is_flag=True)
@on_option
@profile_options
@json_option
@reports_errors
def key_import(
    label, key_type, source, public, wrapping, usage, exportable, on, profile, endpoints, as_json
) -> None:  # type: ignore[no-untyped-def]
    """Import a public key, a wrapped key, or plaintext key material."""
    data = _read(source)
    client, s = container_session(profile, endpoints, on)
    with client:
        if public:
            k = s.import_public_key(label, data, usage=list(usage))
        elif wrapping:
            k = s.unwrap_key(
                wrapping, data, label=label, key_type=key_type, usage=list(usage), exportable=exportable
            )
        else:
            k = s.import_key(label, key_type, data, usage=list(usage), exportable=exportable)
    emit(as_json, _key_json(k), lambda: click.echo(_key_line(k)))


@key.command("list")
@click.option("--label", default="")
@click.option("--type", "key_type", default="")
@click.option("--id", "key_id", default="")
@on_option
@profile_options
@json_option
@reports_errors
def key_list(label, key_type, key_id, on, profile, endpoints, as_json) -> None:  # type: ignore[no-untyped-def]
    """Find keys by label, id or type."""
    client, s = container_session(profile, endpoints, on)
    with client:
        found = s.list_keys(label=label, key_type=key_type, key_id=key_id)
    emit(as_json, [_key_json(k) for k in found], lambda: [click.echo(_key_line(k)) for k in found])


@key.command("show")
@click.argument("key_ref")
@on_option
@profile_options
@json_option
@reports_errors
def key_show(key_ref, on, profile, endpoints, as_json) -> None:  # type: ignore[no-untyped-def]
    """One key's attributes (by id or label)."""
    client, s = container_session(profile, endpoints, on)
    with client:
        k = s.show_key(key_ref)
    emit(as_json, _key_json(k), lambda: click.echo(_key_line(k)))


@key.command("destroy")
@click.argument("key_ref")
@on_option
@profile_options
@reports_errors
def key_destroy(key_ref, on, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """Destroy a key on every member."""
    client, s = container_session(profile, endpoints, on)
    with client:
        s.destroy_key(key_ref)
    click.echo(f"key {key_ref} destroyed")


@key.command("export")
@click.argument("key_ref")
@click.option(
    "--wrap-with",
    "wrapping",
    default=None,
    metavar="KEY",
    help="Export wrapped (AES-KWP) under KEY; without it, the public key (PEM).",
)
@click.option("--out", default=None, help="File to write (default: stdout).")
@on_option
@profile_options
@reports_errors
def key_export(key_ref, wrapping, out, on, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """Export a public key as PEM, or an exportable key wrapped under another."""
    client, s = container_session(profile, endpoints, on)
    with client:
        data = s.wrap_key(wrapping, key_ref) if wrapping else s.export_public_key(key_ref)
    _write(out, data)


@click.group()
def crypto() -> None:
    """Cryptographic operations, served by the member you talk to."""


def _mech(default: str) -> Any:
    return click.option("--mechanism", "-m", default=default, show_default=True)


@crypto.command("sign")
@click.argument("key_ref")
@_mech("ECDSA-SHA256")
@click.option("--in", "source", default="-", show_default=True)
@click.option("--out", default=None)
@on_option
@profile_options
@reports_errors
def crypto_sign(key_ref, mechanism, source, out, on, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """Sign data (RSA-PKCS1-SHA256, RSA-PSS-SHA256, ECDSA-SHA256/384, Ed25519, ...); writes the raw signature."""
    data = _read(source)
    client, s = container_session(profile, endpoints, on)
    with client:
        _write(out, s.sign(key_ref, data, mechanism=mechanism))


@crypto.command("verify")
@click.argument("key_ref")
@_mech("ECDSA-SHA256")
@click.option("--in", "source", default="-", show_default=True)
@click.option("--signature", required=True, help="File with the raw signature.")
@on_option
@profile_options
@json_option
@reports_errors
def crypto_verify(key_ref, mechanism, source, signature, on, profile, endpoints, as_json) -> None:  # type: ignore[no-untyped-def]
    """Verify a signature; exit 1 if it does not verify."""
    data = _read(source)
    client, s = container_session(profile, endpoints, on)
    with client:
        valid = s.verify(key_ref, data, Path(signature).read_bytes(), mechanism=mechanism)
    emit(as_json, {"valid": valid}, lambda: click.echo("signature valid" if valid else "signature INVALID"))
    if not valid:
        raise SystemExit(1)


@crypto.command("encrypt")
@click.argument("key_ref")
@_mech("AES-GCM")
@click.option("--in", "source", default="-", show_default=True)
@click.option("--aad", default="", help="Additional authenticated data (AES-GCM), as text.")
@click.option("--out", default=None, help="Ciphertext file; for AES-GCM the 12-byte IV comes first.")
@on_option
@profile_options
@reports_errors
def crypto_encrypt(key_ref, mechanism, source, aad, out, on, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """Encrypt (AES-GCM or RSA-OAEP-SHA256). AES-GCM output is IV (12 bytes) followed by the ciphertext."""
    data = _read(source)
    client, s = container_session(profile, endpoints, on)
    with client:
        ciphertext, iv = s.encrypt(key_ref, data, mechanism=mechanism, aad=aad.encode())
    _write(out, iv + ciphertext)


@crypto.command("decrypt")
@click.argument("key_ref")
@_mech("AES-GCM")
@click.option("--in", "source", default="-", show_default=True, help="As `crypto encrypt` wrote it.")
@click.option("--aad", default="")
@click.option("--out", default=None)
@on_option
@profile_options
@reports_errors
def crypto_decrypt(key_ref, mechanism, source, aad, out, on, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """Decrypt what `crypto encrypt` produced."""
    blob = _read(source)
    iv, ciphertext = (blob[:12], blob[12:]) if mechanism == "AES-GCM" else (b"", blob)
    client, s = container_session(profile, endpoints, on)
    with client:
        _write(out, s.decrypt(key_ref, ciphertext, mechanism=mechanism, iv=iv, aad=aad.encode()))


@crypto.command("digest")
@_mech("SHA256")
@click.option("--in", "source", default="-", show_default=True)
@on_option
@profile_options
@reports_errors
def crypto_digest(mechanism, source, on, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """Hash data inside the HSM; prints hex."""
    data = _read(source)
    client, s = container_session(profile, endpoints, on)
    with client:
        click.echo(s.digest(data, mechanism=mechanism).hex())


@crypto.command("random")
@click.argument("length", type=int)
@click.option("--out", default=None)
@click.option("--hex", "as_hex", is_flag=True, help="Print hex instead of raw bytes.")
@on_option
@profile_options
@reports_errors
def crypto_random(length, out, as_hex, on, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """LENGTH random bytes from the HSM."""
    client, s = container_session(profile, endpoints, on)
    with client:
        data = s.random(length)
    if as_hex:
        click.echo(data.hex())
    else:
        _write(out, data)


@click.group()
def keyring() -> None:
    """Keyrings: the cluster SO (a PO session on the cluster partition) manages them."""


def so_option(fn):  # type: ignore[no-untyped-def]
    return click.option(
        "--as-so",
        "so",
        default="cluster",
        show_default=True,
        metavar="PARTITION",
        help="The cached PO session on the cluster partition (hsmnode session open cluster --role po --client cluster-so).",
    )(fn)


@keyring.command("create")
@click.argument("label")
@password_option("--krso-password", what="Initial KRSO password")
@so_option
@profile_options
@json_option
@reports_errors
def keyring_create(label, krso_password, so, profile, endpoints, as_json) -> None:  # type: ignore[no-untyped-def]
    """Create a keyring with an initial KRSO password (the KRSO must change it at first login)."""
    client, s = container_session(profile, endpoints, so)
    with client:
        keyring_id = s.create_keyring(label, krso_password)
    emit(
        as_json,
        {"label": label, "id": keyring_id},
        lambda: click.echo(f"keyring {label} created ({keyring_id})"),
    )


@keyring.command("list")
@so_option
@profile_options
@json_option
@reports_errors
def keyring_list(so, profile, endpoints, as_json) -> None:  # type: ignore[no-untyped-def]
    """Every keyring: roles, lock, objects, clients."""
    client, s = container_session(profile, endpoints, so)
    with client:
        rings = s.list_keyrings()

    def human() -> None:
        for r in rings:
            click.echo(
                f"{r.label:<20} {r.id}  krso={'set' if r.krso_initialized else 'initial'} "
                f"krco={'set' if r.krco_set else '-'} locked={r.locked} objects={r.objects} clients={','.join(r.clients) or '-'}"
            )

    emit(as_json, [dataclasses.asdict(r) for r in rings], human)


@keyring.command("show")
@click.argument("label")
@so_option
@profile_options
@json_option
@reports_errors
def keyring_show(label, so, profile, endpoints, as_json) -> None:  # type: ignore[no-untyped-def]
    """One keyring."""
    client, s = container_session(profile, endpoints, so)
    with client:
        r = s.show_keyring(label)
    emit_record(as_json, r)


@keyring.command("assign")
@click.argument("label")
@click.argument("client_name")
@so_option
@profile_options
@reports_errors
def keyring_assign(label, client_name, so, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """Assign a keyring to a registered client."""
    client, s = container_session(profile, endpoints, so)
    with client:
        s.assign_keyring(label, client_name)
    click.echo(f"keyring {label} assigned to {client_name}")


@keyring.command("unassign")
@click.argument("label")
@click.argument("client_name")
@so_option
@profile_options
@reports_errors
def keyring_unassign(label, client_name, so, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """Take a keyring away from a client (its sessions end)."""
    client, s = container_session(profile, endpoints, so)
    with client:
        s.unassign_keyring(label, client_name)
    click.echo(f"keyring {label} unassigned from {client_name}")


@keyring.command("unlock")
@click.argument("label")
@so_option
@profile_options
@reports_errors
def keyring_unlock(label, so, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """Unlock a keyring locked by failed logins."""
    client, s = container_session(profile, endpoints, so)
    with client:
        s.unlock_keyring(label)
    click.echo(f"keyring {label} unlocked")


@keyring.command("delete")
@click.argument("label")
@so_option
@profile_options
@reports_errors
def keyring_delete(label, so, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """Delete a keyring and every key in it."""
    client, s = container_session(profile, endpoints, so)
    with client:
        s.delete_keyring(label)
    click.echo(f"keyring {label} deleted")


@keyring.command("set-krco")
@click.argument("label")
@password_option("--krco-password", what="KRCO password")
@profile_options
@reports_errors
def keyring_set_krco(label, krco_password, profile, endpoints) -> None:  # type: ignore[no-untyped-def]
    """KRSO session on LABEL: set the KRCO password."""
    client, s = container_session(profile, endpoints, label)
    with client:
        s.set_krco(krco_password)
    click.echo(f"KRCO of {label} set")
