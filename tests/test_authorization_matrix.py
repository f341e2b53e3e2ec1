"""Every route in ``syncd.web.routes.ROUTES`` x every kind of caller → allowed or refused.

The matrix is generated from the route table itself, so a route added later is exercised
automatically; the expectation comes from the route's ``Access`` and the rules below, and a
separate test pins the ``Access`` of key routes so that a wrong table cannot pass by itself.

Callers:

* ``none``: no credentials at all;
* ``owner``: an anonymous account using its own ``userdb-<id>`` through its Bearer token;
* ``other``: a second account (also Bearer), not listed anywhere on the owner's database;
* ``moderator``: a third account holding the ``moderator`` role;
* ``metrics``: the configured metrics token (Bearer), which opens ``/metrics`` and nothing else;
* ``admin``: the configured server admin (HTTP Basic).

Allowed means "not 401/403" (and no 500); refused means exactly 401 without credentials and
403 with credentials that are not enough, in CouchDB's error shape.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from conftest import ADMIN, basic_auth

from syncd.config import Secret, Settings
from syncd.services.accounts import METRICS_ROLE, Identity
from syncd.services.authz import Access
from syncd.web.keys import SERVICES
from syncd.web.routes import ROUTES, Route

METRICS_TOKEN = "metrics-token-for-the-matrix"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, with a metrics token configured."""
    return dataclasses.replace(settings, metrics_token=Secret(METRICS_TOKEN))


CALLERS = (
    "none",
    "other",
    "moderator",
    "metrics",
    "owner",
    "admin",
)  # the admin goes last: it may delete


@dataclass
class Account:
    """An anonymous account made through ``POST /v1/auth/anonymous``."""

    id: str
    name: str
    secret: str
    db: str
    access_token: str
    refresh_token: str

    @property
    def bearer(self) -> str:
        return "Bearer " + self.access_token


async def sign_up(client: TestClient) -> Account:
    resp = await client.post("/v1/auth/anonymous")
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return Account(
        id=body["account"]["id"],
        name=body["credentials"]["username"],
        secret=body["credentials"]["password"],
        db=body["account"]["db"],
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
    )


@dataclass
class World:
    """The accounts a matrix cell needs, and the client that talks to the server."""

    http: TestClient
    owner: Account
    other: Account
    moderator: Account

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "none":
            return {}
        if caller == "admin":
            return {"Authorization": basic_auth(*ADMIN)}
        if caller == "metrics":
            return {"Authorization": "Bearer " + METRICS_TOKEN}
        account: Account = getattr(self, caller)
        return {"Authorization": account.bearer}


@pytest.fixture
async def world(anon_client: TestClient) -> World:
    owner, other, moderator = [await sign_up(anon_client) for _ in range(3)]
    resp = await anon_client.put(
        f"/v1/admin/accounts/{moderator.id}/roles",
        json={"roles": ["moderator"]},
        headers={"Authorization": basic_auth(*ADMIN)},
    )
    assert resp.status == 200, await resp.text()
    return World(anon_client, owner, other, moderator)


# --- what each route is called with -------------------------------------------------------


def path_values(world: World) -> dict[str, str]:
    """A sensible value for every path parameter any route uses."""
    return {
        "db": world.owner.db,
        "docid": "doc-1",
        "ddoc": "dd-1",
        "attname": "notes/a.txt",
        "localid": "checkpoint-1",
        "account_id": world.other.id,
        "pack_id": "pack-1",
        "sku": "sku-1",
        "code": "code-1",
        "report_id": "report-1",
    }


_PARAM = re.compile(r"\{(\w+)(?::[^{}]*)?\}")


def path_params(route: Route) -> list[str]:
    return _PARAM.findall(route.path)


def concrete_path(route: Route, values: dict[str, str]) -> str:
    missing = [p for p in path_params(route) if p not in values]
    assert not missing, f"route {route.name}: give the matrix a sample value for {missing}"
    return _PARAM.sub(lambda m: values[m.group(1)], route.path)


BodyMaker = Callable[[World], Awaitable[dict[str, Any]]]


async def _credentials(world: World) -> dict[str, Any]:
    return {"json": {"username": world.owner.name, "password": world.owner.secret}}


async def _session_form(world: World) -> dict[str, Any]:
    return {"json": {"name": world.owner.name, "password": world.owner.secret}}


async def _fresh_refresh_token(world: World) -> dict[str, Any]:
    # Every call spends its refresh token, so every call gets an unused one.
    return {"json": {"refresh_token": (await sign_up(world.http)).refresh_token}}


def _json(value: Any) -> BodyMaker:
    async def make(world: World) -> dict[str, Any]:
        return {"json": value}

    return make


async def _attachment(world: World) -> dict[str, Any]:
    return {"data": b"hello", "headers": {"Content-Type": "text/plain"}}


# Request bodies that let an allowed call get past the handler's own checks where that matters
# (a PUBLIC sign-in route answers 401 for wrong credentials, so those get right ones).
BODIES: dict[str, BodyMaker] = {
    "session_post": _session_form,
    "auth_login": _credentials,
    "auth_register": _json({}),  # 400: no username; nothing is hashed
    "auth_refresh": _fresh_refresh_token,
    "auth_password": _json({}),
    "auth_upgrade": _json({}),
    "admin_account_roles": _json({"roles": []}),
    "doc_post": _json({"marker": 1}),
    "doc_post_slash": _json({"marker": 1}),
    "bulk_docs": _json({"docs": [{"_id": "doc-1"}, {"_id": "_design/dd-2"}]}),
    "bulk_get": _json({"docs": [{"id": "doc-1"}]}),
    "revs_diff": _json({"doc-1": ["1-0123456789abcdef0123456789abcdef"]}),
    "all_docs_post": _json({"keys": ["doc-1"]}),
    "changes_post": _json({}),
    "revs_limit_put": _json(500),
    "security_put": _json({"admins": {}, "members": {}}),
    "local_put": _json({"marker": 1}),
    "design_put": _json({"views": {}}),
    "design_att_put": _attachment,
    "doc_put": _json({"marker": 1}),
    "att_put": _attachment,
}


# --- the rules ----------------------------------------------------------------------------


def allowed(access: Access, on_db: bool, caller: str) -> bool:
    """Whether ``caller`` may use a route of ``access`` (``on_db``: on the owner's database)."""
    match access:
        case Access.PUBLIC:
            return True
        case Access.AUTHENTICATED:
            return caller not in ("none", "metrics")
        case Access.MODERATOR:
            return caller in ("admin", "moderator")
        case Access.SERVER_ADMIN:
            return caller == "admin"
        case Access.METRICS:
            return caller in ("admin", "metrics")
        case Access.DB_MEMBER | Access.DB_ADMIN:
            return caller == "admin" or (on_db and caller == "owner")
    raise AssertionError(f"the matrix has no rule for {access}")  # a new Access value


def cells() -> list[Any]:
    out = []
    for route in ROUTES:
        methods = [route.method] + (["HEAD"] if route.method == "GET" else [])
        for method in methods:
            out.append(pytest.param(route, method, id=f"{route.name}-{method}"))
    return out


@pytest.mark.parametrize(("route", "method"), cells())
async def test_route_access_for_every_caller(world: World, route: Route, method: str) -> None:
    path = concrete_path(route, path_values(world))
    body_maker = BODIES.get(route.name)
    for caller in CALLERS:
        kwargs = await body_maker(world) if body_maker else {}
        headers = {**kwargs.pop("headers", {}), **world.headers(caller)}
        world.http.session.cookie_jar.clear()  # only the headers speak for the caller
        resp = await world.http.request(method, path, headers=headers, **kwargs)
        text = await resp.text()
        where = f"{method} {path} as {caller} ({route.access.name}): {resp.status} {text}"
        if allowed(route.access, "db" in path_params(route), caller):
            assert resp.status not in (401, 403), "refused but should be allowed: " + where
            assert resp.status < 500, where
        else:
            assert resp.status == (401 if caller == "none" else 403), (
                "allowed or wrongly refused: " + where
            )
            if method != "HEAD":
                assert (await resp.json())["error"] == (
                    "unauthorized" if caller == "none" else "forbidden"
                ), where


# --- the matrix reads the right routes and the right table --------------------------------


@pytest.mark.parametrize("route", [pytest.param(r, id=r.name) for r in ROUTES])
async def test_sample_path_reaches_its_own_route(world: World, route: Route) -> None:
    """The matrix's request for a route is answered by that route (not an earlier pattern)."""
    app = world.http.server.app
    assert app is not None
    path = concrete_path(route, path_values(world))
    match = await app.router.resolve(make_mocked_request(route.method, path, app=app))
    assert match.route.name == route.name, f"{route.method} {path} went to {match.route.name}"


async def test_every_served_route_comes_from_the_table(world: World) -> None:
    """No route reaches the router without going through ``ROUTES`` and its access check."""
    app = world.http.server.app
    assert app is not None
    names = {r.name for r in ROUTES}
    assert len(names) == len(ROUTES), "route names must be unique"
    served = [r for r in app.router.routes() if r.method != "HEAD"]
    assert len(served) == len(ROUTES)
    for served_route in served:
        assert served_route.name in names, f"{served_route.method} {served_route} is not in ROUTES"
        handler: Any = served_route.handler
        assert handler.__name__ == f"{served_route.name}_guarded"


EXPECTED_ACCESS = {
    "welcome": Access.PUBLIC,
    "up": Access.PUBLIC,
    "metrics": Access.METRICS,
    "uuids": Access.PUBLIC,
    "session_get": Access.PUBLIC,
    "session_post": Access.PUBLIC,
    "auth_anonymous": Access.PUBLIC,
    "auth_login": Access.PUBLIC,
    "auth_refresh": Access.PUBLIC,
    "auth_me": Access.AUTHENTICATED,
    "auth_delete_me": Access.AUTHENTICATED,
    "auth_password": Access.AUTHENTICATED,
    "admin_account_roles": Access.SERVER_ADMIN,
    "all_dbs": Access.SERVER_ADMIN,
    "db_create": Access.SERVER_ADMIN,
    "db_create_slash": Access.SERVER_ADMIN,
    "db_delete": Access.SERVER_ADMIN,
    "db_delete_slash": Access.SERVER_ADMIN,
    "revs_limit_put": Access.SERVER_ADMIN,
    "compact": Access.SERVER_ADMIN,
    "db_info": Access.DB_MEMBER,
    "bulk_docs": Access.DB_MEMBER,
    "bulk_get": Access.DB_MEMBER,
    "changes": Access.DB_MEMBER,
    "doc_get": Access.DB_MEMBER,
    "doc_put": Access.DB_MEMBER,
    "local_put": Access.DB_MEMBER,
    "security_get": Access.DB_MEMBER,
    "security_put": Access.DB_ADMIN,
    "design_put": Access.DB_ADMIN,
    "design_delete": Access.DB_ADMIN,
    "design_att_put": Access.DB_ADMIN,
    "design_att_delete": Access.DB_ADMIN,
}


def test_key_routes_declare_the_expected_access() -> None:
    by_name = {r.name: r for r in ROUTES}
    for name, access in EXPECTED_ACCESS.items():
        assert name in by_name, f"route {name} is gone from ROUTES"
        assert by_name[name].access is access, f"{name}: {by_name[name].access} != {access}"


def test_sign_in_routes_are_rate_limited() -> None:
    limited = {r.name for r in ROUTES if r.rate_limited}
    assert {
        "session_post",
        "auth_anonymous",
        "auth_register",
        "auth_login",
        "auth_refresh",
        "auth_password",
        "auth_upgrade",
    } <= limited


def test_general_rules_hold_for_every_route() -> None:
    """Rules any new route must follow, whatever its name."""
    for route in ROUTES:
        params = path_params(route)
        where = f"{route.method} {route.path} ({route.name}): {route.access.name}"
        if "db" in params:  # nothing about a database is open to everyone or every account
            assert route.access in (Access.DB_MEMBER, Access.DB_ADMIN, Access.SERVER_ADMIN), where
            changes_admin_stuff = "/_design/" in route.path or route.path.endswith("/_security")
            if route.method not in ("GET", "HEAD") and changes_admin_stuff:
                assert route.access in (Access.DB_ADMIN, Access.SERVER_ADMIN), where
        else:
            assert route.access not in (Access.DB_MEMBER, Access.DB_ADMIN), where
        if route.path.startswith("/v1/admin/") or route.path.startswith("/_all_dbs"):
            assert route.access is Access.SERVER_ADMIN, where
        if route.access is Access.METRICS:  # the metrics token opens nothing else
            assert route.path == "/metrics", where


# --- the Authorizer itself, for every Access value (some have no route yet) ---------------


async def test_authorizer_decides_every_access_value(world: World) -> None:
    app: web.Application | None = world.http.server.app
    assert app is not None
    authz = app[SERVICES].authz
    owner_db = world.owner.db

    def who(name: str, roles: tuple[str, ...] = (), db: str | None = None) -> Identity:
        return Identity(name, roles, "id-" + name, db)

    identities: dict[str, Identity | None] = {
        "none": None,
        "owner": who("owner", db=owner_db),
        "other": who("other", db="userdb-other"),
        "moderator": who("moderator", ("moderator",), "userdb-moderator"),
        "metrics": Identity("metrics", (METRICS_ROLE,), None, None),
        "admin": Identity("admin", ("_admin",), None, None),
    }
    for access in Access:
        for caller, identity in identities.items():
            try:
                await authz.check(access, identity, owner_db)
                status = 200
            except Exception as exc:
                status = getattr(exc, "status", 500)
            if allowed(access, True, caller):
                assert status == 200, f"{access} {caller}: {status}"
            else:
                assert status == (401 if caller == "none" else 403), f"{access} {caller}"
