"""gRPC edge: thin servicers (protobuf ⇄ service), one error table, server construction."""
