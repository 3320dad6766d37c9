"""What an operator sees of a member: Prometheus metrics (metrics.py), one log record per request
(requests.py) and per Raft event (raft_events.py), JSON or text log lines (logs.py)."""
