"""Keyrings servicer (keyrings.proto): keyring administration by the cluster SO and the KRSO."""

from __future__ import annotations

from hsmnode.pb import keyrings_pb2, keyrings_pb2_grpc
from hsmnode.server.rpc import Servicer, rpc
from hsmnode.service.call import Call
from hsmnode.service.keyrings import KeyringService, KeyringView


def _keyring(v: KeyringView) -> keyrings_pb2.KeyringInfo:
    return keyrings_pb2.KeyringInfo(
        label=v.label,
        id=v.id,
        krso_initialized=v.krso_initialized,
        krco_set=v.krco_set,
        locked=v.locked,
        objects=v.objects,
        clients=list(v.clients),
    )


class KeyringsServicer(Servicer[KeyringService], keyrings_pb2_grpc.KeyringsServicer):
    @rpc
    def Create(self, r: keyrings_pb2.CreateKeyringRequest, call: Call) -> keyrings_pb2.CreateKeyringResponse:  # noqa: N802
        return keyrings_pb2.CreateKeyringResponse(id=self._s.create(call, r.label, r.krso_password))

    @rpc
    def Delete(self, r: keyrings_pb2.KeyringRequest, call: Call) -> keyrings_pb2.KeyringAck:  # noqa: N802
        self._s.delete(call, r.label)
        return keyrings_pb2.KeyringAck()

    @rpc
    def Assign(self, r: keyrings_pb2.AssignKeyringRequest, call: Call) -> keyrings_pb2.KeyringAck:  # noqa: N802
        self._s.assign(call, r.label, r.client, True)
        return keyrings_pb2.KeyringAck()

    @rpc
    def Unassign(self, r: keyrings_pb2.AssignKeyringRequest, call: Call) -> keyrings_pb2.KeyringAck:  # noqa: N802
        self._s.assign(call, r.label, r.client, False)
        return keyrings_pb2.KeyringAck()

    @rpc
    def Unlock(self, r: keyrings_pb2.KeyringRequest, call: Call) -> keyrings_pb2.KeyringAck:  # noqa: N802
        self._s.unlock(call, r.label)
        return keyrings_pb2.KeyringAck()

    @rpc
    def SetKrco(self, r: keyrings_pb2.SetKrcoRequest, call: Call) -> keyrings_pb2.KeyringAck:  # noqa: N802
        self._s.set_krco(call, r.password)
        return keyrings_pb2.KeyringAck()

    @rpc
    def List(self, r: keyrings_pb2.ListKeyringsRequest, call: Call) -> keyrings_pb2.KeyringList:  # noqa: N802
        return keyrings_pb2.KeyringList(keyrings=[_keyring(v) for v in self._s.list(call)])

    @rpc
    def Show(self, r: keyrings_pb2.KeyringRequest, call: Call) -> keyrings_pb2.KeyringInfo:  # noqa: N802
        return _keyring(self._s.show(call, r.label))
