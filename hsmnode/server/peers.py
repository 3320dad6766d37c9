"""Member-to-member gRPC: one member asks the others for their status (cluster status fan-out).

Members authenticate to each other with their node certificates over mutual TLS.
"""

from __future__ import annotations

import logging

import grpc

from hsmnode.pb import cluster_pb2, cluster_pb2_grpc

log = logging.getLogger(__name__)

PEER_STATUS_TIMEOUT = 0.75


class PeerClients:
    def __init__(self, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> None:
        self._creds = grpc.ssl_channel_credentials(
            root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem
        )
        self._channels: dict[str, grpc.Channel] = {}

    def _stub(self, address: str) -> cluster_pb2_grpc.ClusterStub:
        channel = self._channels.get(address)
        if channel is None:
            channel = grpc.secure_channel(
                address,
                self._creds,
                options=[("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000)],
            )
            self._channels[address] = channel
        return cluster_pb2_grpc.ClusterStub(channel)

    def node_statuses(
        self, addresses: list[str], digest: bool = True
    ) -> dict[str, cluster_pb2.NodeStatusResponse | None]:
        """Ask each address for its NodeStatus in parallel (with its state digest unless not `digest`);
        None for a member that does not answer within PEER_STATUS_TIMEOUT seconds.

        The calls go out together as gRPC futures from the calling thread, which then waits for each:
        no pool thread to wake per peer and again per answer. On a busy member every thread that wakes
        waits for the GIL (up to its 5 ms switch interval behind the tick thread and the write
        handlers), so those hand-offs were most of cluster status's time (issue 16)."""
        request = cluster_pb2.NodeStatusRequest(without_digest=not digest)
        calls = {
            address: self._stub(address).NodeStatus.future(request, timeout=PEER_STATUS_TIMEOUT)
            for address in addresses
        }
        answers: dict[str, cluster_pb2.NodeStatusResponse | None] = {}
        for address, call in calls.items():
            try:
                answers[address] = call.result()
            except grpc.RpcError as exc:
                log.debug("member %s did not answer NodeStatus: %s", address, exc.code())
                answers[address] = None
        return answers

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
