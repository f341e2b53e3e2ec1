"""What people write and where they connect from never reaches the logs.

A whole flow runs against a real syncd (sharing, installing, reporting, moderating, analytics,
refused requests, a rate-limited one) with marker strings in a report note, a prompt's text, a
moderator's comment, an analytics install id, the credentials, and the client's address
(``X-Forwarded-For`` behind a trusted proxy, and the socket's own 127.0.0.1). Every record of
the ``syncd`` loggers is captured at DEBUG and formatted as the server writes it (JSON and
text); no marker may appear in any line.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import ADMIN, basic_auth
from test_sharing import running, save_pack, sign_up

from syncd.config import Settings
from syncd.logs import JsonFormatter, TextFormatter

NOTE = "note-marker-7f3a2c"
PROMPT = "prompt-marker-91c2bd"
COMMENT = "comment-marker-0be4a1"
INSTALL_ID = "install-marker-5d0e77"
FORWARDED = "203.0.113.201"
SOCKET = "127.0.0.1"
MARKERS = {
    "report-note": NOTE,
    "prompt-text": PROMPT,
    "moderator-comment": COMMENT,
    "install-id": INSTALL_ID,
    "forwarded-address": FORWARDED,
    "socket-address": SOCKET,
}


async def _flow(http: TestClient) -> dict[str, str]:
    """Exercise the routes that carry personal content; the credentials it used."""
    via = {"X-Forwarded-For": FORWARDED, "User-Agent": "PromptApp/1.0"}
    admin = {**via, "Authorization": basic_auth(*ADMIN)}

    async def call(method: str, path: str, who: dict[str, str], **kwargs: Any) -> int:
        resp = await http.request(method, path, headers={**via, **who}, **kwargs)
        await resp.read()
        status: int = resp.status
        return status

    owner, reader, reporter = await sign_up(http), await sign_up(http), await sign_up(http)
    prompts = [{"id": "p1", "text": f"Tell me about {PROMPT}"}, {"id": "p2", "text": "Why?"}]
    await save_pack(http, owner, prompts=prompts)
    resp = await http.post("/v1/shares", json={"doc_id": "pack:1"}, headers={**via, **owner.auth})
    code = (await resp.json())["code"]
    assert await call("GET", f"/v1/shares/{code}", {}) == 200
    assert await call("POST", f"/v1/shares/{code}/install", reader.auth) == 201
    assert await call("GET", f"/{reader.db}/pack:share-{code}", reader.auth) == 200
    body = {"share_code": code, "prompt_id": "p1", "reason": "other", "note": f"see {NOTE}"}
    filed = await http.post("/v1/reports", json=body, headers={**via, **reporter.auth})
    assert filed.status == 201
    report_id = (await filed.json())["id"]
    too_long = {**body, "note": NOTE * 40}
    assert await call("POST", "/v1/reports", reporter.auth, json=too_long) == 400
    assert await call("GET", "/v1/moderation/reports", admin) == 200
    assert await call("GET", "/v1/moderation/reports", reporter.auth) == 403
    resolve = {"action": "hide_prompt", "comment": f"hidden: {COMMENT}"}
    path = f"/v1/moderation/reports/{report_id}/resolve"
    assert await call("POST", path, admin, json=resolve) == 200
    assert await call("POST", path, admin, json=resolve) == 409
    assert await call("GET", "/v1/moderation/audit", admin) == 200
    now = datetime.now(UTC).isoformat()
    good = {"name": "app_open", "ts": now, "install_id": INSTALL_ID, "app_version": "1.0"}
    events = [
        {**good, "platform": "ios"},
        {**good, "platform": INSTALL_ID},  # refused, echoing nothing of itself into a log
        {**good, "platform": "web", INSTALL_ID: True},
    ]
    assert await call("POST", "/v1/analytics/events", {}, json={"events": events}) == 200
    json_type = {"Content-Type": "application/json"}
    assert await call("POST", "/v1/analytics/events", json_type, data=f"{{{INSTALL_ID}") == 400
    assert await call("GET", "/v1/analytics/summary", admin) == 200
    assert await call("GET", "/v1/auth/me", {"Authorization": "Bearer not-a-token"}) == 401
    wrong = {"Authorization": basic_auth(owner.username, owner.password + "x")}
    assert await call("GET", f"/{owner.db}", wrong) == 401
    for _ in range(4):
        await call("GET", f"/v1/shares/{code}", {})
    assert await call("GET", f"/v1/shares/{code}", {}) == 429  # the limit below is 5/minute
    assert await call("DELETE", "/v1/auth/me", owner.auth) == 200
    return {
        "password": owner.password,
        "access-token": reporter.token,
        "username": owner.username,
    }


@pytest.fixture
async def logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> tuple[list[str], dict[str, str]]:
    """Every ``syncd`` log line of the flow, as JSON and as text; and the credentials used."""
    caplog.set_level(logging.DEBUG, logger="syncd")
    proxied = dataclasses.replace(settings, trust_proxy=True, share_rate_limit="5/minute")
    async with running(proxied) as http:
        secrets = await _flow(http)
    records = [r for r in caplog.records if r.name == "syncd" or r.name.startswith("syncd.")]
    assert sum(r.name == "syncd.access" for r in records) >= 25  # each request of the flow
    assert any(r.name == "syncd.security" for r in records)  # the wrong password was
    lines = [JsonFormatter().format(r) for r in records]
    lines += [TextFormatter().format(r) for r in records]
    lines += [repr(r.__dict__) for r in records]  # every attribute, formatted or not
    return lines, secrets


@pytest.mark.parametrize("marker", MARKERS.values(), ids=MARKERS.keys())
async def test_no_log_line_holds_personal_content_or_addresses(
    logged: tuple[list[str], dict[str, str]], marker: str
) -> None:
    lines, _ = logged
    leaks = [line for line in lines if marker in line]
    assert leaks == []


@pytest.mark.parametrize("secret", ["password", "access-token", "username"])
async def test_no_log_line_holds_credentials(
    logged: tuple[list[str], dict[str, str]], secret: str
) -> None:
    lines, secrets = logged
    leaks = [line for line in lines if secrets[secret] in line]
    assert leaks == []
