"""Our Raft layer over pysyncobj 0.3.17 (pinned in pyproject.toml; the hooks name its privates).

    rules.py      the vote, lease and append rules as pure functions (unit-tested)
    engine.py     HsmSyncObj: PreVote, leader stickiness, lease from proof, append rule, durable acks
    transport.py  hardened Raft TCP connections: frame limit, linear buffers, handshake deadline
    durable.py    fsync of journal, term/vote and dumps; the start-up fsync probe

`hsmnode.replication` is the only user: it builds HsmSyncObj instead of SyncObj.
"""
