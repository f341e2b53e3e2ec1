"""An unmodified PouchDB syncs as an ordinary account: HTTP Basic and the AuthSession cookie.

``tests/interop/auth_replication.js`` pushes and pulls the account's own ``userdb-<id>`` with
credentials in the URL and with a cookie from ``POST /_session``, then tries another account's
database, which must fail without writing anything. pytest checks syncd's side as the admin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import run_node

pytestmark = pytest.mark.interop

PASSWORD = "pouch password 1"


async def _json(client: TestClient, path: str) -> Any:
    resp = await client.get(path)
    assert resp.status == 200, (path, await resp.text())
    return await resp.json()


async def _state(client: TestClient, db: str) -> dict[str, Any]:
    """What the admin sees of a database: info, every document and the changes feed."""
    info = await _json(client, f"/{db}")
    docs = await _json(client, f"/{db}/_all_docs?include_docs=true")
    changes = await _json(client, f"/{db}/_changes?style=all_docs")
    return {
        "doc_count": info["doc_count"],
        "update_seq": info["update_seq"],
        "docs": docs["rows"],
        "changes": changes["results"],
    }


async def test_pouchdb_replicates_its_own_database_with_basic_and_cookie_auth_only(
    node_modules: Path, server: TestServer, client: TestClient, anon_client: TestClient
) -> None:
    name = "pouch-user"
    resp = await anon_client.post(
        "/v1/auth/register", json={"username": name, "password": PASSWORD}
    )
    assert resp.status == 201, await resp.text()
    own_db = (await resp.json())["account"]["db"]

    other = await (await anon_client.post("/v1/auth/anonymous")).json()
    other_db = other["account"]["db"]
    resp = await anon_client.put(
        f"/{other_db}/private",
        json={"secret": "theirs"},
        headers={"Authorization": "Bearer " + other["access_token"]},
    )
    assert resp.status == 201
    before = await _state(client, other_db)

    docs = [{"_id": f"card-{i:03}", "text": f"card number {i}", "n": i} for i in range(40)]
    url = str(server.make_url("")).rstrip("/")
    params = {"name": name, "password": PASSWORD, "db": own_db, "other_db": other_db, "docs": docs}
    out = await run_node("auth_replication.js", url, stdin=json.dumps(params).encode())

    # 1. Basic credentials in the URL: push half, pull it back
    basic = out["basic"]
    assert basic["push"]["ok"] and basic["push"]["docs_written"] == 20, basic["push"]
    assert basic["pull"]["ok"] and basic["pull"]["docs_written"] == 20, basic["pull"]
    assert sorted(basic["copy"]) == [d["_id"] for d in docs[:20]]

    # 2. the AuthSession cookie: push the other half, pull everything
    cookie = out["cookie"]
    assert cookie["push"]["ok"] and cookie["push"]["docs_written"] == 20, cookie["push"]
    assert cookie["pull"]["ok"] and cookie["pull"]["docs_written"] == 40, cookie["pull"]
    assert sorted(cookie["copy"]) == [d["_id"] for d in docs]

    stored = await _json(client, f"/{own_db}/_all_docs?include_docs=true")
    by_id = {row["id"]: row["doc"] for row in stored["rows"]}
    assert set(by_id) == {d["_id"] for d in docs}
    for doc in docs:
        assert {k: v for k, v in by_id[doc["_id"]].items() if k != "_rev"} == doc
        assert by_id[doc["_id"]]["_rev"] == cookie["copy"][doc["_id"]]["rev"]

    # 3. another account's database: refused every way, nothing written
    denied = out["denied"]
    for how in ("basic_push", "basic_pull", "cookie_push", "cookie_pull"):
        assert denied[how]["failed"], (how, denied[how])
        assert denied[how]["status"] == 403, (how, denied[how])
    assert denied["anonymous_push"]["failed"]
    assert denied["anonymous_push"]["status"] == 401, denied["anonymous_push"]
    assert await _state(client, other_db) == before
    assert (await client.get(f"/{other_db}/planted")).status == 404
