"""Anonymous analytics: batches validated event by event, nothing identifying stored, daily
roll-ups for admins, retention, and the configurable allowlist.

One behaviour per test, against a real syncd on a real socket; what is stored is read back
from the SQLite file itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from test_sharing import running, sign_up

from syncd.config import Settings
from syncd.services.analytics import MAX_BATCH_BYTES, MAX_EVENTS
from syncd.web.keys import SERVICES

EVENTS = "/v1/analytics/events"
SUMMARY = "/v1/analytics/summary"
JSON = {"Content-Type": "application/json"}
STORED_COLUMNS = {
    "id",
    "name",
    "ts",
    "day",
    "install_id",
    "app_version",
    "platform",
    "props",
    "received_at",
}

# --- helpers ------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event(**fields: Any) -> dict[str, Any]:
    """A valid event, with ``fields`` replacing or adding to its own."""
    body: dict[str, Any] = {
        "name": "app_open",
        "ts": iso(datetime.now(UTC)),
        "install_id": "install-0001",
        "app_version": "1.4.0",
        "platform": "ios",
        "props": {"screen": "home", "count": 3},
    }
    body.update(fields)
    return body


async def send(http: TestClient, events: list[Any], **kwargs: Any) -> Any:
    return await http.post(EVENTS, json={"events": events}, **kwargs)


async def accepted(http: TestClient, events: list[Any]) -> dict[str, Any]:
    resp = await send(http, events)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    assert body["rejected"] == 0, body
    return body


def rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """Read the server's SQLite file directly (read-only; the server keeps it open)."""
    with closing(sqlite3.connect(f"file:{settings.database_path}?mode=ro", uri=True)) as conn:
        return list(conn.execute(sql))


def days_ago(n: int) -> datetime:
    return datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=n)


async def summary(http: TestClient, query: str = "") -> dict[str, Any]:
    resp = await http.get(SUMMARY + query)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


# --- ingestion ----------------------------------------------------------------------------


async def test_a_batch_without_an_account_is_accepted(anon_client: TestClient) -> None:
    resp = await send(anon_client, [event(), event(name="pack_opened", platform="android")])
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "accepted": 2,
        "rejected": 0,
        "results": [{"index": 0, "ok": True}, {"index": 1, "ok": True}],
    }


async def test_epoch_milliseconds_are_a_valid_ts(anon_client: TestClient) -> None:
    await accepted(anon_client, [event(ts=int(time.time() * 1000))])


INVALID = {
    "name-not-allowed": (event(name="page_view"), "name is not an allowed event name"),
    "name-missing": ({k: v for k, v in event().items() if k != "name"}, "name is not an allowed"),
    "name-a-list": (event(name=["app_open"]), "name is not an allowed event name"),
    "name-an-object": (event(name={"app_open": 1}), "name is not an allowed event name"),
    "prop-key-not-allowed": (event(props={"email": "a@b.c"}), "props.email is not an allowed"),
    "prop-value-object": (event(props={"screen": {"a": 1}}), "props.screen must be a string"),
    "prop-value-list": (event(props={"screen": ["a"]}), "props.screen must be a string"),
    "props-not-object": (event(props=["screen"]), "props must be an object"),
    "too-many-props": (event(props={f"k{n}": 1 for n in range(21)}), "props must be an object"),
    "prop-text-too-long": (event(props={"screen": "s" * 201}), "props.screen must be at most"),
    "ts-not-a-time": (event(ts="yesterday"), "ts must be an ISO-8601 time"),
    "ts-bad-date": (event(ts="2026-13-45T00:00:00Z"), "ts must be an ISO-8601 time"),
    "ts-boolean": (event(ts=True), "ts must be an ISO-8601 time"),
    "ts-missing": (event(ts=None), "ts must be an ISO-8601 time"),
    "ts-too-old": (event(ts=iso(days_ago(31))), "ts must be within the last 30 days"),
    "ts-in-the-future": (event(ts=iso(days_ago(-2))), "ts must be within"),
    "install-id-short": (event(install_id="abc"), "install_id must be"),
    "install-id-characters": (event(install_id="install 0001"), "install_id must be"),
    "install-id-long": (event(install_id="i" * 65), "install_id must be"),
    "install-id-number": (event(install_id=12345678), "install_id must be"),
    "platform-unknown": (event(platform="windows"), "platform must be one of"),
    "platform-missing": (event(platform=None), "platform must be one of"),
    "app-version": (event(app_version="1.0 beta!"), "app_version must be"),
    "unknown-field": (event(ip="203.0.113.9"), "unknown fields: ip"),
    "not-an-object": ("app_open", "an event must be an object"),
}


@pytest.mark.parametrize(("bad", "reason"), INVALID.values(), ids=INVALID.keys())
async def test_each_event_is_checked_on_its_own_with_a_reason(
    anon_client: TestClient, settings: Settings, bad: Any, reason: str
) -> None:
    resp = await send(anon_client, [event(install_id="install-good-1"), bad, event()])
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["results"][0] == {"index": 0, "ok": True}
    assert body["results"][2] == {"index": 2, "ok": True}
    refused = body["results"][1]
    assert (refused["index"], refused["error"]) == (1, "invalid_event")
    assert reason in refused["reason"]
    assert rows(settings, "SELECT count(*) FROM analytics_events") == [(2,)]


async def test_a_batch_of_100_events_is_accepted(anon_client: TestClient) -> None:
    body = await accepted(anon_client, [event() for _ in range(MAX_EVENTS)])
    assert body["accepted"] == 100


async def test_a_batch_of_more_than_100_events_is_413(
    anon_client: TestClient, settings: Settings
) -> None:
    resp = await send(anon_client, [event() for _ in range(MAX_EVENTS + 1)])
    assert resp.status == 413
    assert (await resp.json())["error"] == "too_large"
    assert rows(settings, "SELECT count(*) FROM analytics_events") == [(0,)]


def _padded_body(size: int) -> bytes:
    """A JSON batch of exactly ``size`` bytes (whitespace padding is valid JSON)."""
    raw = orjson.dumps({"events": [event()]})
    assert len(raw) <= size
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


async def test_a_body_of_64_kib_is_read_and_one_byte_more_is_413(anon_client: TestClient) -> None:
    fits = await anon_client.post(EVENTS, data=_padded_body(MAX_BATCH_BYTES), headers=JSON)
    assert fits.status == 200, await fits.text()
    resp = await anon_client.post(EVENTS, data=_padded_body(MAX_BATCH_BYTES + 1), headers=JSON)
    assert resp.status == 413
    assert (await resp.json())["error"] == "too_large"


async def _pieces(raw: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    """The body as a chunked upload, handing control back to the loop between pieces."""
    for start in range(0, len(raw), size):
        yield raw[start : start + size]
        await asyncio.sleep(0)  # not a wait: lets the server read what has arrived so far


async def test_a_batch_arriving_in_pieces_is_read_whole(anon_client: TestClient) -> None:
    raw = orjson.dumps({"events": [event(props={"screen": "s" * 200}) for _ in range(100)]})
    assert 20_000 < len(raw) <= MAX_BATCH_BYTES
    resp = await anon_client.post(EVENTS, data=_pieces(raw), headers=JSON)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["accepted"] == 100


async def test_a_chunked_body_over_64_kib_is_413(anon_client: TestClient) -> None:
    resp = await anon_client.post(
        EVENTS, data=_pieces(_padded_body(MAX_BATCH_BYTES + 1)), headers=JSON
    )
    assert resp.status == 413


@pytest.mark.parametrize(
    "body", [b"{not json", b"\xff\xfe", b""], ids=["broken", "not-utf8", "empty"]
)
async def test_a_body_that_is_not_json_is_400(anon_client: TestClient, body: bytes) -> None:
    resp = await anon_client.post(EVENTS, data=body, headers=JSON)
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"


@pytest.mark.parametrize(
    "body", [[], {"events": {}}, {"event": []}, "events"], ids=["list", "map", "key", "string"]
)
async def test_json_that_is_not_a_batch_is_400(anon_client: TestClient, body: Any) -> None:
    resp = await anon_client.post(EVENTS, json=body)
    assert resp.status == 400


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_declared_json_is_415(
    anon_client: TestClient, content_type: str
) -> None:
    raw = orjson.dumps({"events": [event()]})
    resp = await anon_client.post(EVENTS, data=raw, headers={"Content-Type": content_type})
    assert resp.status == 415


# --- nothing identifying is kept ----------------------------------------------------------


async def test_nothing_stored_holds_an_address_user_agent_or_account(
    anon_client: TestClient, settings: Settings
) -> None:
    who = await sign_up(anon_client)
    headers = {
        "Authorization": f"Bearer {who.token}",
        "User-Agent": "PromptApp/9.9 (ua-marker-4417)",
        "X-Forwarded-For": "203.0.113.77",
        "X-Real-IP": "203.0.113.78",
    }
    resp = await send(anon_client, [event(), event(name="pack_opened")], headers=headers)
    assert resp.status == 200, await resp.text()
    columns = {r[1] for r in rows(settings, "PRAGMA table_info(analytics_events)")}
    assert columns == STORED_COLUMNS
    stored = rows(settings, "SELECT * FROM analytics_events") + rows(
        settings, "SELECT * FROM analytics_daily"
    )
    assert len(stored) == 4
    text = repr(stored)
    markers = [who.id, who.username, who.token, "ua-marker-4417", "PromptApp", "203.0.113.7"]
    for marker in [*markers, "127.0.0.1"]:
        assert marker not in text, marker


# --- daily roll-ups -----------------------------------------------------------------------


@pytest.fixture
def mixed_days() -> list[dict[str, Any]]:
    """Events over three days, two names, two platforms, two app versions."""
    return [
        event(ts=iso(days_ago(2))),
        event(ts=iso(days_ago(2)), platform="android"),
        event(ts=iso(days_ago(2)), platform="android"),
        event(ts=iso(days_ago(1)), app_version="1.5.0"),
        event(ts=iso(days_ago(1)), name="pack_opened"),
        event(ts=iso(days_ago(1)), name="pack_opened"),
        event(ts=iso(days_ago(0))),
    ]


def day(n: int) -> str:
    return days_ago(n).date().isoformat()


async def test_the_summary_counts_events_per_day_name_platform_and_version(
    anon_client: TestClient, client: TestClient, mixed_days: list[dict[str, Any]]
) -> None:
    await accepted(anon_client, mixed_days)
    body = await summary(client, f"?from={day(2)}&to={day(0)}")
    assert body["from"] == day(2)
    assert body["to"] == day(0)
    assert body["items"] == [
        {
            "day": day(2),
            "name": "app_open",
            "platform": "android",
            "app_version": "1.4.0",
            "count": 2,
        },
        {"day": day(2), "name": "app_open", "platform": "ios", "app_version": "1.4.0", "count": 1},
        {"day": day(1), "name": "app_open", "platform": "ios", "app_version": "1.5.0", "count": 1},
        {
            "day": day(1),
            "name": "pack_opened",
            "platform": "ios",
            "app_version": "1.4.0",
            "count": 2,
        },
        {"day": day(0), "name": "app_open", "platform": "ios", "app_version": "1.4.0", "count": 1},
    ]


async def test_the_summary_adds_up_batches(anon_client: TestClient, client: TestClient) -> None:
    for _ in range(3):
        await accepted(anon_client, [event(), event()])
    items = (await summary(client))["items"]
    assert [i["count"] for i in items] == [6]


async def test_the_summary_filters_by_name(
    anon_client: TestClient, client: TestClient, mixed_days: list[dict[str, Any]]
) -> None:
    await accepted(anon_client, mixed_days)
    items = (await summary(client, "?name=pack_opened"))["items"]
    assert [(i["day"], i["name"], i["count"]) for i in items] == [(day(1), "pack_opened", 2)]


async def test_the_summary_keeps_to_its_from_and_to_days(
    anon_client: TestClient, client: TestClient, mixed_days: list[dict[str, Any]]
) -> None:
    await accepted(anon_client, mixed_days)
    only_middle = (await summary(client, f"?from={day(1)}&to={day(1)}"))["items"]
    assert {i["day"] for i in only_middle} == {day(1)}
    assert sum(i["count"] for i in only_middle) == 3
    from_middle = (await summary(client, f"?from={day(1)}"))["items"]
    assert {i["day"] for i in from_middle} == {day(1), day(0)}
    to_middle = (await summary(client, f"?to={day(1)}"))["items"]
    assert {i["day"] for i in to_middle} == {day(2), day(1)}


async def test_the_summary_defaults_to_the_last_30_days(client: TestClient) -> None:
    body = await summary(client)
    today = datetime.now(UTC).date()
    assert (body["from"], body["to"]) == (str(today - timedelta(days=29)), str(today))
    assert body["items"] == []


@pytest.mark.parametrize(
    "query",
    [
        "?from=yesterday",
        "?to=2026-02-30",
        "?from=2026/01/01",
        f"?from={date.today()}&to=2020-01-01",
    ],
    ids=["word", "no-such-day", "slashes", "from-after-to"],
)
async def test_bad_summary_dates_are_400(client: TestClient, query: str) -> None:
    resp = await client.get(SUMMARY + query)
    assert resp.status == 400


async def test_the_summary_is_for_admins_only(anon_client: TestClient, client: TestClient) -> None:
    assert (await anon_client.get(SUMMARY)).status == 401
    who = await sign_up(anon_client)
    assert (
        await anon_client.get(SUMMARY, headers={"Authorization": f"Bearer {who.token}"})
    ).status == 403
    moderator = await sign_up(anon_client)
    granted = await client.put(
        f"/v1/admin/accounts/{moderator.id}/roles", json={"roles": ["moderator"]}
    )
    assert granted.status == 200
    auth = {"Authorization": f"Bearer {moderator.token}"}
    assert (await anon_client.get(SUMMARY, headers=auth)).status == 403


# --- retention ----------------------------------------------------------------------------


async def test_purge_deletes_events_past_the_retention_window_and_keeps_daily_counts(
    anon_client: TestClient, client: TestClient, app: web.Application, settings: Settings
) -> None:
    await accepted(anon_client, [event(), event(), event(name="pack_opened")])
    before = (await summary(client))["items"]
    removed = await app[SERVICES].analytics.purge(now=time.time() + 91 * 86400)
    assert removed == 3
    assert rows(settings, "SELECT count(*) FROM analytics_events") == [(0,)]
    assert (await summary(client))["items"] == before


async def test_purge_keeps_events_inside_the_retention_window(
    anon_client: TestClient, app: web.Application, settings: Settings
) -> None:
    await accepted(anon_client, [event(), event()])
    assert await app[SERVICES].analytics.purge(now=time.time() + 89 * 86400) == 0
    assert rows(settings, "SELECT count(*) FROM analytics_events") == [(2,)]


async def test_the_retention_window_is_configurable(settings: Settings) -> None:
    async with running(dataclasses.replace(settings, analytics_retention_days=7)) as http:
        await accepted(http, [event()])
        assert http.app is not None
        analytics = http.app[SERVICES].analytics
        assert await analytics.purge(now=time.time() + 6 * 86400) == 0
        assert await analytics.purge(now=time.time() + 8 * 86400) == 1


# --- the allowlist ------------------------------------------------------------------------


async def test_the_allowed_event_names_come_from_the_settings(settings: Settings) -> None:
    custom = dataclasses.replace(settings, analytics_events=("custom_event",))
    async with running(custom) as http:
        body = await (await send(http, [event(name="custom_event"), event(name="app_open")])).json()
    assert body["results"][0] == {"index": 0, "ok": True}
    assert "name is not an allowed event name" in body["results"][1]["reason"]


async def test_the_allowed_property_keys_come_from_the_settings(settings: Settings) -> None:
    custom = dataclasses.replace(settings, analytics_props=("level",))
    async with running(custom) as http:
        body = await (
            await send(http, [event(props={"level": 3}), event(props={"screen": "home"})])
        ).json()
    assert body["results"][0] == {"index": 0, "ok": True}
    assert "props.screen is not an allowed property" in body["results"][1]["reason"]


# --- the ingestion limit ------------------------------------------------------------------


async def test_ingestion_is_rate_limited_per_address(settings: Settings) -> None:
    limited = dataclasses.replace(settings, analytics_rate_limit="2/minute", trust_proxy=True)
    async with running(limited) as http:
        first = {"X-Forwarded-For": "198.51.100.20"}
        for _ in range(2):
            assert (await send(http, [event()], headers=first)).status == 200
        resp = await send(http, [event()], headers=first)
        assert resp.status == 429
        assert 0 < int(resp.headers["Retry-After"]) <= 60
        second = {"X-Forwarded-For": "198.51.100.21"}
        assert (await send(http, [event()], headers=second)).status == 200
        assert rows(limited, "SELECT count(*) FROM analytics_events") == [(3,)]
