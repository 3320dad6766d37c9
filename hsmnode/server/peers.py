"""Member-to-member gRPC: one member asks the others for their status (cluster status fan-out).

Members authenticate to each other with their node certificates over mutual TLS.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

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
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="peer-status")

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
        None for a member that does not answer."""

        def ask(address: str) -> cluster_pb2.NodeStatusResponse | None:
            try:
                response: cluster_pb2.NodeStatusResponse = self._stub(address).NodeStatus(
                    cluster_pb2.NodeStatusRequest(without_digest=not digest), timeout=PEER_STATUS_TIMEOUT
                )
                return response
            except grpc.RpcError as exc:
                log.debug("member %s did not answer NodeStatus: %s", address, exc.code())
                return None

        return dict(zip(addresses, self._pool.map(ask, addresses), strict=True))

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
