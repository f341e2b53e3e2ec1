"""Server-level routes: the welcome object, health, database list and uuids."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from syncd import __version__
from syncd.app import create_app
from syncd.config import Settings

HEX32 = re.compile(r"^[0-9a-f]{32}$")


async def _welcome_uuid(settings: Settings) -> str:
    """Start an app on ``settings``, read ``GET /``'s uuid, and stop the app again."""
    async with TestClient(TestServer(create_app(settings))) as client:
        resp = await client.get("/")
        assert resp.status == 200
        uuid: str = (await resp.json())["uuid"]
        return uuid


async def test_welcome_has_couchdb_version_uuid_and_vendor(client: TestClient) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert body["couchdb"] == "Welcome"
    assert re.match(r"^\d+\.\d+\.\d+$", body["version"])
    assert int(body["version"].split(".")[0]) >= 2  # PouchDB treats 2+ as "no _bulk_get gaps"
    assert HEX32.match(body["uuid"])
    assert body["vendor"] == {"name": "syncd", "version": __version__}


async def test_welcome_uuid_is_the_same_on_every_request(client: TestClient) -> None:
    first = await (await client.get("/")).json()
    second = await (await client.get("/")).json()
    assert first["uuid"] == second["uuid"]


async def test_uuid_survives_a_restart_on_the_same_data_dir(settings: Settings) -> None:
    before = await _welcome_uuid(settings)
    after = await _welcome_uuid(settings)
    assert after == before


async def test_uuid_differs_between_data_dirs(settings: Settings, tmp_path: Path) -> None:
    other = dataclasses.replace(settings, data_dir=tmp_path / "other")
    assert await _welcome_uuid(settings) != await _welcome_uuid(other)


async def test_two_apps_on_one_data_dir_report_one_uuid(settings: Settings) -> None:
    async with (
        TestClient(TestServer(create_app(settings))) as one,
        TestClient(TestServer(create_app(settings))) as two,
    ):
        a = (await (await one.get("/")).json())["uuid"]
        b = (await (await two.get("/")).json())["uuid"]
    assert a == b


async def test_up_reports_ok(client: TestClient) -> None:
    resp = await client.get("/_up")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"


async def test_head_up_answers_without_a_body(client: TestClient) -> None:
    resp = await client.head("/_up")
    assert resp.status == 200
    assert await resp.read() == b""


async def test_all_dbs_is_empty_on_a_fresh_server(client: TestClient) -> None:
    resp = await client.get("/_all_dbs")
    assert resp.status == 200
    assert await resp.json() == []


async def test_all_dbs_lists_created_databases_sorted(client: TestClient) -> None:
    for name in ("zeta", "alpha", "mid-1"):
        assert (await client.put(f"/{name}")).status == 201
    resp = await client.get("/_all_dbs")
    assert await resp.json() == ["alpha", "mid-1", "zeta"]


async def test_all_dbs_forgets_deleted_databases(client: TestClient) -> None:
    await client.put("/keep")
    await client.put("/gone")
    assert (await client.delete("/gone")).status == 200
    assert await (await client.get("/_all_dbs")).json() == ["keep"]


async def test_uuids_default_to_one(client: TestClient) -> None:
    resp = await client.get("/_uuids")
    assert resp.status == 200
    body = await resp.json()
    assert list(body) == ["uuids"]
    assert len(body["uuids"]) == 1
    assert HEX32.match(body["uuids"][0])


async def test_uuids_count_returns_that_many_distinct_ids(client: TestClient) -> None:
    resp = await client.get("/_uuids", params={"count": "25"})
    assert resp.status == 200
    uuids = (await resp.json())["uuids"]
    assert len(uuids) == 25
    assert len(set(uuids)) == 25
    assert all(HEX32.match(u) for u in uuids)


async def test_uuids_are_not_cached(client: TestClient) -> None:
    resp = await client.get("/_uuids")
    assert "no-cache" in resp.headers["Cache-Control"]


async def test_uuids_at_the_maximum_count_is_allowed(client: TestClient) -> None:
    resp = await client.get("/_uuids", params={"count": "1000"})
    assert resp.status == 200
    assert len((await resp.json())["uuids"]) == 1000


async def test_uuids_too_many_is_bad_request(client: TestClient) -> None:
    resp = await client.get("/_uuids", params={"count": "1001"})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request"
    assert "count" in body["reason"]


async def test_uuids_non_numeric_count_is_bad_request(client: TestClient) -> None:
    resp = await client.get("/_uuids", params={"count": "lots"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"


async def test_uuids_zero_or_negative_count_is_bad_request(client: TestClient) -> None:
    for count in ("0", "-3"):
        resp = await client.get("/_uuids", params={"count": count})
        assert resp.status == 400, count
        assert (await resp.json())["error"] == "bad_request"
