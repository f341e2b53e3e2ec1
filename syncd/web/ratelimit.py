"""Rate limits (aiohttp-ratelimiter): sign-in routes per client address and per username,
shared-pack reads per address, abuse reports per account.

Each app gets its own in-memory limiter. A limited request is answered 429 with
``Retry-After`` and CouchDB's error shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttplimiter import Limiter, RateLimitExceeded
from limits import parse

from syncd.config import Settings
from syncd.errors import CouchError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def client_address(request: web.Request, trust_proxy: bool) -> str:
    """The caller's address; behind a trusted reverse proxy, the one it forwarded."""
    if trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.remote or "unknown"


async def _username(request: web.Request) -> str | None:
    if request.content_type == "application/x-www-form-urlencoded":
        value = (await request.post()).get("name")
        return value if isinstance(value, str) else None
    try:
        body = await request.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    name = body.get("username", body.get("name"))
    return name.lower() if isinstance(name, str) else None


class RateLimits:
    """Wraps handlers in the limits from the settings, all counted in one per-app limiter."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._limiter = Limiter(keyfunc=self._address_key, error_handler=self._too_many)
        self._retry_after = max(
            parse(rate).get_expiry()
            for rate in (
                settings.auth_rate_limit,
                settings.auth_user_rate_limit,
                settings.share_rate_limit,
                settings.report_rate_limit,
            )
        )

    def _address_key(self, request: web.Request) -> str:
        return client_address(request, self._settings.trust_proxy)

    async def _user_key(self, request: web.Request) -> str:
        name = await _username(request)
        return f"user:{name}" if name else f"addr:{self._address_key(request)}"

    def _account_key(self, request: web.Request) -> str:
        from syncd.web.auth import identity  # auth imports this module's neighbours

        who = identity(request)
        if who is None:
            return f"addr:{self._address_key(request)}"
        return f"account:{who.account_id or who.name}"

    def _too_many(self, request: web.Request, exc: RateLimitExceeded) -> web.StreamResponse:
        raise CouchError(
            429,
            "too_many_requests",
            "Too many attempts; wait before trying again.",
            {"Retry-After": str(self._retry_after)},
        )

    def per_address(self, name: str, rate: str, handler: Handler) -> Handler:
        """``handler`` behind a per-client-address limit."""
        return self._limiter.limit(rate, path_id=name)(handler)

    def per_account(self, name: str, rate: str, handler: Handler) -> Handler:
        """``handler`` behind a per-account limit (per address for anonymous callers)."""
        return self._limiter.limit(rate, keyfunc=self._account_key, path_id=name)(handler)

    def wrap(self, name: str, handler: Handler) -> Handler:
        """A sign-in ``handler`` behind the per-address limit, then the per-username one."""
        by_user = self._limiter.limit(
            self._settings.auth_user_rate_limit, keyfunc=self._user_key, path_id=name + ":user"
        )(handler)
        return self._limiter.limit(self._settings.auth_rate_limit, path_id=name)(by_user)
