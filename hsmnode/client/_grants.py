"""Grants between partitions' users (DOMAIN.md §4): the owning partition's session grants another
partition's users create, remove, read and/or update_log on it; keys of a granting partition are
named "partition:OWNER/KEY" in every key argument of a session."""

from __future__ import annotations

from hsmnode.client._outcome import request_id_or_new
from hsmnode.client._session import Session
from hsmnode.client._types import Grant
from hsmnode.pb import authorization_pb2, authorization_pb2_grpc


class PartitionGrants(Session):
    """The grant calls of `PartitionSession`."""

    def grant(
        self, grantee: str, permissions: list[str], *, request_id: str | None = None
    ) -> tuple[str, ...]:
        """As the owner: grant `grantee`'s users create, remove, read and/or update_log on this partition."""
        req = authorization_pb2.SetGrantRequest(
            request_id=request_id_or_new(request_id), grantee=grantee, permissions=permissions
        )
        return tuple(
            self._call(authorization_pb2_grpc.AuthorizationStub, "SetGrant", req, write=True).permissions
        )

    def revoke_grant(self, grantee: str, *, request_id: str | None = None) -> None:
        self.grant(grantee, [], request_id=request_id)

    def list_grants(self) -> list[Grant]:
        """The grants this partition gave or received."""
        r = self._call(
            authorization_pb2_grpc.AuthorizationStub, "ListGrants", authorization_pb2.ListGrantsRequest()
        )
        return [Grant(g.owner, g.grantee, tuple(g.permissions)) for g in r.grants]
