"""What every session is: a cluster-wide token held over the client's transport.

Sessions are context managers: leaving the `with` block logs out (unless `keep` is set). The
token is cluster-wide, so a session keeps working when the transport fails over to another
member. Each area's calls live in their own module (`_appliance.py`, `_partition.py`,
`_keyrings.py`, `_mofn.py`, `_grants.py`).
"""

from __future__ import annotations

from typing import Any, Self

from hsmnode.client._transport import Carrier, Stub, Transport


class Session:
    """`client`: what opened the session (an HsmClient; `with session.client:` closes its
    channels); `subject`, `role`, `expires_ms` (Unix ms): what the member answered at login
    (empty and 0 for a resumed token)."""

    def __init__(self, client: Carrier, token: str, subject: str, role: str, expires_ms: int) -> None:
        self.client = client
        self.transport: Transport = client.transport
        self.token = token
        self.subject = subject
        self.role = role
        self.expires_ms = expires_ms
        self.keep = False  # set to leave the session open when the `with` block ends

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.keep:
            self.logout()

    def logout(self) -> None:
        raise NotImplementedError

    def _call(self, stub: Stub, method: str, request: Any, *, write: bool = False) -> Any:
        return self.transport.call(stub, method, request, write=write, token=self.token)

    def _crypto(self, stub: Stub, method: str, request: Any) -> Any:
        return self.transport.crypto(stub, method, request, token=self.token)
