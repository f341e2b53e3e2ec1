"""Accounts, sign-in, tokens, cookies, Basic auth, _security, design-doc rights and rate limits.

One behaviour per test, against a real syncd on a real socket. Named accounts cost an argon2
hash (~0.5 s) per registration or password check, so most tests use anonymous accounts, whose
device secret is checked with SHA-256.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import ADMIN, basic_auth
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from syncd.app import create_app
from syncd.config import Settings, load_settings
from syncd.web.keys import SERVICES

PASSWORD = "correct horse battery"

# --- helpers ------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": basic_auth(name, password)}


def with_cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"AuthSession={value}"}


ADMIN_HEADERS = basic(*ADMIN)


async def sign_up(http: TestClient) -> dict[str, Any]:
    """A new anonymous account: the whole ``POST /v1/auth/anonymous`` answer."""
    resp = await http.post("/v1/auth/anonymous")
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def register(http: TestClient, name: str, password: str = PASSWORD) -> dict[str, Any]:
    resp = await http.post("/v1/auth/register", json={"username": name, "password": password})
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def cookie_login(http: TestClient, name: str, password: str) -> str:
    """``POST /_session`` (JSON); the AuthSession cookie's value (the jar is left empty)."""
    resp = await http.post("/_session", json={"name": name, "password": password})
    assert resp.status == 200, await resp.text()
    http.session.cookie_jar.clear()
    return resp.cookies["AuthSession"].value


async def status_of(http: TestClient, method: str, path: str, **kwargs: Any) -> int:
    resp = await http.request(method, path, **kwargs)
    await resp.read()
    return resp.status


async def error_of(resp: Any) -> dict[str, Any]:
    body: dict[str, Any] = await resp.json()
    assert set(body) == {"error", "reason", "request_id"}, body
    return body


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[TestClient]:
    """A syncd on ``settings`` for the duration of the block (restarts reuse the data dir)."""
    async with TestClient(TestServer(create_app(settings))) as http:
        yield http


# --- anonymous accounts -------------------------------------------------------------------


async def test_anonymous_sign_up_returns_credentials_and_tokens(anon_client: TestClient) -> None:
    body = await sign_up(anon_client)
    account = body["account"]
    assert account["anonymous"] is True
    assert account["username"] is None
    assert account["db"] == f"userdb-{account['id']}"
    assert account["status"] == "active"
    assert body["credentials"]["username"] == account["name"] == f"anon-{account['id']}"
    assert len(body["credentials"]["password"]) >= 32
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert body["access_token"] and body["refresh_token"]
    assert body["access_token"] != body["refresh_token"]


async def test_anonymous_account_database_exists_and_is_writable_at_once(
    anon_client: TestClient, client: TestClient
) -> None:
    body = await sign_up(anon_client)
    db = body["account"]["db"]
    assert await status_of(client, "GET", f"/{db}") == 200
    resp = await anon_client.put(
        f"/{db}/first", json={"hello": "world"}, headers=bearer(body["access_token"])
    )
    assert resp.status == 201, await resp.text()
    resp = await anon_client.get(f"/{db}/first", headers=bearer(body["access_token"]))
    assert (await resp.json())["hello"] == "world"


async def test_anonymous_device_secret_works_with_basic_auth(anon_client: TestClient) -> None:
    body = await sign_up(anon_client)
    creds = body["credentials"]
    db = body["account"]["db"]
    headers = basic(creds["username"], creds["password"])
    assert await status_of(anon_client, "GET", f"/{db}", headers=headers) == 200


# --- register and login -------------------------------------------------------------------


@pytest.mark.parametrize(
    "username",
    ["ab", "Alice", "-alice", ".alice", "a" * 33, "has space", "émile", "a/b", "", None, 42],
)
async def test_register_refuses_usernames_against_the_rules(
    anon_client: TestClient, username: Any
) -> None:
    resp = await anon_client.post(
        "/v1/auth/register", json={"username": username, "password": PASSWORD}
    )
    assert resp.status == 400
    body = await error_of(resp)
    assert body["error"] == "bad_request"
    assert "username must be 3-32 characters" in body["reason"]


async def test_register_refuses_the_reserved_anonymous_prefix(anon_client: TestClient) -> None:
    resp = await anon_client.post(
        "/v1/auth/register", json={"username": "anon-bob", "password": PASSWORD}
    )
    assert resp.status == 400
    assert "reserved" in (await error_of(resp))["reason"]


@pytest.mark.parametrize("password", ["", "short", "1234567", "x" * 1025, None, 12345678])
async def test_register_refuses_passwords_below_the_minimums(
    anon_client: TestClient, password: Any
) -> None:
    resp = await anon_client.post(
        "/v1/auth/register", json={"username": unique_name(), "password": password}
    )
    assert resp.status == 400
    body = await error_of(resp)
    assert body["reason"] == "password must be 8 to 1024 characters"


async def test_register_signs_the_new_account_in(anon_client: TestClient) -> None:
    name = unique_name()
    body = await register(anon_client, name)
    assert body["account"]["username"] == name
    assert body["account"]["anonymous"] is False
    assert "credentials" not in body  # the password is the person's own
    db = body["account"]["db"]
    assert (
        await status_of(anon_client, "GET", f"/{db}", headers=bearer(body["access_token"])) == 200
    )


async def test_register_a_taken_username_is_409(anon_client: TestClient) -> None:
    name = unique_name()
    await register(anon_client, name)
    resp = await anon_client.post(
        "/v1/auth/register", json={"username": name, "password": "another password"}
    )
    assert resp.status == 409
    assert (await error_of(resp))["error"] == "conflict"


async def test_register_the_configured_admin_name_is_409(anon_client: TestClient) -> None:
    resp = await anon_client.post(
        "/v1/auth/register", json={"username": ADMIN[0], "password": PASSWORD}
    )
    assert resp.status == 409


async def test_login_with_the_right_password_opens_a_new_session(anon_client: TestClient) -> None:
    name = unique_name()
    first = await register(anon_client, name)
    resp = await anon_client.post("/v1/auth/login", json={"username": name, "password": PASSWORD})
    assert resp.status == 200
    second = await resp.json()
    assert second["account"]["id"] == first["account"]["id"]
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    resp = await anon_client.get("/v1/auth/me", headers=bearer(second["access_token"]))
    assert resp.status == 200


async def test_login_with_a_wrong_password_is_401(anon_client: TestClient) -> None:
    name = unique_name()
    await register(anon_client, name)
    resp = await anon_client.post(
        "/v1/auth/login", json={"username": name, "password": "wrong password"}
    )
    assert resp.status == 401
    body = await error_of(resp)
    assert body["error"] == "unauthorized"


async def test_login_as_an_unknown_user_is_the_same_401(anon_client: TestClient) -> None:
    resp = await anon_client.post(
        "/v1/auth/login", json={"username": "nobody-here", "password": PASSWORD}
    )
    assert resp.status == 401
    assert (await error_of(resp))["reason"] == "Name or password is incorrect."


async def test_me_describes_the_account(anon_client: TestClient) -> None:
    body = await sign_up(anon_client)
    resp = await anon_client.get("/v1/auth/me", headers=bearer(body["access_token"]))
    assert resp.status == 200
    me = await resp.json()
    assert me["account"] == body["account"]
    assert me["name"] == body["credentials"]["username"]
    assert me["roles"] == []
    assert "password_hash" not in str(me)


async def test_me_for_the_configured_admin_has_no_account(client: TestClient) -> None:
    resp = await client.get("/v1/auth/me")
    assert await resp.json() == {"account": None, "name": ADMIN[0], "roles": ["_admin"]}


async def test_me_without_credentials_is_401(anon_client: TestClient) -> None:
    assert await status_of(anon_client, "GET", "/v1/auth/me") == 401


# --- access tokens ------------------------------------------------------------------------


def _flip(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("B" if char != "B" else "C") + text[index + 1 :]


async def test_a_tampered_access_token_is_401(anon_client: TestClient) -> None:
    token = (await sign_up(anon_client))["access_token"]
    assert await status_of(anon_client, "GET", "/v1/auth/me", headers=bearer(token)) == 200
    payload, stamp, _ = token.rsplit(".", 2)  # a compressed payload starts with "."
    spots = {
        "payload": len(payload) // 2,
        "timestamp": len(payload) + 2,
        "signature": len(payload) + len(stamp) + 3,
    }
    for where, index in spots.items():
        resp = await anon_client.get("/v1/auth/me", headers=bearer(_flip(token, index)))
        assert resp.status == 401, where
        assert (await error_of(resp))["error"] == "unauthorized"
    garbage = await status_of(anon_client, "GET", "/v1/auth/me", headers=bearer("not-a-token"))
    assert garbage == 401


def _signer_at(when: float) -> type[TimestampSigner]:
    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(when)

    return Signer


def _resign(settings: Settings, token: str, when: float) -> str:
    """The same claims as ``token``, signed with the server's own key at time ``when``."""
    key = (settings.data_dir / "secret.key").read_text().strip()
    serializer = URLSafeTimedSerializer(key, salt="syncd.access-token", signer=_signer_at(when))
    _, claims = serializer.loads_unsafe(token)
    return str(serializer.dumps(claims))


async def test_an_access_token_expires_after_its_ttl(
    anon_client: TestClient, settings: Settings
) -> None:
    token = (await sign_up(anon_client))["access_token"]
    ttl = settings.access_token_ttl
    fresh = _resign(settings, token, time.time() - ttl + 60)  # control: right key, still young
    assert await status_of(anon_client, "GET", "/v1/auth/me", headers=bearer(fresh)) == 200
    old = _resign(settings, token, time.time() - ttl - 5)
    resp = await anon_client.get("/v1/auth/me", headers=bearer(old))
    assert resp.status == 401
    assert (await error_of(resp))["reason"] == "The access token has expired."


async def test_a_token_signed_with_another_key_is_401(anon_client: TestClient) -> None:
    token = (await sign_up(anon_client))["access_token"]
    serializer = URLSafeTimedSerializer(
        "some-other-key-of-enough-length", salt="syncd.access-token"
    )
    _, claims = serializer.loads_unsafe(token)
    forged = str(serializer.dumps(claims))
    assert await status_of(anon_client, "GET", "/v1/auth/me", headers=bearer(forged)) == 401


async def test_an_unsupported_authorization_scheme_is_401(anon_client: TestClient) -> None:
    resp = await anon_client.get("/_session", headers={"Authorization": "Digest abc"})
    assert resp.status == 401


# --- refresh tokens -----------------------------------------------------------------------


async def _refresh(http: TestClient, token: str) -> Any:
    return await http.post("/v1/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_the_pair_and_spends_the_old_token(anon_client: TestClient) -> None:
    first = await sign_up(anon_client)
    resp = await _refresh(anon_client, first["refresh_token"])
    assert resp.status == 200
    second = await resp.json()
    assert second["token_type"] == "Bearer"
    assert second["refresh_token"] != first["refresh_token"]
    assert second["expires_in"] == first["expires_in"]
    me = await anon_client.get("/v1/auth/me", headers=bearer(second["access_token"]))
    assert (await me.json())["account"]["id"] == first["account"]["id"]
    resp = await _refresh(anon_client, second["refresh_token"])  # the new one works once
    assert resp.status == 200


async def test_presenting_a_spent_refresh_token_revokes_the_whole_session(
    anon_client: TestClient,
) -> None:
    first = await sign_up(anon_client)
    second = await (await _refresh(anon_client, first["refresh_token"])).json()
    third = await (await _refresh(anon_client, second["refresh_token"])).json()
    assert (
        await status_of(anon_client, "GET", "/v1/auth/me", headers=bearer(third["access_token"]))
        == 200
    )
    resp = await _refresh(anon_client, first["refresh_token"])  # a thief replays an old one
    assert resp.status == 401
    assert "revoked" in (await error_of(resp))["reason"]
    for token in (first["access_token"], second["access_token"], third["access_token"]):
        assert await status_of(anon_client, "GET", "/v1/auth/me", headers=bearer(token)) == 401
    assert (await _refresh(anon_client, third["refresh_token"])).status == 401


async def test_reuse_detection_leaves_other_sessions_alone(anon_client: TestClient) -> None:
    body = await sign_up(anon_client)
    creds = body["credentials"]
    login = await anon_client.post(
        "/v1/auth/login", json={"username": creds["username"], "password": creds["password"]}
    )
    other_session = await login.json()
    await _refresh(anon_client, body["refresh_token"])
    assert (await _refresh(anon_client, body["refresh_token"])).status == 401
    headers = bearer(other_session["access_token"])
    assert await status_of(anon_client, "GET", "/v1/auth/me", headers=headers) == 200


@pytest.mark.parametrize("token", ["", "made-up-token", None, 7])
async def test_refresh_with_an_unknown_token_is_401(anon_client: TestClient, token: Any) -> None:
    resp = await anon_client.post("/v1/auth/refresh", json={"refresh_token": token})
    assert resp.status == 401


# --- ending sessions ----------------------------------------------------------------------


async def test_logout_ends_the_session(anon_client: TestClient) -> None:
    body = await sign_up(anon_client)
    headers = bearer(body["access_token"])
    resp = await anon_client.post("/v1/auth/logout", headers=headers)
    assert resp.status == 200
    assert await status_of(anon_client, "GET", "/v1/auth/me", headers=headers) == 401
    assert (await _refresh(anon_client, body["refresh_token"])).status == 401


async def test_password_change_ends_every_other_session_but_this_one(
    anon_client: TestClient,
) -> None:
    name = unique_name()
    first = await register(anon_client, name)
    resp = await anon_client.post("/v1/auth/login", json={"username": name, "password": PASSWORD})
    current = await resp.json()
    cookie = await cookie_login(anon_client, name, PASSWORD)
    db = current["account"]["db"]
    assert await status_of(anon_client, "GET", f"/{db}", headers=basic(name, PASSWORD)) == 200

    resp = await anon_client.post(
        "/v1/auth/password",
        json={"old_password": PASSWORD, "new_password": "a brand new secret"},
        headers=bearer(current["access_token"]),
    )
    assert resp.status == 200, await resp.text()

    assert (
        await status_of(anon_client, "GET", f"/{db}", headers=bearer(current["access_token"]))
        == 200
    )
    assert (await _refresh(anon_client, current["refresh_token"])).status == 200
    assert (
        await status_of(anon_client, "GET", f"/{db}", headers=bearer(first["access_token"])) == 401
    )
    assert (await _refresh(anon_client, first["refresh_token"])).status == 401
    assert await status_of(anon_client, "GET", f"/{db}", headers=with_cookie(cookie)) == 401
    assert await status_of(anon_client, "GET", f"/{db}", headers=basic(name, PASSWORD)) == 401
    new_basic = basic(name, "a brand new secret")
    assert await status_of(anon_client, "GET", f"/{db}", headers=new_basic) == 200


async def test_password_change_needs_the_current_password(anon_client: TestClient) -> None:
    body = await register(anon_client, unique_name())
    resp = await anon_client.post(
        "/v1/auth/password",
        json={"old_password": "not the password", "new_password": "a brand new secret"},
        headers=bearer(body["access_token"]),
    )
    assert resp.status == 401
    headers = bearer(body["access_token"])
    assert await status_of(anon_client, "GET", "/v1/auth/me", headers=headers) == 200


# --- anonymous to named, and deletion -----------------------------------------------------


async def test_upgrade_keeps_the_database_and_its_documents(anon_client: TestClient) -> None:
    body = await sign_up(anon_client)
    db = body["account"]["db"]
    headers = bearer(body["access_token"])
    resp = await anon_client.put(f"/{db}/kept", json={"n": 1}, headers=headers)
    assert resp.status == 201
    name = unique_name()
    resp = await anon_client.post(
        "/v1/auth/upgrade", json={"username": name, "password": PASSWORD}, headers=headers
    )
    assert resp.status == 200, await resp.text()
    account = (await resp.json())["account"]
    assert account["id"] == body["account"]["id"]
    assert account["username"] == name
    assert account["anonymous"] is False
    assert account["db"] == db
    # the device keeps syncing with its token; the new name and password work too
    resp = await anon_client.get(f"/{db}/kept", headers=headers)
    assert (await resp.json())["n"] == 1
    resp = await anon_client.get(f"/{db}/kept", headers=basic(name, PASSWORD))
    assert resp.status == 200
    # the generated device secret no longer signs in
    creds = body["credentials"]
    assert (
        await status_of(anon_client, "GET", f"/{db}", headers=basic(creds["username"], PASSWORD))
        == 401
    )


async def test_upgrade_to_a_taken_name_is_409_and_keeps_the_account_anonymous(
    anon_client: TestClient,
) -> None:
    taken = unique_name()
    await register(anon_client, taken)
    body = await sign_up(anon_client)
    headers = bearer(body["access_token"])
    resp = await anon_client.post(
        "/v1/auth/upgrade", json={"username": taken, "password": PASSWORD}, headers=headers
    )
    assert resp.status == 409
    me = await (await anon_client.get("/v1/auth/me", headers=headers)).json()
    assert me["account"]["anonymous"] is True


async def test_deleting_the_account_removes_its_database_and_tokens(
    anon_client: TestClient, client: TestClient
) -> None:
    body = await sign_up(anon_client)
    db = body["account"]["db"]
    headers = bearer(body["access_token"])
    assert (await anon_client.put(f"/{db}/doc", json={}, headers=headers)).status == 201
    resp = await anon_client.delete("/v1/auth/me", headers=headers)
    assert resp.status == 200
    assert await status_of(client, "GET", f"/{db}") == 404
    assert await status_of(anon_client, "GET", "/v1/auth/me", headers=headers) == 401
    assert (await _refresh(anon_client, body["refresh_token"])).status == 401
    creds = body["credentials"]
    assert (
        await status_of(
            anon_client, "GET", "/_session", headers=basic(creds["username"], creds["password"])
        )
        == 401
    )


# --- /_session cookies --------------------------------------------------------------------


async def test_post_session_with_json_sets_an_httponly_lax_cookie(
    anon_client: TestClient,
) -> None:
    creds = (await sign_up(anon_client))["credentials"]
    resp = await anon_client.post(
        "/_session", json={"name": creds["username"], "password": creds["password"]}
    )
    assert resp.status == 200
    body = await resp.json()
    assert body == {"ok": True, "name": creds["username"], "roles": []}
    morsel = resp.cookies["AuthSession"]
    assert morsel.value
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert not morsel["secure"]


async def test_post_session_with_a_form_body_sets_the_cookie(anon_client: TestClient) -> None:
    creds = (await sign_up(anon_client))["credentials"]
    resp = await anon_client.post(
        "/_session", data={"name": creds["username"], "password": creds["password"]}
    )
    assert resp.status == 200
    assert resp.cookies["AuthSession"].value
    assert (await resp.json())["name"] == creds["username"]


async def test_post_session_with_a_wrong_password_is_401_and_sets_no_cookie(
    anon_client: TestClient,
) -> None:
    creds = (await sign_up(anon_client))["credentials"]
    resp = await anon_client.post(
        "/_session", json={"name": creds["username"], "password": "wrong password"}
    )
    assert resp.status == 401
    assert "AuthSession" not in resp.cookies


async def test_the_cookie_is_secure_when_cookie_secure_is_set(settings: Settings) -> None:
    async with running(dataclasses.replace(settings, cookie_secure=True)) as http:
        creds = (await sign_up(http))["credentials"]
        resp = await http.post(
            "/_session", json={"name": creds["username"], "password": creds["password"]}
        )
        assert resp.status == 200
        raw = resp.headers.getall("Set-Cookie")
        cookie = SimpleCookie()
        cookie.load(raw[0])
        assert cookie["AuthSession"]["secure"] is True
        assert cookie["AuthSession"]["httponly"] is True


async def test_get_session_shows_who_the_cookie_belongs_to(anon_client: TestClient) -> None:
    creds = (await sign_up(anon_client))["credentials"]
    cookie = await cookie_login(anon_client, creds["username"], creds["password"])
    resp = await anon_client.get("/_session", headers=with_cookie(cookie))
    body = await resp.json()
    assert body["ok"] is True
    assert body["userCtx"] == {"name": creds["username"], "roles": []}
    assert body["info"]["authenticated"] == "cookie"


async def test_get_session_without_credentials_has_no_name(anon_client: TestClient) -> None:
    body = await (await anon_client.get("/_session")).json()
    assert body["userCtx"] == {"name": None, "roles": []}
    assert "authenticated" not in body["info"]


async def test_get_session_for_the_admin_shows_the_admin_role(client: TestClient) -> None:
    body = await (await client.get("/_session")).json()
    assert body["userCtx"] == {"name": ADMIN[0], "roles": ["_admin"]}
    assert body["info"]["authenticated"] == "default"


async def test_the_cookie_authenticates_couchdb_routes(anon_client: TestClient) -> None:
    body = await sign_up(anon_client)
    creds = body["credentials"]
    db = body["account"]["db"]
    cookie = await cookie_login(anon_client, creds["username"], creds["password"])
    resp = await anon_client.put(f"/{db}/by-cookie", json={"x": 1}, headers=with_cookie(cookie))
    assert resp.status == 201
    assert (
        await status_of(anon_client, "GET", f"/{db}/_all_docs", headers=with_cookie(cookie)) == 200
    )
    assert await status_of(anon_client, "GET", f"/{db}") == 401  # the cookie is what did it


async def test_the_admin_can_use_a_cookie_too(anon_client: TestClient) -> None:
    cookie = await cookie_login(anon_client, *ADMIN)
    assert await status_of(anon_client, "GET", "/_all_dbs", headers=with_cookie(cookie)) == 200


async def test_a_tampered_cookie_counts_as_signed_out_and_is_cleared(
    anon_client: TestClient,
) -> None:
    """CouchDB ignores a cookie whose signature does not verify: the request is anonymous."""
    body = await sign_up(anon_client)
    creds = body["credentials"]
    cookie = await cookie_login(anon_client, creds["username"], creds["password"])
    anon_client.session.cookie_jar.clear()
    bad = _flip(cookie, 2)
    resp = await anon_client.get("/_session", headers=with_cookie(bad))
    assert resp.status == 200
    assert (await resp.json())["userCtx"]["name"] is None
    assert resp.cookies["AuthSession"].value == ""  # cleared, so the browser can sign in again
    db = body["account"]["db"]
    assert await status_of(anon_client, "GET", f"/{db}", headers=with_cookie(bad)) == 401


async def test_signing_in_again_works_with_a_stale_cookie(anon_client: TestClient) -> None:
    creds = (await sign_up(anon_client))["credentials"]
    cookie = await cookie_login(anon_client, creds["username"], creds["password"])
    anon_client.session.cookie_jar.clear()
    resp = await anon_client.post(
        "/_session",
        json={"name": creds["username"], "password": creds["password"]},
        headers=with_cookie(_flip(cookie, 2)),
    )
    assert resp.status == 200
    assert resp.cookies["AuthSession"].value


async def test_delete_session_logs_out(anon_client: TestClient) -> None:
    body = await sign_up(anon_client)
    creds = body["credentials"]
    db = body["account"]["db"]
    cookie = await cookie_login(anon_client, creds["username"], creds["password"])
    resp = await anon_client.delete("/_session", headers=with_cookie(cookie))
    assert resp.status == 200
    assert resp.cookies["AuthSession"].value == ""  # the browser drops it
    anon_client.session.cookie_jar.clear()
    # and a copy kept somewhere no longer works: its session has ended
    assert await status_of(anon_client, "GET", f"/{db}", headers=with_cookie(cookie)) == 401


# --- HTTP Basic ---------------------------------------------------------------------------


async def test_basic_auth_with_a_named_account_on_couchdb_routes(anon_client: TestClient) -> None:
    name = unique_name()
    db = (await register(anon_client, name))["account"]["db"]
    headers = basic(name, PASSWORD)
    assert (await anon_client.put(f"/{db}/b", json={"v": 1}, headers=headers)).status == 201
    assert await status_of(anon_client, "GET", f"/{db}/b", headers=headers) == 200
    assert await status_of(anon_client, "GET", f"/{db}/_changes", headers=headers) == 200
    wrong = basic(name, "wrong password")
    assert await status_of(anon_client, "GET", f"/{db}/b", headers=wrong) == 401


async def test_basic_auth_as_the_admin_reaches_every_database(
    anon_client: TestClient, client: TestClient
) -> None:
    db = (await sign_up(anon_client))["account"]["db"]
    assert await status_of(client, "GET", f"/{db}") == 200
    wrong = basic(ADMIN[0], "not-the-admin-password")
    assert await status_of(anon_client, "GET", f"/{db}", headers=wrong) == 401


async def test_malformed_basic_credentials_are_401(anon_client: TestClient) -> None:
    for value in ("Basic !!!", "Basic " + "bm9jb2xvbg==", "Basic"):  # bad b64; "nocolon"
        resp = await anon_client.get("/_session", headers={"Authorization": value})
        assert resp.status == 401, value


# --- _security ----------------------------------------------------------------------------


async def _put_security(client: TestClient, db: str, security: dict[str, Any]) -> None:
    resp = await client.put(f"/{db}/_security", json=security)
    assert resp.status == 200, await resp.text()


async def test_admin_puts_and_gets_security(client: TestClient, db: str) -> None:
    security = {
        "admins": {"names": ["ann"], "roles": []},
        "members": {"names": ["bob"], "roles": ["moderator"]},
    }
    await _put_security(client, db, security)
    assert await (await client.get(f"/{db}/_security")).json() == security


async def test_a_new_database_has_an_empty_security_object(client: TestClient, db: str) -> None:
    assert await (await client.get(f"/{db}/_security")).json() == {}


async def test_invalid_security_objects_are_400(client: TestClient, db: str) -> None:
    for bad in ({"members": []}, {"members": {"names": "bob"}}, {"admins": {"roles": [1]}}):
        assert await status_of(client, "PUT", f"/{db}/_security", json=bad) == 400, bad


async def test_a_member_listed_by_name_reads_and_writes(
    anon_client: TestClient, client: TestClient, db: str
) -> None:
    member = await sign_up(anon_client)
    await _put_security(client, db, {"members": {"names": [member["credentials"]["username"]]}})
    headers = bearer(member["access_token"])
    resp = await anon_client.put(f"/{db}/shared", json={"by": "member"}, headers=headers)
    assert resp.status == 201, await resp.text()
    assert await status_of(anon_client, "GET", f"/{db}/shared", headers=headers) == 200
    assert await status_of(anon_client, "GET", f"/{db}", headers=headers) == 200
    assert await status_of(anon_client, "GET", f"/{db}/_changes", headers=headers) == 200
    # a member is not a database admin
    assert await status_of(anon_client, "PUT", f"/{db}/_security", json={}, headers=headers) == 403


async def test_a_member_listed_by_role_reads_and_writes(
    anon_client: TestClient, client: TestClient, db: str
) -> None:
    member = await sign_up(anon_client)
    resp = await client.put(
        f"/v1/admin/accounts/{member['account']['id']}/roles", json={"roles": ["moderator"]}
    )
    assert resp.status == 200
    await _put_security(client, db, {"members": {"roles": ["moderator"]}})
    headers = bearer(member["access_token"])
    assert (await anon_client.put(f"/{db}/r", json={}, headers=headers)).status == 201


async def test_a_non_member_gets_403(anon_client: TestClient, client: TestClient, db: str) -> None:
    member, stranger = await sign_up(anon_client), await sign_up(anon_client)
    await _put_security(client, db, {"members": {"names": [member["credentials"]["username"]]}})
    headers = bearer(stranger["access_token"])
    assert await status_of(anon_client, "GET", f"/{db}", headers=headers) == 403
    resp = await anon_client.put(f"/{db}/intruder", json={}, headers=headers)
    assert resp.status == 403
    assert (await error_of(resp))["error"] == "forbidden"
    assert await status_of(client, "GET", f"/{db}/intruder") == 404
    assert await status_of(anon_client, "GET", f"/{db}") == 401


async def test_a_database_with_no_members_is_for_server_admins_only(
    anon_client: TestClient, client: TestClient, db: str
) -> None:
    await _put_security(client, db, {"admins": {"names": []}, "members": {"names": []}})
    someone = await sign_up(anon_client)
    headers = bearer(someone["access_token"])
    assert await status_of(anon_client, "GET", f"/{db}", headers=headers) == 403
    assert await status_of(anon_client, "POST", f"/{db}", json={}, headers=headers) == 403
    assert await status_of(client, "GET", f"/{db}") == 200


async def test_a_database_admin_listed_by_name_may_change_security(
    anon_client: TestClient, client: TestClient, db: str
) -> None:
    boss = await sign_up(anon_client)
    await _put_security(client, db, {"admins": {"names": [boss["credentials"]["username"]]}})
    headers = bearer(boss["access_token"])
    boss_name = boss["credentials"]["username"]
    resp = await anon_client.put(
        f"/{db}/_security",
        json={"admins": {"names": [boss_name]}, "members": {"names": ["x"]}},
        headers=headers,
    )
    assert resp.status == 200
    assert await status_of(anon_client, "GET", f"/{db}", headers=headers) == 200  # admins read


async def test_another_accounts_database_is_closed_even_to_its_listed_names(
    anon_client: TestClient,
) -> None:
    owner, other = await sign_up(anon_client), await sign_up(anon_client)
    headers = bearer(other["access_token"])
    db = owner["account"]["db"]
    assert await status_of(anon_client, "GET", f"/{db}", headers=headers) == 403
    assert await status_of(anon_client, "PUT", f"/{db}/x", json={}, headers=headers) == 403


# --- design documents ---------------------------------------------------------------------


async def test_the_owner_may_write_design_documents_in_their_database(
    anon_client: TestClient,
) -> None:
    body = await sign_up(anon_client)
    db = body["account"]["db"]
    headers = bearer(body["access_token"])
    resp = await anon_client.put(f"/{db}/_design/app", json={"views": {}}, headers=headers)
    assert resp.status == 201
    resp = await anon_client.post(
        f"/{db}/_bulk_docs", json={"docs": [{"_id": "_design/bulk"}]}, headers=headers
    )
    assert (await resp.json())[0]["ok"] is True
    resp = await anon_client.post(f"/{db}", json={"_id": "_design/posted"}, headers=headers)
    assert resp.status == 201


async def _member_of_new_db(anon_client: TestClient, client: TestClient, db: str) -> str:
    member = await sign_up(anon_client)
    await _put_security(client, db, {"members": {"names": [member["credentials"]["username"]]}})
    token: str = member["access_token"]
    return token


async def test_a_member_may_not_put_or_delete_design_documents(
    anon_client: TestClient, client: TestClient, db: str
) -> None:
    headers = bearer(await _member_of_new_db(anon_client, client, db))
    resp = await anon_client.put(f"/{db}/_design/app", json={}, headers=headers)
    assert resp.status == 403
    rev = (await (await client.put(f"/{db}/_design/app", json={})).json())["rev"]
    resp = await anon_client.delete(f"/{db}/_design/app?rev={rev}", headers=headers)
    assert resp.status == 403
    resp = await anon_client.put(f"/{db}/_design/app/a.txt?rev={rev}", data=b"x", headers=headers)
    assert resp.status == 403
    assert await status_of(anon_client, "GET", f"/{db}/_design/app", headers=headers) == 200


async def test_a_member_may_not_sneak_a_design_document_in_with_an_encoded_slash(
    anon_client: TestClient, client: TestClient, db: str
) -> None:
    headers = bearer(await _member_of_new_db(anon_client, client, db))
    resp = await anon_client.put(f"/{db}/_design%2Fsneaky", json={}, headers=headers)
    assert resp.status == 403, await resp.text()
    resp = await anon_client.put(f"/{db}/_design%2Fsneaky/a.txt", data=b"x", headers=headers)
    assert resp.status == 403, await resp.text()
    assert await status_of(client, "GET", f"/{db}/_design/sneaky") == 404
    rev = (await (await client.put(f"/{db}/_design/kept", json={})).json())["rev"]
    resp = await anon_client.delete(f"/{db}/_design%2Fkept?rev={rev}", headers=headers)
    assert resp.status == 403, await resp.text()
    assert await status_of(client, "GET", f"/{db}/_design/kept") == 200


async def test_bulk_docs_refuses_design_documents_per_document(
    anon_client: TestClient, client: TestClient, db: str
) -> None:
    headers = bearer(await _member_of_new_db(anon_client, client, db))
    resp = await anon_client.post(
        f"/{db}/_bulk_docs",
        json={"docs": [{"_id": "_design/app"}, {"_id": "plain"}]},
        headers=headers,
    )
    assert resp.status == 201
    design, plain = await resp.json()
    assert design["id"] == "_design/app"
    assert design["error"] == "forbidden"
    assert plain["ok"] is True
    assert await status_of(client, "GET", f"/{db}/_design/app") == 404


async def test_replicated_bulk_docs_refuses_design_documents_too(
    anon_client: TestClient, client: TestClient, db: str
) -> None:
    headers = bearer(await _member_of_new_db(anon_client, client, db))
    docs = [{"_id": "_design/app", "_rev": "1-" + "a" * 32}]
    resp = await anon_client.post(
        f"/{db}/_bulk_docs", json={"docs": docs, "new_edits": False}, headers=headers
    )
    assert resp.status == 201
    (failure,) = await resp.json()
    assert failure["error"] == "forbidden"
    assert await status_of(client, "GET", f"/{db}/_design/app") == 404


async def test_post_refuses_a_design_document_from_a_member(
    anon_client: TestClient, client: TestClient, db: str
) -> None:
    headers = bearer(await _member_of_new_db(anon_client, client, db))
    resp = await anon_client.post(f"/{db}", json={"_id": "_design/app"}, headers=headers)
    assert resp.status == 403
    assert (await error_of(resp))["error"] == "forbidden"


async def test_a_database_admin_may_write_design_documents(
    anon_client: TestClient, client: TestClient, db: str
) -> None:
    boss = await sign_up(anon_client)
    await _put_security(client, db, {"admins": {"names": [boss["credentials"]["username"]]}})
    headers = bearer(boss["access_token"])
    assert (await anon_client.put(f"/{db}/_design/a", json={}, headers=headers)).status == 201
    resp = await anon_client.post(
        f"/{db}/_bulk_docs", json={"docs": [{"_id": "_design/b"}]}, headers=headers
    )
    assert (await resp.json())[0]["ok"] is True


# --- rate limits --------------------------------------------------------------------------


async def _login_attempt(http: TestClient, name: str, headers: dict[str, str] | None = None) -> Any:
    return await http.post(
        "/v1/auth/login", json={"username": name, "password": PASSWORD}, headers=headers or {}
    )


async def test_the_fourth_login_attempt_over_the_address_limit_is_429(settings: Settings) -> None:
    async with running(dataclasses.replace(settings, auth_rate_limit="3/minute")) as http:
        for _ in range(3):
            assert (await _login_attempt(http, "nobody-here")).status == 401
        resp = await _login_attempt(http, "nobody-here")
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) >= 60  # at least the window that was hit
        body = await error_of(resp)
        assert body["error"] == "too_many_requests"
        assert body["reason"]
        # each sign-in route keeps its own count
        assert (await http.post("/v1/auth/anonymous")).status == 201


async def test_session_post_is_limited_too(settings: Settings) -> None:
    async with running(dataclasses.replace(settings, auth_rate_limit="2/minute")) as http:
        wrong = {"name": "nobody-here", "password": "wrong password"}
        for _ in range(2):
            assert (await http.post("/_session", json=wrong)).status == 401
        assert (await http.post("/_session", json=wrong)).status == 429


async def test_the_username_limit_holds_across_client_addresses(settings: Settings) -> None:
    limited = dataclasses.replace(
        settings, trust_proxy=True, auth_rate_limit="100/minute", auth_user_rate_limit="3/minute"
    )
    async with running(limited) as http:
        for i in range(3):
            resp = await _login_attempt(http, "alice", {"X-Forwarded-For": f"10.0.0.{i + 1}"})
            assert resp.status == 401
        resp = await _login_attempt(http, "alice", {"X-Forwarded-For": "10.0.0.9"})
        assert resp.status == 429
        assert "Retry-After" in resp.headers
        resp = await _login_attempt(http, "ALICE", {"X-Forwarded-For": "10.0.0.10"})
        assert resp.status == 429  # names are compared case-insensitively
        resp = await _login_attempt(http, "bob-is-fine", {"X-Forwarded-For": "10.0.0.9"})
        assert resp.status == 401


async def test_the_username_limit_holds_without_a_proxy(settings: Settings) -> None:
    limited = dataclasses.replace(
        settings, auth_rate_limit="100/minute", auth_user_rate_limit="2/minute"
    )
    async with running(limited) as http:
        for _ in range(2):
            assert (await _login_attempt(http, "carol")).status == 401
        assert (await _login_attempt(http, "carol")).status == 429
        assert (await _login_attempt(http, "dave-ok")).status == 401


async def test_the_address_limit_follows_forwarded_addresses_behind_a_trusted_proxy(
    settings: Settings,
) -> None:
    limited = dataclasses.replace(settings, trust_proxy=True, auth_rate_limit="3/minute")
    async with running(limited) as http:
        here = {"X-Forwarded-For": "203.0.113.7"}
        for i in range(3):
            assert (await _login_attempt(http, f"name-{i}", here)).status == 401
        assert (await _login_attempt(http, "name-9", here)).status == 429
        there = {"X-Forwarded-For": "198.51.100.1"}
        assert (await _login_attempt(http, "name-9", there)).status == 401


async def test_forwarded_addresses_are_ignored_without_a_trusted_proxy(
    settings: Settings,
) -> None:
    async with running(dataclasses.replace(settings, auth_rate_limit="3/minute")) as http:
        for i in range(3):
            headers = {"X-Forwarded-For": f"192.0.2.{i}"}
            assert (await _login_attempt(http, f"name-{i}", headers)).status == 401
        headers = {"X-Forwarded-For": "192.0.2.200"}
        assert (await _login_attempt(http, "name-x", headers)).status == 429


# --- suspended accounts -------------------------------------------------------------------


async def _suspend(http: TestClient, account_id: str) -> None:
    app = http.server.app
    assert app is not None
    await app[SERVICES].accounts.set_status(account_id, "suspended")


async def test_a_suspended_account_cannot_log_in(anon_client: TestClient) -> None:
    body = await sign_up(anon_client)
    creds = body["credentials"]
    await _suspend(anon_client, body["account"]["id"])
    resp = await anon_client.post(
        "/v1/auth/login", json={"username": creds["username"], "password": creds["password"]}
    )
    assert resp.status == 403
    assert (await error_of(resp))["reason"] == "This account is suspended."
    resp = await anon_client.post(
        "/_session", json={"name": creds["username"], "password": creds["password"]}
    )
    assert resp.status == 403


async def test_a_suspended_account_cannot_sync(anon_client: TestClient) -> None:
    body = await sign_up(anon_client)
    creds = body["credentials"]
    db = body["account"]["db"]
    basic_headers = basic(creds["username"], creds["password"])
    cookie = await cookie_login(anon_client, creds["username"], creds["password"])
    # warm the caches: every credential works before the suspension
    for headers in (basic_headers, bearer(body["access_token"]), with_cookie(cookie)):
        assert await status_of(anon_client, "GET", f"/{db}", headers=headers) == 200
    await _suspend(anon_client, body["account"]["id"])
    for headers in (basic_headers, bearer(body["access_token"]), with_cookie(cookie)):
        resp = await anon_client.get(f"/{db}/_changes", headers=headers)
        assert resp.status == 403, headers
        assert (await error_of(resp))["reason"] == "This account is suspended."
    assert (await _refresh(anon_client, body["refresh_token"])).status in (401, 403)


async def test_a_reactivated_account_signs_in_again(anon_client: TestClient) -> None:
    body = await sign_up(anon_client)
    creds = body["credentials"]
    await _suspend(anon_client, body["account"]["id"])
    app = anon_client.server.app
    assert app is not None
    await app[SERVICES].accounts.set_status(body["account"]["id"], "active")
    db = body["account"]["db"]
    headers = basic(creds["username"], creds["password"])
    assert await status_of(anon_client, "GET", f"/{db}", headers=headers) == 200


# --- signing keys -------------------------------------------------------------------------


async def test_a_generated_signing_key_is_private_and_survives_a_restart(
    settings: Settings,
) -> None:
    key_file = settings.data_dir / "secret.key"
    async with running(settings) as http:
        body = await sign_up(http)
        cookie = await cookie_login(
            http, body["credentials"]["username"], body["credentials"]["password"]
        )
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_bytes()
    assert len(key.strip()) >= 32
    async with running(settings) as http:
        headers = bearer(body["access_token"])
        assert await status_of(http, "GET", "/v1/auth/me", headers=headers) == 200
        assert await status_of(http, "GET", "/_session", headers=with_cookie(cookie)) == 200
        assert (await _refresh(http, body["refresh_token"])).status == 200
    assert key_file.read_bytes() == key


async def test_a_new_data_dir_gets_a_new_key(settings: Settings, tmp_path: Any) -> None:
    async with running(settings) as http:
        token = (await sign_up(http))["access_token"]
    async with running(dataclasses.replace(settings, data_dir=tmp_path / "elsewhere")) as http:
        assert await status_of(http, "GET", "/v1/auth/me", headers=bearer(token)) == 401


def _env_settings(settings: Settings, **env: str) -> Settings:
    return load_settings(
        env={
            "SYNCD_DATA_DIR": str(settings.data_dir),
            "SYNCD_ADMIN_USER": ADMIN[0],
            "SYNCD_ADMIN_PASSWORD": ADMIN[1],
            **env,
        }
    )


async def test_configured_keys_rotate_with_previous_keys(settings: Settings) -> None:
    old_key, new_key = "old-signing-key-" + "o" * 24, "new-signing-key-" + "n" * 24
    async with running(_env_settings(settings, SYNCD_SECRET_KEY=old_key)) as http:
        old = await sign_up(http)
    assert not (settings.data_dir / "secret.key").exists()  # a configured key is not stored

    rotated = _env_settings(
        settings, SYNCD_SECRET_KEY=new_key, SYNCD_PREVIOUS_SECRET_KEYS=f"{'x' * 16},{old_key}"
    )
    async with running(rotated) as http:
        headers = bearer(old["access_token"])
        assert await status_of(http, "GET", "/v1/auth/me", headers=headers) == 200
        new = await sign_up(http)

    # new tokens are signed with the new key: the old key alone does not accept them
    async with running(_env_settings(settings, SYNCD_SECRET_KEY=old_key)) as http:
        headers = bearer(new["access_token"])
        assert await status_of(http, "GET", "/v1/auth/me", headers=headers) == 401

    # once the old key is dropped, its tokens stop working
    async with running(_env_settings(settings, SYNCD_SECRET_KEY=new_key)) as http:
        old_headers = bearer(old["access_token"])
        assert await status_of(http, "GET", "/v1/auth/me", headers=old_headers) == 401
        new_headers = bearer(new["access_token"])
        assert await status_of(http, "GET", "/v1/auth/me", headers=new_headers) == 200


async def test_retry_after_is_the_window_of_the_limit_that_was_hit(settings: Settings) -> None:
    limited = dataclasses.replace(settings, auth_rate_limit="2/minute", report_rate_limit="20/hour")
    async with running(limited) as http:
        for _ in range(2):
            await _login_attempt(http, "nobody-here")
        resp = await _login_attempt(http, "nobody-here")
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "60"


async def test_failed_basic_credentials_on_any_route_are_limited(settings: Settings) -> None:
    """Guessing passwords with Basic auth costs the guesser a 429, not the server a hash."""
    limited = dataclasses.replace(
        settings, auth_rate_limit="100/minute", auth_user_rate_limit="3/minute"
    )
    async with running(limited) as http:
        body = await sign_up(http)
        name, db = body["credentials"]["username"], body["account"]["db"]
        for _ in range(3):
            resp = await http.get(f"/{db}", headers=basic(name, "wrong password"))
            assert resp.status == 401
        resp = await http.get(f"/{db}", headers=basic(name, "wrong password"))
        assert resp.status == 429
        assert (await error_of(resp))["error"] == "too_many_requests"
        # even the right password waits until the window passes
        resp = await http.get(f"/{db}", headers=basic(name, body["credentials"]["password"]))
        assert resp.status == 429


async def test_verified_basic_credentials_are_not_slowed_by_the_failure_limit(
    settings: Settings,
) -> None:
    limited = dataclasses.replace(
        settings, auth_rate_limit="100/minute", auth_user_rate_limit="2/minute"
    )
    async with running(limited) as http:
        body = await sign_up(http)
        name, db = body["credentials"]["username"], body["account"]["db"]
        good = basic(name, body["credentials"]["password"])
        assert (await http.get(f"/{db}", headers=good)).status == 200
        for _ in range(2):
            assert (await http.get(f"/{db}", headers=basic(name, "wrong"))).status == 401
        assert (await http.get(f"/{db}", headers=good)).status == 200  # cached: no new check
