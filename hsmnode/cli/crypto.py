"""`hsmnode crypto ...`: operations with a key in a cached session (--on NAME), served by the
member you talk to. Data comes from --in FILE or stdin ("-"), results go to --out FILE or stdout."""

from __future__ import annotations

import click

from hsmnode.cli._command import ContainerCall, container_command, on_option
from hsmnode.cli._options import IN_FILE, IN_FILE_NO_DASH, OUT_FILE
from hsmnode.cli._output import read_input, write_output
from hsmnode.crypto.keys import GCM_IV_BYTES, GCM_TAG_BYTES

# the mechanism a key's type gets when --mechanism is left out
SIGN_DEFAULTS = {"EC": "ECDSA-SHA256", "RSA": "RSA-PKCS1-SHA256", "Ed25519": "Ed25519"}
CIPHER_DEFAULTS = {"AES": "AES-GCM", "RSA": "RSA-OAEP-SHA256"}
SIGN_HELP = "Default by the key's type: EC ECDSA-SHA256, RSA RSA-PKCS1-SHA256, Ed25519 Ed25519."
CIPHER_HELP = "Default by the key's type: AES AES-GCM, RSA RSA-OAEP-SHA256."


def mechanism_for(call: ContainerCall, key_ref: str, given: str | None, defaults: dict[str, str]) -> str:
    """`given`, or the mechanism `defaults` names for the key's type (one more call: the key's
    attributes). Raises click.UsageError for a key type with no default (an AES key to sign with)."""
    if given:
        return given
    key_type = call.session.show_key(key_ref).key_type
    if key_type not in defaults:
        raise click.UsageError(
            f"key {key_ref!r} is {key_type}, which has no default here: name one with --mechanism "
            f"({', '.join(f'{t}: {m}' for t, m in defaults.items())})"
        )
    return defaults[key_type]


@click.group()
def crypto() -> None:
    """Cryptographic operations, served by the member you talk to."""


@container_command(crypto, "sign", on=on_option(), json=False)
@click.argument("key_ref")
@click.option("--mechanism", "-m", default=None, help=SIGN_HELP)
@click.option("--in", "source", default="-", show_default=True, type=IN_FILE)
@click.option("--out", default=None, type=OUT_FILE)
def crypto_sign(
    call: ContainerCall, key_ref: str, mechanism: str | None, source: str, out: str | None
) -> None:
    """Sign data (RSA-PKCS1-SHA256, RSA-PSS-SHA256, ECDSA-SHA256/384, Ed25519, ...); writes the raw signature."""
    data = read_input(source)
    chosen = mechanism_for(call, key_ref, mechanism, SIGN_DEFAULTS)
    write_output(out, call.session.sign(key_ref, data, mechanism=chosen))


@container_command(crypto, "verify", on=on_option())
@click.argument("key_ref")
@click.option("--mechanism", "-m", default=None, help=SIGN_HELP)
@click.option("--in", "source", default="-", show_default=True, type=IN_FILE)
@click.option("--signature", required=True, type=IN_FILE_NO_DASH, help="File with the raw signature.")
def crypto_verify(
    call: ContainerCall, key_ref: str, mechanism: str | None, source: str, signature: str
) -> None:
    """Verify a signature; exit 1 if it does not verify."""
    data = read_input(source)
    chosen = mechanism_for(call, key_ref, mechanism, SIGN_DEFAULTS)
    valid = call.session.verify(key_ref, data, read_input(signature), mechanism=chosen)
    call.emit({"valid": valid}, lambda: click.echo("signature valid" if valid else "signature INVALID"))
    if not valid:
        raise SystemExit(1)


@container_command(crypto, "encrypt", on=on_option(), json=False)
@click.argument("key_ref")
@click.option("--mechanism", "-m", default=None, help=CIPHER_HELP)
@click.option("--in", "source", default="-", show_default=True, type=IN_FILE)
@click.option("--aad", default="", help="Additional authenticated data (AES-GCM), as text.")
@click.option(
    "--out", default=None, type=OUT_FILE, help="Ciphertext file; for AES-GCM the 12-byte IV comes first."
)
def crypto_encrypt(
    call: ContainerCall, key_ref: str, mechanism: str | None, source: str, aad: str, out: str | None
) -> None:
    """Encrypt (AES-GCM or RSA-OAEP-SHA256). AES-GCM output is IV (12 bytes) followed by the ciphertext."""
    data = read_input(source)
    chosen = mechanism_for(call, key_ref, mechanism, CIPHER_DEFAULTS)
    ciphertext, iv = call.session.encrypt(key_ref, data, mechanism=chosen, aad=aad.encode())
    write_output(out, iv + ciphertext)


@container_command(crypto, "decrypt", on=on_option(), json=False)
@click.argument("key_ref")
@click.option("--mechanism", "-m", default=None, help=CIPHER_HELP)
@click.option(
    "--in", "source", default="-", show_default=True, type=IN_FILE, help="As `crypto encrypt` wrote it."
)
@click.option("--aad", default="")
@click.option("--out", default=None, type=OUT_FILE)
def crypto_decrypt(
    call: ContainerCall, key_ref: str, mechanism: str | None, source: str, aad: str, out: str | None
) -> None:
    """Decrypt what `crypto encrypt` produced."""
    blob = read_input(source)
    # checked before the key is looked up: shorter than this is no AES-GCM (nor RSA-OAEP) ciphertext
    if mechanism in (None, "AES-GCM") and len(blob) < GCM_IV_BYTES + GCM_TAG_BYTES:
        raise click.BadParameter(
            f"{source} holds {len(blob)} bytes, fewer than AES-GCM's minimum of {GCM_IV_BYTES + GCM_TAG_BYTES} "
            f"(a {GCM_IV_BYTES}-byte IV, then the ciphertext ending in a {GCM_TAG_BYTES}-byte tag, as `crypto encrypt` writes)",
            param_hint="--in",
        )
    mechanism = mechanism_for(call, key_ref, mechanism, CIPHER_DEFAULTS)
    iv, ciphertext = (blob[:12], blob[12:]) if mechanism == "AES-GCM" else (b"", blob)
    write_output(out, call.session.decrypt(key_ref, ciphertext, mechanism=mechanism, iv=iv, aad=aad.encode()))


@container_command(crypto, "digest", on=on_option(), json=False)
@click.option("--mechanism", "-m", default="SHA256", show_default=True)
@click.option("--in", "source", default="-", show_default=True, type=IN_FILE)
def crypto_digest(call: ContainerCall, mechanism: str, source: str) -> None:
    """Hash data inside the HSM; prints hex."""
    data = read_input(source)
    click.echo(call.session.digest(data, mechanism=mechanism).hex())


@container_command(crypto, "random", on=on_option(), json=False)
@click.argument("length", type=int)
@click.option("--out", default=None, type=OUT_FILE)
@click.option("--hex", "as_hex", is_flag=True, help="Print hex instead of raw bytes.")
def crypto_random(call: ContainerCall, length: int, out: str | None, as_hex: bool) -> None:
    """LENGTH random bytes from the HSM."""
    data = call.session.random(length)
    if as_hex:
        click.echo(data.hex())
    else:
        write_output(out, data)
