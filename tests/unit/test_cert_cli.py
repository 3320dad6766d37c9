"""`hsmnode cert`: a CA, member certificates with IP/DNS SANs, client certificates; bad input named."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from hsmnode.cli.main import cli
from hsmnode.crypto import check_certificate_pair


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_member_certificate_for_ip_and_dns_names_signed_by_the_ca(tmp_path: Path) -> None:
    assert run("cert", "ca", "--out", str(tmp_path))[0] == 0
    code, out = run(
        "cert", "issue", "--ca", str(tmp_path), "--node", "node1", "--ip", "10.0.0.11", "--ip", "fd00::11",
        "--dns", "hsm1.example.internal", "--out", str(tmp_path / "n1"),
    )  # fmt: skip
    assert code == 0, out
    pem = (tmp_path / "n1" / "node1.pem").read_bytes()
    check_certificate_pair(pem, (tmp_path / "n1" / "node1.key").read_bytes())
    cert = x509.load_pem_x509_certificate(pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.11"),
        ipaddress.ip_address("fd00::11"),
    ]
    assert sans.get_values_for_type(x509.DNSName) == ["hsm1.example.internal"]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert (tmp_path / "n1" / "node1.key").stat().st_mode & 0o777 == 0o600


def test_client_certificate_has_client_auth_only(tmp_path: Path) -> None:
    run("cert", "ca", "--out", str(tmp_path))
    code, out = run("cert", "issue", "--ca", str(tmp_path), "--client", "app1", "--out", str(tmp_path))
    assert code == 0, out
    cert = x509.load_pem_x509_certificate((tmp_path / "app1.pem").read_bytes())
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]


def test_bad_input_is_named(tmp_path: Path) -> None:
    run("cert", "ca", "--out", str(tmp_path))
    ca = ["cert", "issue", "--ca", str(tmp_path), "--out", str(tmp_path)]
    cases = [
        (
            [*ca, "--node", "n1", "--ip", "10.0.0.300"],
            "'10.0.0.300' is not an IP address (use --dns for names)",
        ),
        ([*ca, "--node", "n1"], "member n1 needs the addresses it is dialled at"),
        ([*ca, "--node", "n1", "--client", "c"], "exactly one of --node ID or --client NAME"),
        ([*ca, "--client", "c", "--ip", "10.0.0.1"], "a client certificate has none"),
        ([*ca, "--node", "n1", "--dns", "bad name"], "'bad name' is not a DNS name"),
    ]
    for args, message in cases:
        code, out = run(*args)
        assert code != 0 and message in out, (args, out)
    assert run("cert", "ca", "--out", str(tmp_path))[1].count("already exists") == 1
    code, out = run(
        "cert", "issue", "--ca", str(tmp_path / "missing"), "--client", "c", "--out", str(tmp_path)
    )
    assert code != 0 and "does not exist" in out
