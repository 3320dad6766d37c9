"""Keyring administration, as a partition session does it (DOMAIN.md §3): the cluster security
officer (a PO session on the cluster partition) creates, assigns and unlocks keyrings; a KRSO
session sets its keyring's KRCO credential."""

from __future__ import annotations

from hsmnode.client import _convert as convert
from hsmnode.client._outcome import request_id_or_new
from hsmnode.client._session import Session
from hsmnode.client._types import KeyringInfo
from hsmnode.pb import keyrings_pb2, keyrings_pb2_grpc


class KeyringAdministration(Session):
    """The keyring calls of `PartitionSession`."""

    def create_keyring(self, label: str, krso_password: str, *, request_id: str | None = None) -> str:
        req = keyrings_pb2.CreateKeyringRequest(
            request_id=request_id_or_new(request_id), label=label, krso_password=krso_password
        )
        return str(self._call(keyrings_pb2_grpc.KeyringsStub, "Create", req, write=True).id)

    def delete_keyring(self, label: str, *, request_id: str | None = None) -> None:
        req = keyrings_pb2.KeyringRequest(request_id=request_id_or_new(request_id), label=label)
        self._call(keyrings_pb2_grpc.KeyringsStub, "Delete", req, write=True)

    def assign_keyring(self, label: str, client: str, *, request_id: str | None = None) -> None:
        req = keyrings_pb2.AssignKeyringRequest(
            request_id=request_id_or_new(request_id), label=label, client=client
        )
        self._call(keyrings_pb2_grpc.KeyringsStub, "Assign", req, write=True)

    def unassign_keyring(self, label: str, client: str, *, request_id: str | None = None) -> None:
        req = keyrings_pb2.AssignKeyringRequest(
            request_id=request_id_or_new(request_id), label=label, client=client
        )
        self._call(keyrings_pb2_grpc.KeyringsStub, "Unassign", req, write=True)

    def unlock_keyring(self, label: str, *, request_id: str | None = None) -> None:
        req = keyrings_pb2.KeyringRequest(request_id=request_id_or_new(request_id), label=label)
        self._call(keyrings_pb2_grpc.KeyringsStub, "Unlock", req, write=True)

    def list_keyrings(self) -> list[KeyringInfo]:
        r = self._call(keyrings_pb2_grpc.KeyringsStub, "List", keyrings_pb2.ListKeyringsRequest())
        return [convert.keyring(k) for k in r.keyrings]

    def show_keyring(self, label: str) -> KeyringInfo:
        return convert.keyring(
            self._call(keyrings_pb2_grpc.KeyringsStub, "Show", keyrings_pb2.KeyringRequest(label=label))
        )

    # keyrings: the KRSO
    def set_krco(self, password: str, *, request_id: str | None = None) -> None:
        """KRSO session: set the KRCO credential of this keyring."""
        req = keyrings_pb2.SetKrcoRequest(request_id=request_id_or_new(request_id), password=password)
        self._call(keyrings_pb2_grpc.KeyringsStub, "SetKrco", req, write=True)
