"""Tell a refused client certificate from a dead member.

A member whose trust list lacks the client's certificate completes the TLS
handshake from the client's side and then closes the connection without a byte;
grpc reports that as UNAVAILABLE "Socket closed", which looks like a dead member.
A member that accepts the certificate sends its HTTP/2 SETTINGS at once.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile


def certificate_refused(
    endpoint: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, timeout: float = 2.0
) -> bool:
    host, _, port = endpoint.rpartition(":")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, data in (("ca", ca_pem), ("cert", cert_pem), ("key", key_pem)):
            paths[name] = os.path.join(tmp, name)
            with open(paths[name], "wb") as f:
                f.write(data)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(paths["ca"])
        context.load_cert_chain(paths["cert"], paths["key"])
        context.set_alpn_protocols(["h2"])
        try:
            with (
                socket.create_connection((host, int(port)), timeout=timeout) as raw,
                context.wrap_socket(raw, server_hostname=host) as tls,
            ):
                tls.settimeout(timeout)
                return tls.recv(64) == b""
        except (OSError, ssl.SSLError):
            return False
