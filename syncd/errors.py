"""The one exception type every layer raises for a client-visible failure.

The web layer's error middleware turns it into CouchDB's error body
``{"error": ..., "reason": ..., "request_id": ...}`` with ``status``.
"""

from __future__ import annotations


class CouchError(Exception):
    """A failure with an HTTP status and CouchDB's ``error``/``reason`` pair."""

    def __init__(
        self, status: int, error: str, reason: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {error}: {reason}")
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = headers or {}


def bad_request(reason: str) -> CouchError:
    """400 ``bad_request``."""
    return CouchError(400, "bad_request", reason)


def not_found(reason: str = "missing") -> CouchError:
    """404 ``not_found``; CouchDB says ``missing`` or ``deleted`` for documents."""
    return CouchError(404, "not_found", reason)


def db_not_found() -> CouchError:
    """404 for a database that does not exist, worded as CouchDB words it."""
    return CouchError(404, "not_found", "Database does not exist.")


def conflict() -> CouchError:
    """409 ``conflict``: the rev given is not a current leaf."""
    return CouchError(409, "conflict", "Document update conflict.")


def forbidden(reason: str) -> CouchError:
    """403 ``forbidden``: a validation rule refused the document."""
    return CouchError(403, "forbidden", reason)
