"""The server starts on its defaults and answers the welcome route."""

from aiohttp.test_utils import TestClient


async def test_welcome_names_couchdb_and_vendor(client: TestClient) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    body = await resp.json()
    assert body["couchdb"] == "Welcome"
    assert body["vendor"]["name"] == "syncd"
    assert len(body["uuid"]) == 32


async def test_put_then_get_document(client: TestClient, db: str) -> None:
    resp = await client.put(f"/{db}/doc1", json={"a": 1})
    assert resp.status == 201
    rev = (await resp.json())["rev"]
    resp = await client.get(f"/{db}/doc1")
    assert await resp.json() == {"_id": "doc1", "_rev": rev, "a": 1}
