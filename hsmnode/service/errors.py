"""The errors a use case raises, as the server's error table (server/errors.py) sees them.

They are the domain's: the rules that refuse a request live there, and a refusal
carries its code and message from apply, through the service, to the status the
client gets. server/ imports them from here, never from the domain.
"""

from hsmnode.domain.errors import DomainError, ErrorCode

__all__ = ["DomainError", "ErrorCode"]
