"""Cluster backup and restore.

    fileformat  the backup file: header, encrypted body, the checks a restore makes
    seed        a restored member's starting state, and the restored cluster's first command
    restore     `hsmnode cluster restore`: verify a backup, then build a new local cluster from it
    schedule    `[backup] interval/keep`: backups the leader takes on its own

Taking a backup is a use case (hsmnode/service/backup.py): authorized in apply, then a
consistent copy of the replicated state at a known Raft index, sealed under the SMK.
"""
