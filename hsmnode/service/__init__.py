"""Use cases: authenticate the caller, stamp ids and time, build commands, read replicated state.

No gRPC here: servicers translate protobuf to these calls and errors through one table.
"""
