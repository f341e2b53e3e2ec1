"""Accounts, logins and tokens: who is calling, and proving it.

* Anonymous first: a device gets an account with a generated name and a random secret.
* Named accounts: a chosen username and a password hashed with argon2id (RFC 9106
  low-memory profile or stronger; rehashed on login when the parameters change).
* App API: short-lived signed access tokens and single-use refresh tokens that rotate; a reused
  refresh token revokes its whole session (reuse detection).
* CouchDB clients: ``/_session`` cookies and HTTP Basic auth, with verified credentials cached
  briefly so a replication of thousands of requests pays argon2 once.

Every account owns one database, ``userdb-<account id>``, created and deleted with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from syncd.errors import CouchError, bad_request
from syncd.store import accounts as store
from syncd.store import documents as doc_store
from syncd.store.sqlite import ReaderPool, Writer, WriteTx

log = logging.getLogger("syncd.auth")
security_log = logging.getLogger("syncd.security")

ADMIN_ROLE = "_admin"
MODERATOR_ROLE = "moderator"
METRICS_ROLE = "_metrics"  # the configured metrics token's identity; nothing else
KNOWN_ROLES = (ADMIN_ROLE, MODERATOR_ROLE)
USERNAME_RULE = (
    "3-32 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
)
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,31}$")
ANONYMOUS_PREFIX = "anon-"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
BASIC_CACHE_SECONDS = 300.0
CACHE_SIZE = 10_000


def user_db_name(account_id: str) -> str:
    """The database an account owns (couch_peruser style)."""
    return f"userdb-{account_id}"


def unauthorized(reason: str = "Name or password is incorrect.") -> CouchError:
    """401 ``unauthorized``."""
    return CouchError(401, "unauthorized", reason)


def suspended() -> CouchError:
    """403 for a suspended account."""
    return CouchError(403, "forbidden", "This account is suspended.")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request acts as."""

    name: str
    roles: tuple[str, ...]
    account_id: str | None  # None for the configured server admin
    db_name: str | None
    session_id: str | None = None
    anonymous: bool = False
    method: str = "default"  # how it authenticated: default (Basic), cookie, bearer

    @property
    def is_admin(self) -> bool:
        """A server admin."""
        return ADMIN_ROLE in self.roles

    @property
    def is_moderator(self) -> bool:
        """May moderate reports (admins may too)."""
        return self.is_admin or MODERATOR_ROLE in self.roles


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a sign-in returns to the app."""

    access_token: str
    refresh_token: str
    expires_in: int

    def to_json(self) -> dict[str, Any]:
        """The token fields of an auth response."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome of creating or signing in to an account."""

    account: store.AccountRow
    tokens: TokenPair
    password: str | None = None  # only for a new anonymous account: its device secret


def account_json(account: store.AccountRow) -> dict[str, Any]:
    """An account as the app API shows it (never the hash)."""
    return {
        "id": account.id,
        "username": None if account.anonymous else account.username,
        "name": account.username,
        "anonymous": account.anonymous,
        "roles": account.roles,
        "db": account.db_name,
        "status": account.status,
        "created_at": account.created_at,
    }


def validate_username(username: object) -> str:
    """Username rules, or 400 naming them."""
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise bad_request(f"username must be {USERNAME_RULE}")
    if username.startswith(ANONYMOUS_PREFIX):
        raise bad_request(f"usernames starting with '{ANONYMOUS_PREFIX}' are reserved")
    return username


def validate_password(password: object) -> str:
    """Password minimums, or 400 naming them."""
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise bad_request(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Passwords:
    """argon2id hashing for chosen passwords; SHA-256 for generated 256-bit device secrets."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        """An argon2id hash (in a thread: it takes a while on purpose)."""
        return await asyncio.to_thread(self._hasher.hash, password)

    @staticmethod
    def hash_secret(secret: str) -> str:
        """The stored form of a generated device secret."""
        return "sha256$" + _sha256(secret)

    async def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches the stored hash."""
        if stored.startswith("sha256$"):
            return hmac.compare_digest(stored, self.hash_secret(password))
        try:
            return await asyncio.to_thread(self._hasher.verify, stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def dummy_hash(self) -> str:
        """A hash of nothing anyone knows, to spend a verification's time on unknown names."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        return self._dummy

    def needs_rehash(self, stored: str) -> bool:
        """Whether an argon2 hash was made with weaker parameters than today's."""
        return not stored.startswith("sha256$") and self._hasher.check_needs_rehash(stored)


class _TTLCache:
    """A small LRU map whose entries expire."""

    def __init__(self, size: int, ttl: float) -> None:
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._size = size
        self._ttl = ttl

    def get(self, key: Any) -> Any:
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            self._data.pop(key, None)
            return None
        self._data.move_to_end(key)
        return hit[1]

    def put(self, key: Any, value: Any) -> None:
        self._data[key] = (time.monotonic() + self._ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._size:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()


@dataclass
class TokenSettings:
    """Signing keys and lifetimes."""

    secret_keys: Sequence[str]  # newest last; older ones still verify (rotation)
    access_ttl: int = 900
    refresh_ttl: int = 30 * 24 * 3600
    cookie_ttl: int = 600
    admin_name: str | None = None
    admin_password: str | None = None
    metrics_token: str | None = None


@dataclass
class AccountService:
    """Creates accounts, signs people in, and tells who a request is."""

    writer: Writer
    readers: ReaderPool
    tokens: TokenSettings
    passwords: Passwords = field(default_factory=Passwords)
    on_delete: list[Callable[[WriteTx, str], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        keys = list(self.tokens.secret_keys)
        self._access = URLSafeTimedSerializer(keys, salt="syncd.access-token")
        self._cookie = URLSafeTimedSerializer(keys, salt="syncd.auth-session")
        self._basic = _TTLCache(CACHE_SIZE, BASIC_CACHE_SECONDS)
        self._identities = _TTLCache(CACHE_SIZE, 30.0)

    def forget_cached(self) -> None:
        """Drop every cached credential and identity (after any account change)."""
        self._basic.clear()
        self._identities.clear()

    # creating accounts and signing in ---------------------------------------------------

    async def create_anonymous(self) -> SignIn:
        """A new device account with a generated name and secret, signed in."""
        account_id = secrets.token_hex(16)
        secret = secrets.token_urlsafe(32)
        account = store.AccountRow(
            account_id,
            ANONYMOUS_PREFIX + account_id,
            True,
            self.passwords.hash_secret(secret),
            [],
            "active",
            user_db_name(account_id),
            _now_iso(),
        )
        tokens = await self._create(account)
        return SignIn(account, tokens, password=secret)

    async def register(self, username: object, password: object) -> SignIn:
        """A new named account, signed in."""
        name = validate_username(username)
        secret = validate_password(password)
        if name == self.tokens.admin_name:
            raise CouchError(409, "conflict", "That username is taken.")
        account_id = secrets.token_hex(16)
        account = store.AccountRow(
            account_id,
            name,
            False,
            await self.passwords.hash(secret),
            [],
            "active",
            user_db_name(account_id),
            _now_iso(),
        )
        return SignIn(account, await self._create(account))

    async def create_named(
        self, username: str, password: str, roles: list[str]
    ) -> store.AccountRow:
        """An account made by an operator (``syncd admin create``), not signed in."""
        account = store.AccountRow(
            secrets.token_hex(16),
            validate_username(username),
            False,
            await self.passwords.hash(validate_password(password)),
            roles,
            "active",
            "",
            _now_iso(),
        )
        account.db_name = user_db_name(account.id)

        def op(tx: WriteTx) -> None:
            _insert_account(tx, account)

        await self.writer.submit(op)
        return account

    async def _create(self, account: store.AccountRow) -> TokenPair:
        session_id = secrets.token_hex(16)
        refresh = secrets.token_urlsafe(32)
        expires = time.time() + self.tokens.refresh_ttl

        def op(tx: WriteTx) -> None:
            _insert_account(tx, account)
            store.insert_session(tx.conn, session_id, account.id, "app", account.created_at)
            store.insert_refresh_token(tx.conn, _sha256(refresh), session_id, expires)

        await self.writer.submit(op)
        log.info("account created", extra={"account": account.id})
        return TokenPair(
            self._access_token(account.id, session_id), refresh, self.tokens.access_ttl
        )

    async def login(self, username: object, password: object) -> SignIn:
        """Sign in with name and password: a new app session."""
        account = await self.check_password(username, password)
        return SignIn(account, await self._new_session(account.id, "app"))

    async def check_password(self, username: object, password: object) -> store.AccountRow:
        """The account these credentials belong to (401 otherwise, 403 if suspended)."""
        if not isinstance(username, str) or not isinstance(password, str):
            raise unauthorized()
        if len(password) > MAX_PASSWORD:
            raise unauthorized()
        account = await self.readers.run(store.find_by_username, username)
        # An unknown name costs a hash check too, so timing does not tell which names exist.
        stored = account.password_hash if account else await self.passwords.dummy_hash()
        if not await self.passwords.verify(stored, password) or account is None:
            security_log.info("failed sign-in", extra={"account": account.id if account else None})
            raise unauthorized()
        if account.status != "active":
            raise suspended()
        if self.passwords.needs_rehash(account.password_hash):
            new_hash = await self.passwords.hash(password)
            await self.writer.submit(
                lambda tx: store.set_password_hash(tx.conn, account.id, new_hash)
            )
        return account

    async def _new_session(self, account_id: str, kind: str) -> TokenPair:
        session_id = secrets.token_hex(16)
        refresh = secrets.token_urlsafe(32)
        expires = time.time() + self.tokens.refresh_ttl

        def op(tx: WriteTx) -> None:
            store.insert_session(tx.conn, session_id, account_id, kind, _now_iso())
            if kind == "app":
                store.insert_refresh_token(tx.conn, _sha256(refresh), session_id, expires)

        await self.writer.submit(op)
        return TokenPair(
            self._access_token(account_id, session_id), refresh, self.tokens.access_ttl
        )

    def _access_token(self, account_id: str, session_id: str) -> str:
        return str(self._access.dumps({"a": account_id, "s": session_id}))

    async def refresh(self, token: object) -> TokenPair:
        """Spend a refresh token for a new pair; a reused one revokes its session."""
        if not isinstance(token, str) or not token:
            raise unauthorized("Invalid refresh token.")
        token_hash = _sha256(token)
        now = time.time()
        new_refresh = secrets.token_urlsafe(32)

        def op(tx: WriteTx) -> tuple[str, str, str]:
            row = store.get_refresh_token(tx.conn, token_hash)
            if row is None or row.session_revoked or row.expires_at < now:
                return "invalid", "", ""
            if row.used_at is not None or not store.mark_refresh_used(tx.conn, token_hash, now):
                store.revoke_session(tx.conn, row.session_id, _now_iso())
                return "reused", row.session_id, row.account_id
            account = store.get_account(tx.conn, row.account_id)
            if account is None or account.status != "active":
                return "invalid", "", ""
            store.insert_refresh_token(
                tx.conn, _sha256(new_refresh), row.session_id, now + self.tokens.refresh_ttl
            )
            return "ok", row.session_id, row.account_id

        outcome, session_id, account_id = await self.writer.submit(op)
        if outcome == "reused":
            self.forget_cached()
            security_log.warning(
                "refresh token reused: session revoked", extra={"account": account_id}
            )
            raise unauthorized("Refresh token was already used; the session has been revoked.")
        if outcome != "ok":
            raise unauthorized("Invalid refresh token.")
        return TokenPair(
            self._access_token(account_id, session_id), new_refresh, self.tokens.access_ttl
        )

    async def logout(self, identity: Identity) -> None:
        """End the session the request came with."""
        if identity.session_id is None:
            return
        session_id = identity.session_id
        await self.writer.submit(lambda tx: store.revoke_session(tx.conn, session_id, _now_iso()))
        self.forget_cached()

    async def change_password(self, identity: Identity, old: object, new: object) -> None:
        """Change the password (the old one must match); every other session ends."""
        account = await self._account_of(identity)
        if account.anonymous:
            raise bad_request("An anonymous account has no password to change; upgrade it first.")
        if not isinstance(old, str) or not await self.passwords.verify(account.password_hash, old):
            raise unauthorized("The current password is incorrect.")
        new_hash = await self.passwords.hash(validate_password(new))

        def op(tx: WriteTx) -> None:
            store.set_password_hash(tx.conn, account.id, new_hash)
            store.revoke_sessions_of(tx.conn, account.id, _now_iso(), keep=identity.session_id)

        await self.writer.submit(op)
        self.forget_cached()
        security_log.info("password changed", extra={"account": account.id})

    async def upgrade(
        self, identity: Identity, username: object, password: object
    ) -> store.AccountRow:
        """Turn this device's anonymous account into a named one; its data stays."""
        account = await self._account_of(identity)
        if not account.anonymous:
            raise CouchError(409, "conflict", "This account already has a username.")
        name = validate_username(username)
        if name == self.tokens.admin_name:
            raise CouchError(409, "conflict", "That username is taken.")
        new_hash = await self.passwords.hash(validate_password(password))

        def op(tx: WriteTx) -> bool:
            return store.update_credentials(tx.conn, account.id, name, new_hash, anonymous=False)

        if not await self.writer.submit(op):
            raise CouchError(409, "conflict", "That username is taken.")
        self.forget_cached()
        upgraded = await self.readers.run(store.get_account, account.id)
        assert upgraded is not None
        return upgraded

    async def delete(self, identity: Identity) -> None:
        """Delete the account, its database, sessions and tokens."""
        account = await self._account_of(identity)
        await self.delete_account(account.id)

    async def delete_account(self, account_id: str) -> None:
        """Delete an account by id (its database too)."""

        def op(tx: WriteTx) -> None:
            account = store.get_account(tx.conn, account_id)
            if account is None:
                raise CouchError(404, "not_found", "missing")
            for hook in self.on_delete:
                hook(tx, account_id)
            db = doc_store.get_db(tx.conn, account.db_name)
            if db is not None:
                doc_store.delete_db(tx.conn, db.id)
            store.delete_account(tx.conn, account_id)

        await self.writer.submit(op)
        self.forget_cached()
        log.info("account deleted", extra={"account": account_id})

    async def set_roles(self, account_id: str, roles: object) -> store.AccountRow:
        """Admin: replace an account's roles (``_admin``, ``moderator``)."""
        if not isinstance(roles, list) or not all(r in KNOWN_ROLES for r in roles):
            raise bad_request(f"roles must be a list drawn from {', '.join(KNOWN_ROLES)}")
        wanted = sorted(set(roles))

        def op(tx: WriteTx) -> store.AccountRow:
            if store.get_account(tx.conn, account_id) is None:
                raise CouchError(404, "not_found", "missing")
            store.set_roles(tx.conn, account_id, wanted)
            account = store.get_account(tx.conn, account_id)
            assert account is not None
            return account

        account = await self.writer.submit(op)
        self.forget_cached()
        return account

    async def set_status(self, account_id: str, status: str) -> None:
        """Suspend or re-activate an account; suspending ends every session."""

        def op(tx: WriteTx) -> None:
            if store.get_account(tx.conn, account_id) is None:
                raise CouchError(404, "not_found", "missing")
            store.set_status(tx.conn, account_id, status)
            if status != "active":
                store.revoke_sessions_of(tx.conn, account_id, _now_iso())

        await self.writer.submit(op)
        self.forget_cached()

    async def get(self, account_id: str) -> store.AccountRow | None:
        """An account by id."""
        return await self.readers.run(store.get_account, account_id)

    async def _account_of(self, identity: Identity) -> store.AccountRow:
        if identity.account_id is None:
            raise bad_request("The configured server admin has no account to change.")
        account = await self.get(identity.account_id)
        if account is None:
            raise unauthorized("This account no longer exists.")
        return account

    # who is calling ---------------------------------------------------------------------

    def _config_admin(self, username: str, password: str) -> Identity | None:
        name, secret = self.tokens.admin_name, self.tokens.admin_password
        if name is None or secret is None or username != name:
            return None
        if hmac.compare_digest(password.encode(), secret.encode()):
            return Identity(name, (ADMIN_ROLE,), None, None)
        return None

    def is_cached_basic(self, username: str, password: str) -> bool:
        """Whether these Basic credentials were verified lately (no hash needed)."""
        if self._config_admin(username, password) is not None:
            return True
        return self._basic.get((username, _sha256(password))) is not None

    async def authenticate_basic(self, username: str, password: str) -> Identity:
        """The identity of Basic credentials (401 when wrong, 403 when suspended)."""
        admin = self._config_admin(username, password)
        if admin is not None:
            return admin
        key = (username, _sha256(password))
        cached = self._basic.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        account = await self.check_password(username, password)
        identity = _identity(account, None, "default")
        self._basic.put(key, identity)
        return identity

    async def authenticate_bearer(self, token: str) -> Identity:
        """The identity of an access token (401 when invalid, expired or revoked)."""
        metrics = self.tokens.metrics_token
        if metrics is not None and hmac.compare_digest(token.encode(), metrics.encode()):
            return Identity("metrics", (METRICS_ROLE,), None, None, method="bearer")
        try:
            data = self._access.loads(token, max_age=self.tokens.access_ttl)
        except SignatureExpired:
            raise unauthorized("The access token has expired.") from None
        except BadSignature:
            raise unauthorized("Invalid access token.") from None
        return await self._session_identity(data, "bearer")

    async def authenticate_cookie(self, value: str) -> tuple[Identity, str | None]:
        """The identity of an AuthSession cookie, and a fresh cookie when it is half-way old."""
        try:
            data, signed_at = self._cookie.loads(
                value, max_age=self.tokens.cookie_ttl, return_timestamp=True
            )
        except (BadSignature, SignatureExpired):
            raise unauthorized("Your session has expired or is invalid.") from None
        admin = self._config_admin_cookie(data)
        identity = admin or await self._session_identity(data, "cookie")
        age = time.time() - signed_at.timestamp()
        fresh = self._cookie.dumps(data) if age > self.tokens.cookie_ttl / 2 else None
        return identity, (str(fresh) if fresh else None)

    async def _session_identity(self, data: Any, method: str) -> Identity:
        if not isinstance(data, dict) or not isinstance(data.get("s"), str):
            raise unauthorized("Invalid credentials.")
        session_id: str = data["s"]
        cached = self._identities.get((session_id, method))
        if cached is not None:
            return cached  # type: ignore[no-any-return]

        def read(conn: sqlite3.Connection) -> tuple[store.AccountRow | None, bool]:
            account_id = store.session_active(conn, session_id)
            if account_id is None:  # ended; but say so if it ended because of a suspension
                claimed = data.get("a")
                account = store.get_account(conn, claimed) if isinstance(claimed, str) else None
                return account, False
            return store.get_account(conn, account_id), True

        account, active = await self.readers.run(read)
        if account is not None and account.id == data.get("a") and account.status != "active":
            raise suspended()
        if account is None or not active or account.id != data.get("a"):
            raise unauthorized("The session has ended; sign in again.")
        identity = _identity(account, session_id, method)
        self._identities.put((session_id, method), identity)
        return identity

    async def start_cookie_session(
        self, username: object, password: object
    ) -> tuple[Identity, str]:
        """``POST /_session``: check the password, open a session, sign its cookie."""
        if isinstance(username, str) and isinstance(password, str):
            admin = self._config_admin(username, password)
            if admin is not None:
                return admin, str(self._cookie.dumps({"adm": username}))
        account = await self.check_password(username, password)
        session_id = secrets.token_hex(16)

        def op(tx: WriteTx) -> None:
            store.insert_session(tx.conn, session_id, account.id, "cookie", _now_iso())

        await self.writer.submit(op)
        cookie = str(self._cookie.dumps({"a": account.id, "s": session_id}))
        return _identity(account, session_id, "cookie"), cookie

    def _config_admin_cookie(self, data: Any) -> Identity | None:
        # The configured admin has no account row, so its cookie names it instead of a session.
        name = self.tokens.admin_name
        if name is not None and isinstance(data, dict) and data.get("adm") == name:
            return Identity(name, (ADMIN_ROLE,), None, None, method="cookie")
        return None


def _identity(account: store.AccountRow, session_id: str | None, method: str) -> Identity:
    return Identity(
        account.username,
        tuple(account.roles),
        account.id,
        account.db_name,
        session_id,
        account.anonymous,
        method,
    )


def _insert_account(tx: WriteTx, account: store.AccountRow) -> None:
    if not store.insert_account(tx.conn, account):
        raise CouchError(409, "conflict", "That username is taken.")
    if not doc_store.create_db(tx.conn, account.db_name, account.created_at):
        raise CouchError(409, "conflict", "The account's database already exists.")
