"""Authorization: may this identity use this route on this database?

Rules (CouchDB's, secure by default):

* server admins may do everything;
* an account's own database (``userdb-<id>``) is read and written by its owner only;
* any other database follows its ``_security`` object: ``admins`` and ``members`` list names
  and roles; a database whose members list is empty is open to server admins only (CouchDB's
  ``admin_only`` default: there is no "admin party");
* design documents and ``_security`` are changed only by database admins (the owner counts).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from syncd.errors import CouchError, bad_request
from syncd.services.accounts import METRICS_ROLE, Identity
from syncd.store import accounts as store
from syncd.store.sqlite import ReaderPool, Writer, WriteTx


class Access(enum.Enum):
    """Who may call a route."""

    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    MODERATOR = "moderator"
    SERVER_ADMIN = "server_admin"
    DB_MEMBER = "db_member"
    DB_ADMIN = "db_admin"
    METRICS = "metrics"  # server admins, or the configured metrics token


def unauthenticated(reason: str) -> CouchError:
    """401: credentials are needed."""
    return CouchError(401, "unauthorized", reason)


def denied(reason: str) -> CouchError:
    """403: these credentials are not enough."""
    return CouchError(403, "forbidden", reason)


def _names_roles(section: Any) -> tuple[set[str], set[str]]:
    if not isinstance(section, dict):
        return set(), set()
    names = section.get("names") or []
    roles = section.get("roles") or []
    return {n for n in names if isinstance(n, str)}, {r for r in roles if isinstance(r, str)}


def _listed(identity: Identity, section: Any) -> bool:
    names, roles = _names_roles(section)
    return identity.name in names or bool(roles.intersection(identity.roles))


def validate_security(obj: object) -> dict[str, Any]:
    """A ``_security`` object: ``{"admins": {names, roles}, "members": {names, roles}}``."""
    if not isinstance(obj, dict):
        raise bad_request("_security must be a JSON object")
    out: dict[str, Any] = {}
    for section in ("admins", "members"):
        value = obj.get(section, {})
        if not isinstance(value, dict):
            raise bad_request(f"{section} must be an object with names and roles")
        clean: dict[str, list[str]] = {}
        for key in ("names", "roles"):
            items = value.get(key, [])
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise bad_request(f"{section}.{key} must be a list of strings")
            clean[key] = items
        out[section] = clean
    return out


@dataclass
class Authorizer:
    """Decides database access; keeps ``_security`` objects in memory (one process owns them)."""

    readers: ReaderPool
    writer: Writer
    _security: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    async def security(self, db_name: str) -> dict[str, Any] | None:
        """The ``_security`` object of a database (None: no such database)."""
        if db_name not in self._security:
            if len(self._security) > 10_000:
                self._security.clear()
            self._security[db_name] = await self.readers.run(store.get_security, db_name)
        return self._security[db_name]

    def forget(self, db_name: str) -> None:
        """Drop the cached ``_security`` of a database (created, deleted or changed)."""
        self._security.pop(db_name, None)

    async def set_security(self, db_name: str, obj: object) -> None:
        """``PUT /{db}/_security``."""
        security = validate_security(obj)

        def op(tx: WriteTx) -> None:
            if not store.set_security(tx.conn, db_name, security):
                raise CouchError(404, "not_found", "Database does not exist.")

        await self.writer.submit(op)
        self.forget(db_name)

    async def check(self, access: Access, identity: Identity | None, db_name: str | None) -> None:
        """Raise 401/403 unless ``identity`` may use a route of this ``access`` on ``db_name``."""
        if access is Access.PUBLIC:
            return
        if identity is None:
            raise unauthenticated(
                "You are not a server admin."
                if access is Access.SERVER_ADMIN
                else "You are not authorized to access this db."
                if db_name
                else "Authentication required."
            )
        if METRICS_ROLE in identity.roles:  # the metrics token opens /metrics and nothing else
            if access is not Access.METRICS:
                raise denied("The metrics token only reads /metrics.")
            return
        if identity.is_admin or access is Access.AUTHENTICATED:
            return
        if access is Access.METRICS:
            raise denied("You are not allowed to read metrics.")
        if access is Access.MODERATOR:
            if not identity.is_moderator:
                raise denied("You are not a moderator.")
            return
        if access is Access.SERVER_ADMIN or db_name is None:
            raise denied("You are not a server admin.")
        if db_name == identity.db_name:
            return  # the owner is admin and member of their own database
        security = await self.security(db_name)
        if security is None:
            raise denied("You are not allowed to access this db.")
        if _listed(identity, security.get("admins")):
            return
        if access is Access.DB_ADMIN:
            raise denied("You are not a db or server admin.")
        if _listed(identity, security.get("members")):
            return
        raise denied("You are not allowed to access this db.")

    async def is_db_admin(self, identity: Identity | None, db_name: str) -> bool:
        """Whether ``identity`` may change design documents of ``db_name``."""
        try:
            await self.check(Access.DB_ADMIN, identity, db_name)
        except CouchError:
            return False
        return True
