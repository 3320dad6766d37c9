"""Tools built on the SDK (`hsmnode.client`), not parts of a member: the local dev cluster
(`devcluster`) and its demo set-up (`demo`), the failover drill (`drill`, `drill_membership`),
and joining a node to a cluster (`joining`)."""
