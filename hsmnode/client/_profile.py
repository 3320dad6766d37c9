"""Connection profiles: where the members are and which certificate to present.

    {"cluster_id": "...", "endpoints": ["127.0.0.1:7400", ...],
     "ca": "ca.pem", "cert": "admin.pem", "key": "admin.key",
     "client": {"name": "demo-client", "cert": "demo-client.pem", "key": "demo-client.key"},
     "demo": {...credentials of the dev demo, `hsmnode dev` only...}}

`cert`/`key` is the admin certificate (issued by the cluster CA); `client` is an
NTLS client's own certificate (registered with the cluster). Relative paths are
relative to the profile file.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

PROFILE_ENV = "HSMNODE_PROFILE"


@dataclass(frozen=True)
class Tls:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def from_files(cls, ca: str | Path, cert: str | Path, key: str | Path) -> Tls:
        return cls(Path(ca).read_bytes(), Path(cert).read_bytes(), Path(key).read_bytes())

    def check(self) -> None:
        """Raise ValueError, naming the problem, unless the CA loads and the key belongs to the certificate."""
        import ssl
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            paths = {}
            for name, data in (("ca", self.ca_pem), ("cert", self.cert_pem), ("key", self.key_pem)):
                paths[name] = os.path.join(tmp, name)
                with open(paths[name], "wb") as f:
                    f.write(data)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            try:
                context.load_verify_locations(paths["ca"])
            except ssl.SSLError as exc:
                raise ValueError(f"the CA certificate does not load ({exc.reason})") from None
            try:
                context.load_cert_chain(paths["cert"], paths["key"])
            except ssl.SSLError as exc:
                raise ValueError(
                    f"the client certificate and key do not load or do not match ({exc.reason})"
                ) from None


@dataclass(frozen=True)
class Profile:
    path: Path
    endpoints: tuple[str, ...]
    tls: Tls
    cluster_id: str
    raw: dict[str, object]

    def client_tls(self, name: str | None = None) -> Tls:
        """An NTLS client identity: the default one (`client`) or a named one under `clients`."""
        if name is None:
            entry = self.raw.get("client")
            what = "NTLS client certificate (a 'client' entry with cert and key)"
        else:
            clients = self.raw.get("clients")
            entry = clients.get(name) if isinstance(clients, dict) else None
            what = f"NTLS client named {name!r} (under 'clients')"
        if not isinstance(entry, dict) or "cert" not in entry or "key" not in entry:
            raise ProfileError(f"profile {self.path} has no {what}")
        base = self.path.parent
        try:
            return Tls(
                self.tls.ca_pem, (base / entry["cert"]).read_bytes(), (base / entry["key"]).read_bytes()
            )
        except OSError as exc:
            raise ProfileError(f"profile {self.path}: {exc.filename}: {exc.strerror}") from None


def certificate_der(cert_pem: bytes) -> bytes:
    """The DER bytes of the first certificate in a PEM (fingerprints are sha256 over these)."""
    text = cert_pem.decode("ascii", "replace")
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = text.index(begin) + len(begin)
    return base64.b64decode("".join(text[start : text.index(end, start)].split()))


class ProfileError(Exception):
    pass


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProfileError(
            f"profile {path} does not exist (start a cluster with `hsmnode dev`, or pass --profile / set {PROFILE_ENV})"
        ) from None
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read profile {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"profile {path} must be a JSON object")
    for key in ("endpoints", "ca", "cert", "key"):
        if key not in raw:
            raise ProfileError(f"profile {path} lacks {key!r}")
    endpoints = raw["endpoints"]
    if not isinstance(endpoints, list) or not endpoints or not all(isinstance(e, str) for e in endpoints):
        raise ProfileError(f"profile {path}: endpoints must be a non-empty list of host:port strings")

    def resolve(p: object) -> Path:
        if not isinstance(p, str):
            raise ProfileError(f"profile {path}: paths must be strings")
        candidate = Path(p).expanduser()
        return candidate if candidate.is_absolute() else path.parent / candidate

    try:
        tls = Tls.from_files(resolve(raw["ca"]), resolve(raw["cert"]), resolve(raw["key"]))
    except OSError as exc:
        raise ProfileError(f"profile {path}: {exc.filename}: {exc.strerror}") from None
    return Profile(
        path=path, endpoints=tuple(endpoints), tls=tls, cluster_id=str(raw.get("cluster_id", "")), raw=raw
    )


def default_profile_path() -> Path:
    env = os.environ.get(PROFILE_ENV)
    return Path(env) if env else Path("hsmnode-dev") / "profile.json"
