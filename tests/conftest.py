"""Settings of the test process itself, read before any test module imports grpc."""

from __future__ import annotations

import os

# The test process hosts in-process cluster members, whose pysyncobj forks a child to write its dump
# (log compaction) while gRPC connections are open. Member processes disable gRPC's fork handlers
# (hsmnode/cli/main.py); the test process must too: with them on, a forked child's gRPC fork handling
# once corrupted a live TLS stream of the parent (a client saw "Unwrap failed (TSI_DATA_CORRUPTED)").
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
