"""Database routes: create, info, HEAD, delete, _revs_limit, _compact, _ensure_full_commit."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

JSON = {"Content-Type": "application/json"}


async def _info(client: TestClient, db: str) -> dict[str, Any]:
    resp = await client.get(f"/{db}")
    assert resp.status == 200, await resp.text()
    info: dict[str, Any] = await resp.json()
    return info


async def _put_doc(client: TestClient, db: str, doc_id: str, body: dict[str, Any]) -> str:
    resp = await client.put(f"/{db}/{doc_id}", json=body)
    assert resp.status == 201, await resp.text()
    rev: str = (await resp.json())["rev"]
    return rev


# create ------------------------------------------------------------------------------------


async def test_put_creates_database_with_201(client: TestClient) -> None:
    resp = await client.put("/fresh")
    assert resp.status == 201
    assert await resp.json() == {"ok": True}
    assert "/fresh" in resp.headers["Location"]
    assert "fresh" in await (await client.get("/_all_dbs")).json()


async def test_put_existing_database_is_412_file_exists(client: TestClient, db: str) -> None:
    await _put_doc(client, db, "keep", {"a": 1})
    resp = await client.put(f"/{db}")
    assert resp.status == 412
    body = await resp.json()
    assert body["error"] == "file_exists"
    assert body["reason"] == "The database could not be created, the file already exists."
    info = await _info(client, db)
    assert info["doc_count"] == 1  # the existing database was left alone


@pytest.mark.parametrize("name", ["Upper", "UPPER", "9lives", "has space", "dot.name"])
async def test_put_illegal_name_is_400_illegal_database_name(client: TestClient, name: str) -> None:
    resp = await client.put(f"/{name}")
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "illegal_database_name"
    assert name in body["reason"]
    assert await (await client.get("/_all_dbs")).json() == []


async def test_put_name_with_leading_underscore_is_400_illegal_database_name(
    client: TestClient,
) -> None:
    resp = await client.put("/_private")
    assert resp.status == 400
    assert (await resp.json())["error"] == "illegal_database_name"
    assert await (await client.get("/_all_dbs")).json() == []


async def test_put_on_a_server_endpoint_is_405_not_a_database(client: TestClient) -> None:
    resp = await client.put("/_up")
    assert resp.status == 405
    assert (await resp.json())["error"] == "method_not_allowed"
    assert await (await client.get("/_all_dbs")).json() == []


async def test_put_name_with_allowed_special_characters(client: TestClient) -> None:
    resp = await client.put("/a-b_c$d(e)f+g")
    assert resp.status == 201
    assert await (await client.get("/_all_dbs")).json() == ["a-b_c$d(e)f+g"]


async def test_put_with_trailing_slash_creates_database(client: TestClient) -> None:
    resp = await client.put("/slashed/")
    assert resp.status == 201
    assert await resp.json() == {"ok": True}
    assert (await _info(client, "slashed"))["db_name"] == "slashed"


async def test_get_with_trailing_slash_returns_info(client: TestClient, db: str) -> None:
    resp = await client.get(f"/{db}/")
    assert resp.status == 200
    assert (await resp.json())["db_name"] == db


# info --------------------------------------------------------------------------------------


async def test_info_of_a_new_database(client: TestClient, db: str) -> None:
    info = await _info(client, db)
    assert info["db_name"] == db
    assert info["doc_count"] == 0
    assert info["doc_del_count"] == 0
    assert info["update_seq"] == 0
    assert info["instance_start_time"] == "0"
    assert set(info["sizes"]) == {"file", "external", "active"}
    assert all(isinstance(v, int) and v >= 0 for v in info["sizes"].values())
    assert info["purge_seq"] == 0
    assert info["compact_running"] is False


async def test_info_counts_live_and_deleted_documents(client: TestClient, db: str) -> None:
    await _put_doc(client, db, "a", {"n": 1})
    rev_b = await _put_doc(client, db, "b", {"n": 2})
    await _put_doc(client, db, "c", {"n": 3})
    resp = await client.delete(f"/{db}/b", params={"rev": rev_b})
    assert resp.status == 200
    info = await _info(client, db)
    assert info["doc_count"] == 2
    assert info["doc_del_count"] == 1
    assert info["update_seq"] == 4


async def test_info_sizes_grow_with_content(client: TestClient, db: str) -> None:
    empty = (await _info(client, db))["sizes"]
    await _put_doc(client, db, "big", {"text": "x" * 5000})
    sizes = (await _info(client, db))["sizes"]
    assert sizes["external"] >= empty["external"] + 5000
    assert sizes["file"] > 0


async def test_info_of_missing_database_is_404(client: TestClient) -> None:
    resp = await client.get("/nothing-here")
    assert resp.status == 404
    body = await resp.json()
    assert body["error"] == "not_found"
    assert body["reason"] == "Database does not exist."


async def test_head_existing_database_is_200_without_body(client: TestClient, db: str) -> None:
    resp = await client.head(f"/{db}")
    assert resp.status == 200
    assert await resp.read() == b""


async def test_head_missing_database_is_404_without_body(client: TestClient) -> None:
    resp = await client.head("/nothing-here")
    assert resp.status == 404
    assert await resp.read() == b""


# delete ------------------------------------------------------------------------------------


async def test_delete_database_then_it_is_gone(client: TestClient, db: str) -> None:
    await _put_doc(client, db, "a", {"n": 1})
    resp = await client.delete(f"/{db}")
    assert resp.status == 200
    assert await resp.json() == {"ok": True}
    assert (await client.get(f"/{db}")).status == 404
    assert (await client.get(f"/{db}/a")).status == 404
    assert db not in await (await client.get("/_all_dbs")).json()


async def test_delete_missing_database_is_404(client: TestClient) -> None:
    resp = await client.delete("/nothing-here")
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


async def test_delete_database_with_a_rev_is_400_and_keeps_it(client: TestClient, db: str) -> None:
    rev = await _put_doc(client, db, "doc", {"a": 1})
    # What a document DELETE with an empty id looks like: CouchDB refuses it.
    resp = await client.delete(f"/{db}", params={"rev": rev})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request"
    assert "rev" in body["reason"]
    assert (await _info(client, db))["doc_count"] == 1
    resp = await client.delete(f"/{db}/", params={"rev": rev})
    assert resp.status == 400
    assert (await _info(client, db))["doc_count"] == 1


async def test_recreated_database_starts_empty(client: TestClient, db: str) -> None:
    await _put_doc(client, db, "a", {"n": 1})
    await client.put(f"/{db}/_local/x", json={"n": 1})
    assert (await client.delete(f"/{db}")).status == 200
    assert (await client.put(f"/{db}")).status == 201
    info = await _info(client, db)
    assert (info["doc_count"], info["doc_del_count"], info["update_seq"]) == (0, 0, 0)
    assert (await client.get(f"/{db}/a")).status == 404
    assert (await client.get(f"/{db}/_local/x")).status == 404


# _revs_limit ---------------------------------------------------------------------------------


async def test_revs_limit_defaults_to_1000(client: TestClient, db: str) -> None:
    resp = await client.get(f"/{db}/_revs_limit")
    assert resp.status == 200
    assert await resp.json() == 1000


async def test_put_revs_limit_is_stored(client: TestClient, db: str) -> None:
    resp = await client.put(f"/{db}/_revs_limit", data=b"5", headers=JSON)
    assert resp.status == 200
    assert await resp.json() == {"ok": True}
    assert await (await client.get(f"/{db}/_revs_limit")).json() == 5


async def test_put_revs_limit_takes_the_largest_64_bit_integer(client: TestClient, db: str) -> None:
    resp = await client.put(f"/{db}/_revs_limit", data=b"9223372036854775807", headers=JSON)
    assert resp.status == 200
    assert await (await client.get(f"/{db}/_revs_limit")).json() == 2**63 - 1
    resp = await client.put(f"/{db}/doc", json={"n": 1})
    assert resp.status == 201  # writes stem to it without trouble


@pytest.mark.parametrize(
    "body", [b"0", b"-1", b'"5"', b"1.5", b"{}", b"nope", b"9223372036854775808"]
)
async def test_put_revs_limit_rejects_non_positive_integers(
    client: TestClient, db: str, body: bytes
) -> None:
    resp = await client.put(f"/{db}/_revs_limit", data=body, headers=JSON)
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"
    assert await (await client.get(f"/{db}/_revs_limit")).json() == 1000


async def test_revs_limit_of_missing_database_is_404(client: TestClient) -> None:
    assert (await client.get("/nothing-here/_revs_limit")).status == 404
    resp = await client.put("/nothing-here/_revs_limit", data=b"5", headers=JSON)
    assert resp.status == 404


# _compact ----------------------------------------------------------------------------------


async def test_compact_answers_202_ok(client: TestClient, db: str) -> None:
    resp = await client.post(f"/{db}/_compact", headers=JSON)
    assert resp.status == 202
    assert await resp.json() == {"ok": True}


async def test_compact_drops_bodies_of_non_leaf_revisions(client: TestClient, db: str) -> None:
    rev1 = await _put_doc(client, db, "doc", {"v": 1})
    rev2 = await _put_doc(client, db, "doc", {"v": 2, "_rev": rev1})
    assert (await client.get(f"/{db}/doc", params={"rev": rev1})).status == 200

    assert (await client.post(f"/{db}/_compact", headers=JSON)).status == 202

    old = await client.get(f"/{db}/doc", params={"rev": rev1})
    assert old.status == 404
    assert (await old.json())["error"] == "not_found"
    leaf = await client.get(f"/{db}/doc", params={"rev": rev2})
    assert leaf.status == 200
    assert await leaf.json() == {"_id": "doc", "_rev": rev2, "v": 2}


async def test_compact_keeps_history_and_marks_compacted_revs_missing(
    client: TestClient, db: str
) -> None:
    rev1 = await _put_doc(client, db, "doc", {"v": 1})
    rev2 = await _put_doc(client, db, "doc", {"v": 2, "_rev": rev1})
    await client.post(f"/{db}/_compact", headers=JSON)
    resp = await client.get(f"/{db}/doc", params={"revs": "true", "revs_info": "true"})
    body = await resp.json()
    assert body["_revisions"] == {"start": 2, "ids": [rev2.split("-")[1], rev1.split("-")[1]]}
    assert body["_revs_info"] == [
        {"rev": rev2, "status": "available"},
        {"rev": rev1, "status": "missing"},
    ]


async def test_compact_keeps_every_conflicting_leaf(client: TestClient, db: str) -> None:
    docs = [
        {"_id": "doc", "_rev": "2-aaa", "_revisions": {"start": 2, "ids": ["aaa", "base"]}, "b": 1},
        {"_id": "doc", "_rev": "2-bbb", "_revisions": {"start": 2, "ids": ["bbb", "base"]}, "b": 2},
    ]
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": docs, "new_edits": False})
    assert resp.status == 201
    await client.post(f"/{db}/_compact", headers=JSON)
    for rev, b in (("2-aaa", 1), ("2-bbb", 2)):
        resp = await client.get(f"/{db}/doc", params={"rev": rev})
        assert resp.status == 200
        assert (await resp.json())["b"] == b


async def test_compact_keeps_tombstones_and_their_leaves(client: TestClient, db: str) -> None:
    rev1 = await _put_doc(client, db, "doc", {"v": 1})
    deleted = await client.delete(f"/{db}/doc", params={"rev": rev1})
    tomb = (await deleted.json())["rev"]
    await client.post(f"/{db}/_compact", headers=JSON)
    resp = await client.get(f"/{db}/doc", params={"rev": tomb})
    assert resp.status == 200
    assert await resp.json() == {"_id": "doc", "_rev": tomb, "_deleted": True}
    assert (await client.get(f"/{db}/doc", params={"rev": rev1})).status == 404


async def test_compact_shrinks_external_size(client: TestClient, db: str) -> None:
    rev1 = await _put_doc(client, db, "doc", {"text": "x" * 4000})
    await _put_doc(client, db, "doc", {"_rev": rev1, "text": "short"})
    before = (await _info(client, db))["sizes"]["external"]
    await client.post(f"/{db}/_compact", headers=JSON)
    after = (await _info(client, db))["sizes"]["external"]
    assert after <= before - 4000


async def test_compact_missing_database_is_404(client: TestClient) -> None:
    resp = await client.post("/nothing-here/_compact", headers=JSON)
    assert resp.status == 404


# _ensure_full_commit -----------------------------------------------------------------------


async def test_ensure_full_commit_answers_201_with_start_time(client: TestClient, db: str) -> None:
    resp = await client.post(f"/{db}/_ensure_full_commit", headers=JSON)
    assert resp.status == 201
    assert await resp.json() == {"ok": True, "instance_start_time": "0"}


async def test_ensure_full_commit_missing_database_is_404(client: TestClient) -> None:
    resp = await client.post("/nothing-here/_ensure_full_commit", headers=JSON)
    assert resp.status == 404
    assert (await resp.json())["reason"] == "Database does not exist."
