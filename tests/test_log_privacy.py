"""No password, token, cookie, device secret or document body ever reaches a log record.

A representative flow runs against a real syncd while every log record is captured at DEBUG;
then each record is searched whole (message, arguments, every attribute, formatted exception)
and as syncd writes it (the JSON and text formatters), for every secret the flow used.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import ADMIN, basic_auth

from syncd.config import Settings
from syncd.logs import JsonFormatter, TextFormatter


class Secrets:
    """Everything the flow must never see in a log, with what each one is."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def add(self, what: str, value: str) -> str:
        assert len(value) >= 8, (what, value)
        self.items[value] = what
        return value

    def add_token(self, what: str, token: str) -> str:
        self.add(what, token)
        self.add(what + " (signature)", token.rsplit(".", 1)[-1])
        return token

    def add_basic(self, what: str, name: str, password: str) -> dict[str, str]:
        self.add(what, password)
        header = basic_auth(name, password)
        self.add(what + " (Basic header)", header.removeprefix("Basic "))
        return {"Authorization": header}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


async def run_flow(http: TestClient, secrets: Secrets, settings: Settings) -> None:
    """Sign-ups, sign-ins, every way of authenticating, writes with a marker, failures."""
    tag = uuid.uuid4().hex
    marker = secrets.add("document marker", f"BODY-MARKER-{tag}")
    secrets.add("admin password", ADMIN[1])
    secrets.add("signing key", (settings.data_dir / "secret.key").read_text().strip())

    async def ok(resp: Any, status: int = 200) -> Any:
        assert resp.status == status, await resp.text()
        return await resp.json()

    # an anonymous device: secret and tokens; a refresh; a reused refresh token
    anon = await ok(await http.post("/v1/auth/anonymous"), 201)
    secrets.add("device secret", anon["credentials"]["password"])
    secrets.add_token("access token", anon["access_token"])
    secrets.add_token("refresh token", anon["refresh_token"])
    db = anon["account"]["db"]
    renewed = await ok(
        await http.post("/v1/auth/refresh", json={"refresh_token": anon["refresh_token"]})
    )
    secrets.add_token("refreshed access token", renewed["access_token"])
    secrets.add_token("refreshed refresh token", renewed["refresh_token"])
    resp = await http.post("/v1/auth/refresh", json={"refresh_token": anon["refresh_token"]})
    assert resp.status == 401  # reuse: the session is revoked and a warning logged
    anon = await ok(
        await http.post(
            "/v1/auth/login",
            json={
                "username": anon["credentials"]["username"],
                "password": anon["credentials"]["password"],
            },
        )
    )
    secrets.add_token("login access token", anon["access_token"])
    secrets.add_token("login refresh token", anon["refresh_token"])
    device = bearer(anon["access_token"])

    # Bearer: document writes of every kind, all carrying the marker
    await ok(await http.put(f"/{db}/put-doc", json={"text": marker}, headers=device), 201)
    await ok(await http.post(f"/{db}", json={"text": marker}, headers=device), 201)
    await ok(
        await http.post(
            f"/{db}/_bulk_docs",
            json={"docs": [{"_id": "bulk", "text": marker}, {"_id": 7}]},  # one fails
            headers=device,
        ),
        201,
    )
    await ok(await http.put(f"/{db}/_local/ckpt", json={"text": marker}, headers=device), 201)
    put = await ok(await http.put(f"/{db}/att-doc", json={}, headers=device), 201)
    resp = await http.put(
        f"/{db}/att-doc/a.txt?rev={put['rev']}",
        data=marker.encode(),
        headers={**device, "Content-Type": "text/plain"},
    )
    await ok(resp, 201)
    resp = await http.put(f"/{db}/bad-json", data=f'{{"text": "{marker}"', headers=device)
    assert resp.status == 400  # a body that does not parse is not echoed to the log either
    await ok(await http.get(f"/{db}/_changes?include_docs=true", headers=device))
    await ok(await http.get(f"/{db}/put-doc", headers=device))

    # a named account: register, login, Basic, password change, a failed login
    name = f"privacy-{tag[:8]}"
    password = secrets.add("password", f"PASSWORD-{tag}")
    named = await ok(
        await http.post("/v1/auth/register", json={"username": name, "password": password}),
        201,
    )
    secrets.add_token("register access token", named["access_token"])
    secrets.add_token("register refresh token", named["refresh_token"])
    named_db = named["account"]["db"]
    login = await ok(
        await http.post("/v1/auth/login", json={"username": name, "password": password})
    )
    secrets.add_token("named access token", login["access_token"])
    secrets.add_token("named refresh token", login["refresh_token"])
    by_basic = secrets.add_basic("password", name, password)
    await ok(await http.put(f"/{named_db}/b", json={"text": marker}, headers=by_basic), 201)
    wrong = secrets.add("wrong password", f"WRONG-PASSWORD-{tag}")
    resp = await http.post("/v1/auth/login", json={"username": name, "password": wrong})
    assert resp.status == 401
    resp = await http.get(f"/{named_db}", headers=secrets.add_basic("wrong password", name, wrong))
    assert resp.status == 401
    new_password = secrets.add("new password", f"NEW-PASSWORD-{tag}")
    await ok(
        await http.post(
            "/v1/auth/password",
            json={"old_password": password, "new_password": new_password},
            headers=bearer(login["access_token"]),
        )
    )

    # cookies: JSON and form sign-in, a cookie request, a tampered cookie, logout
    resp = await http.post("/_session", json={"name": name, "password": new_password})
    cookie = secrets.add("cookie", (resp.cookies["AuthSession"]).value)
    resp = await http.post("/_session", data={"name": name, "password": new_password})
    secrets.add("form cookie", resp.cookies["AuthSession"].value)
    http.session.cookie_jar.clear()
    with_cookie = {"Cookie": f"AuthSession={cookie}"}
    await ok(await http.put(f"/{named_db}/c", json={"text": marker}, headers=with_cookie), 201)
    await ok(await http.get("/_session", headers=with_cookie))
    tampered = {"Cookie": f"AuthSession={cookie[:-3]}abc"}
    assert (await http.get(f"/{named_db}", headers=tampered)).status == 401
    resp = await http.post("/_session", json={"name": name, "password": wrong})
    assert resp.status == 401
    await ok(await http.delete("/_session", headers=with_cookie))

    # an upgrade, a tampered token, the admin, a logout and a deletion
    upgrade_password = secrets.add("upgrade password", f"UPGRADE-PASSWORD-{tag}")
    await ok(
        await http.post(
            "/v1/auth/upgrade",
            json={"username": f"up-{tag[:8]}", "password": upgrade_password},
            headers=device,
        )
    )
    tampered = anon["access_token"][:-4] + "AAAA"
    assert (await http.get("/v1/auth/me", headers=bearer(tampered))).status == 401
    admin = {"Authorization": basic_auth(*ADMIN)}
    await ok(await http.get(f"/{db}/put-doc", headers=admin))
    await ok(await http.post("/v1/auth/logout", headers=device))
    other = await ok(await http.post("/v1/auth/anonymous"), 201)
    secrets.add("device secret", other["credentials"]["password"])
    secrets.add_token("access token", other["access_token"])
    secrets.add_token("refresh token", other["refresh_token"])
    await ok(await http.delete("/v1/auth/me", headers=bearer(other["access_token"])))


def texts_of(record: logging.LogRecord) -> list[str]:
    """Everything a record carries, raw and formatted the ways syncd formats it."""
    out = [str(record.msg), record.getMessage(), repr(record.args)]
    out += [f"{key}={value!r}" for key, value in record.__dict__.items()]
    out.append(JsonFormatter().format(record))
    out.append(TextFormatter().format(record))
    if record.exc_info:
        out.append(logging.Formatter().formatException(record.exc_info))
    return out


async def test_no_secret_or_document_body_reaches_the_logs(
    anon_client: TestClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, syncd's included
    caplog.set_level(logging.DEBUG, logger="syncd")
    secrets = Secrets()
    await run_flow(anon_client, secrets, settings)

    records = caplog.records
    syncd_records = [r for r in records if r.name == "syncd" or r.name.startswith("syncd.")]
    names = {r.name for r in syncd_records}
    # the capture really saw the flow: requests, accounts and security events
    assert {"syncd.access", "syncd.auth", "syncd.security"} <= names, names
    assert sum(r.name == "syncd.access" for r in syncd_records) >= 30
    assert any("failed sign-in" in r.getMessage() for r in syncd_records)
    assert any("reused" in r.getMessage() for r in syncd_records)

    leaks = []
    for record in records:
        for text in texts_of(record):
            for value, what in secrets.items.items():
                if value in text:
                    leaks.append(f"{what} in {record.name}: {text[:300]}")
    assert not leaks, "\n".join(leaks)


def test_the_checker_would_see_a_leak() -> None:
    """The search above finds a secret wherever a record could carry it."""
    secret = "s3cret-value-123"
    for record in (
        logging.LogRecord("syncd.x", logging.INFO, __file__, 1, "got %s", (secret,), None),
        logging.LogRecord("syncd.x", logging.INFO, __file__, 1, f"got {secret}", None, None),
    ):
        assert any(secret in text for text in texts_of(record))
    record = logging.LogRecord("syncd.x", logging.INFO, __file__, 1, "plain", None, None)
    record.account = secret  # an extra that the JSON formatter writes
    assert any(secret in text for text in texts_of(record))
    record = logging.LogRecord("syncd.x", logging.INFO, __file__, 1, "plain", None, None)
    record.body = {"text": secret}  # an extra that no formatter writes, but the record holds
    assert any(secret in text for text in texts_of(record))
