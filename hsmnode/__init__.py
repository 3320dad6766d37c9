"""hsmnode: a clustered network-HSM emulator (Raft via pysyncobj, mTLS gRPC)."""

__version__ = "0.1.0"
