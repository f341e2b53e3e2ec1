"""/{db}/_local/{id}: non-replicated documents (replication checkpoints) with revs 0-1, 0-2, ..."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from yarl import URL


async def put_local(client: TestClient, db: str, name: str, body: dict[str, Any]) -> str:
    resp = await client.put(f"/{db}/_local/{name}", json=body)
    assert resp.status == 201, await resp.text()
    rev: str = (await resp.json())["rev"]
    return rev


async def get_local(client: TestClient, db: str, name: str) -> tuple[int, dict[str, Any]]:
    resp = await client.get(f"/{db}/_local/{name}")
    return resp.status, await resp.json()


async def test_put_new_local_doc_gets_rev_0_1(client: TestClient, db: str) -> None:
    resp = await client.put(f"/{db}/_local/cp", json={"seq": 1})
    assert resp.status == 201
    assert await resp.json() == {"ok": True, "id": "_local/cp", "rev": "0-1"}
    assert resp.headers["ETag"] == '"0-1"'
    assert await get_local(client, db, "cp") == (
        200,
        {"_id": "_local/cp", "_rev": "0-1", "seq": 1},
    )


async def test_get_local_doc_has_etag(client: TestClient, db: str) -> None:
    await put_local(client, db, "cp", {"seq": 1})
    resp = await client.get(f"/{db}/_local/cp")
    assert resp.headers["ETag"] == '"0-1"'


async def test_updates_count_revs_up(client: TestClient, db: str) -> None:
    await put_local(client, db, "cp", {"seq": 1})
    assert await put_local(client, db, "cp", {"_rev": "0-1", "seq": 2}) == "0-2"
    assert await put_local(client, db, "cp", {"_rev": "0-2", "seq": 3}) == "0-3"
    assert await get_local(client, db, "cp") == (
        200,
        {"_id": "_local/cp", "_rev": "0-3", "seq": 3},
    )


async def test_update_with_rev_query_parameter(client: TestClient, db: str) -> None:
    await put_local(client, db, "cp", {"seq": 1})
    resp = await client.put(f"/{db}/_local/cp", params={"rev": "0-1"}, json={"seq": 2})
    assert resp.status == 201
    assert (await resp.json())["rev"] == "0-2"
    assert (await get_local(client, db, "cp"))[1]["seq"] == 2


async def test_update_with_wrong_rev_is_409(client: TestClient, db: str) -> None:
    await put_local(client, db, "cp", {"seq": 1})
    await put_local(client, db, "cp", {"_rev": "0-1", "seq": 2})
    resp = await client.put(f"/{db}/_local/cp", json={"_rev": "0-1", "seq": "stale"})
    assert resp.status == 409
    assert (await resp.json())["error"] == "conflict"
    assert await get_local(client, db, "cp") == (
        200,
        {"_id": "_local/cp", "_rev": "0-2", "seq": 2},
    )


async def test_update_without_rev_is_409(client: TestClient, db: str) -> None:
    await put_local(client, db, "cp", {"seq": 1})
    resp = await client.put(f"/{db}/_local/cp", json={"seq": 2})
    assert resp.status == 409
    assert (await get_local(client, db, "cp"))[1]["seq"] == 1


async def test_malformed_local_rev_is_400(client: TestClient, db: str) -> None:
    await put_local(client, db, "cp", {"seq": 1})
    for rev in ("1-abc", "0-x", "zero"):
        resp = await client.put(f"/{db}/_local/cp", json={"_rev": rev, "seq": 2})
        assert resp.status == 400, rev
        assert (await resp.json())["error"] == "bad_request"
    assert (await get_local(client, db, "cp"))[1]["_rev"] == "0-1"


async def test_get_missing_local_doc_is_404(client: TestClient, db: str) -> None:
    status, body = await get_local(client, db, "nope")
    assert status == 404
    assert (body["error"], body["reason"]) == ("not_found", "missing")


async def test_local_doc_of_missing_database_is_404(client: TestClient) -> None:
    status, body = await get_local(client, "no-such-db", "cp")
    assert status == 404
    assert body["reason"] == "Database does not exist."


async def test_delete_with_rev_removes_it(client: TestClient, db: str) -> None:
    await put_local(client, db, "cp", {"seq": 1})
    await put_local(client, db, "cp", {"_rev": "0-1", "seq": 2})
    resp = await client.delete(f"/{db}/_local/cp", params={"rev": "0-2"})
    assert resp.status == 200
    assert await resp.json() == {"ok": True, "id": "_local/cp", "rev": "0-0"}
    status, body = await get_local(client, db, "cp")
    assert (status, body["error"]) == (404, "not_found")


async def test_delete_with_wrong_rev_is_409(client: TestClient, db: str) -> None:
    await put_local(client, db, "cp", {"seq": 1})
    await put_local(client, db, "cp", {"_rev": "0-1", "seq": 2})
    resp = await client.delete(f"/{db}/_local/cp", params={"rev": "0-1"})
    assert resp.status == 409
    assert (await get_local(client, db, "cp"))[1]["_rev"] == "0-2"


async def test_delete_missing_local_doc_is_404(client: TestClient, db: str) -> None:
    resp = await client.delete(f"/{db}/_local/nope", params={"rev": "0-1"})
    assert resp.status == 404


async def test_put_deleted_true_removes_it(client: TestClient, db: str) -> None:
    await put_local(client, db, "cp", {"seq": 1})
    resp = await client.put(f"/{db}/_local/cp", json={"_rev": "0-1", "_deleted": True})
    assert resp.status == 201
    assert (await get_local(client, db, "cp"))[0] == 404


async def test_recreated_after_delete_starts_again_at_0_1(client: TestClient, db: str) -> None:
    await put_local(client, db, "cp", {"seq": 1})
    await client.delete(f"/{db}/_local/cp", params={"rev": "0-1"})
    assert await put_local(client, db, "cp", {"seq": "new"}) == "0-1"
    assert (await get_local(client, db, "cp"))[1] == {
        "_id": "_local/cp",
        "_rev": "0-1",
        "seq": "new",
    }


async def test_url_encoded_local_id(client: TestClient, db: str) -> None:
    # PouchDB sends checkpoint ids as "_local/" + encodeURIComponent(id).
    url = URL(f"/{db}/_local/abc%3D%2Fdef", encoded=True)
    resp = await client.put(url, json={"seq": 1})
    assert resp.status == 201
    assert (await resp.json())["id"] == "_local/abc=/def"
    resp = await client.get(url)
    assert resp.status == 200
    assert await resp.json() == {"_id": "_local/abc=/def", "_rev": "0-1", "seq": 1}


async def test_equal_sign_encoded_or_not_names_the_same_doc(client: TestClient, db: str) -> None:
    resp = await client.put(URL(f"/{db}/_local/abc%3D", encoded=True), json={"seq": 1})
    assert (await resp.json())["id"] == "_local/abc="
    resp = await client.get(URL(f"/{db}/_local/abc=", encoded=True))
    assert (await resp.json())["_id"] == "_local/abc="


async def test_local_body_keeps_nested_json(client: TestClient, db: str) -> None:
    body = {"session_id": "s1", "history": [{"last_seq": "5", "session_id": "s1"}], "n": None}
    await put_local(client, db, "cp", body)
    assert (await get_local(client, db, "cp"))[1] == {"_id": "_local/cp", "_rev": "0-1", **body}


async def test_local_docs_never_appear_in_all_docs_or_counts(client: TestClient, db: str) -> None:
    await put_local(client, db, "cp", {"seq": 1})
    await put_local(client, db, "other", {"seq": 1})
    resp = await client.get(f"/{db}/_all_docs")
    assert await resp.json() == {"total_rows": 0, "offset": 0, "rows": []}
    resp = await client.get(f"/{db}/_all_docs", params={"startkey": '"_local/"'})
    assert (await resp.json())["rows"] == []
    info = await (await client.get(f"/{db}")).json()
    assert (info["doc_count"], info["doc_del_count"], info["update_seq"]) == (0, 0, 0)


async def test_local_docs_are_per_database(client: TestClient, db: str) -> None:
    await client.put("/other-db")
    await put_local(client, db, "cp", {"seq": 1})
    assert (await get_local(client, "other-db", "cp"))[0] == 404


async def test_new_local_doc_that_names_a_rev_counts_on_from_it(
    client: TestClient, db: str
) -> None:
    # CouchDB's couch_db_updater: the stored rev is the given 0-N plus one.
    resp = await client.put(f"/{db}/_local/cp", json={"_rev": "0-5", "n": 1})
    assert resp.status == 201
    assert (await resp.json())["rev"] == "0-6"


async def test_unknown_special_member_is_refused_and_nothing_stored(
    client: TestClient, db: str
) -> None:
    resp = await client.put(f"/{db}/_local/cp", json={"seq": 1, "_foo": 2})
    assert resp.status == 400
    error = await resp.json()
    assert (error["error"], error["reason"]) == (
        "doc_validation",
        "Bad special document member: _foo",
    )
    assert (await get_local(client, db, "cp"))[0] == 404


async def test_read_only_special_members_are_dropped(client: TestClient, db: str) -> None:
    await put_local(client, db, "cp", {"seq": 1, "_conflicts": [], "_id": "_local/other"})
    assert await get_local(client, db, "cp") == (200, {"_id": "_local/cp", "_rev": "0-1", "seq": 1})
