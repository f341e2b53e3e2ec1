"""Document routes as CouchDB defines them: PUT/GET/HEAD/DELETE /{db}/{docid}, POST /{db}.

Every test checks the answer (status, JSON) and then reads the stored state back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from syncd.config import Settings

JSON = {"Content-Type": "application/json"}
REV = re.compile(r"^\d+-[0-9a-f]{32}$")


async def put_doc(client: TestClient, db: str, doc_id: str, body: dict[str, Any]) -> str:
    """PUT a document and return its new rev (asserting 201)."""
    resp = await client.put(f"/{db}/{doc_id}", json=body)
    assert resp.status == 201, await resp.text()
    rev: str = (await resp.json())["rev"]
    return rev


async def get_doc(
    client: TestClient, db: str, doc_id: str, **params: str
) -> tuple[int, dict[str, Any]]:
    """GET a document; (status, JSON body)."""
    resp = await client.get(f"/{db}/{doc_id}", params=params)
    return resp.status, await resp.json()


async def delete_doc(client: TestClient, db: str, doc_id: str, rev: str) -> str:
    resp = await client.delete(f"/{db}/{doc_id}", params={"rev": rev})
    assert resp.status == 200, await resp.text()
    new_rev: str = (await resp.json())["rev"]
    return new_rev


async def graft(client: TestClient, db: str, *docs: dict[str, Any]) -> None:
    """Store replicated revisions as they are (``new_edits: false``)."""
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": list(docs), "new_edits": False})
    assert resp.status == 201, await resp.text()
    assert await resp.json() == []


def branch(doc_id: str, *hashes: str, deleted: bool = False, **body: Any) -> dict[str, Any]:
    """A replicated revision whose history is ``hashes`` (newest first, generation = length)."""
    doc: dict[str, Any] = {
        "_id": doc_id,
        "_rev": f"{len(hashes)}-{hashes[0]}",
        "_revisions": {"start": len(hashes), "ids": list(hashes)},
        **body,
    }
    if deleted:
        doc["_deleted"] = True
    return doc


async def db_info(client: TestClient, db: str) -> dict[str, Any]:
    resp = await client.get(f"/{db}")
    assert resp.status == 200
    info: dict[str, Any] = await resp.json()
    return info


def digest(rev: str) -> str:
    return rev.partition("-")[2]


# create, read, update ----------------------------------------------------------------------


async def test_put_new_document_returns_201_with_id_and_rev(client: TestClient, db: str) -> None:
    resp = await client.put(f"/{db}/doc1", json={"a": 1})
    assert resp.status == 201
    body = await resp.json()
    assert body["ok"] is True
    assert body["id"] == "doc1"
    assert REV.match(body["rev"]) and body["rev"].startswith("1-")
    assert resp.headers["ETag"] == f'"{body["rev"]}"'
    assert resp.headers["Location"].endswith(f"/{db}/doc1")
    assert await get_doc(client, db, "doc1") == (200, {"_id": "doc1", "_rev": body["rev"], "a": 1})


async def test_get_returns_the_stored_body_with_etag(client: TestClient, db: str) -> None:
    body = {"s": "text", "n": 1.5, "list": [1, None, True], "obj": {"deep": {"x": "é"}}}
    rev = await put_doc(client, db, "doc", body)
    resp = await client.get(f"/{db}/doc")
    assert resp.status == 200
    assert resp.headers["ETag"] == f'"{rev}"'
    assert await resp.json() == {"_id": "doc", "_rev": rev, **body}


async def test_get_missing_document_is_404_missing(client: TestClient, db: str) -> None:
    status, body = await get_doc(client, db, "nope")
    assert status == 404
    assert (body["error"], body["reason"]) == ("not_found", "missing")


async def test_get_document_of_missing_database_is_404(client: TestClient) -> None:
    status, body = await get_doc(client, "no-such-db", "doc")
    assert status == 404
    assert body["reason"] == "Database does not exist."


async def test_put_update_with_body_rev_makes_generation_2(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    rev2 = await put_doc(client, db, "doc", {"_rev": rev1, "v": 2})
    assert rev2.startswith("2-")
    assert await get_doc(client, db, "doc") == (200, {"_id": "doc", "_rev": rev2, "v": 2})
    info = await db_info(client, db)
    assert (info["doc_count"], info["update_seq"]) == (1, 2)


async def test_put_update_with_rev_query_parameter(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    resp = await client.put(f"/{db}/doc", params={"rev": rev1}, json={"v": 2})
    assert resp.status == 201
    rev2 = (await resp.json())["rev"]
    assert await get_doc(client, db, "doc") == (200, {"_id": "doc", "_rev": rev2, "v": 2})


async def test_put_update_with_if_match_header(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    resp = await client.put(f"/{db}/doc", headers={"If-Match": f'"{rev1}"'}, json={"v": 2})
    assert resp.status == 201
    rev2 = (await resp.json())["rev"]
    assert await get_doc(client, db, "doc") == (200, {"_id": "doc", "_rev": rev2, "v": 2})


async def test_put_with_query_rev_and_different_body_rev_is_400(
    client: TestClient, db: str
) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    other = "1-" + "0" * 32
    resp = await client.put(f"/{db}/doc", params={"rev": rev1}, json={"_rev": other, "v": 2})
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"
    assert await get_doc(client, db, "doc") == (200, {"_id": "doc", "_rev": rev1, "v": 1})


async def test_put_with_if_match_and_different_body_rev_is_400(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    other = "1-" + "0" * 32
    resp = await client.put(
        f"/{db}/doc", headers={"If-Match": f'"{other}"'}, json={"_rev": rev1, "v": 2}
    )
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"
    assert await get_doc(client, db, "doc") == (200, {"_id": "doc", "_rev": rev1, "v": 1})


async def test_put_with_malformed_rev_is_400(client: TestClient, db: str) -> None:
    await put_doc(client, db, "doc", {"v": 1})
    resp = await client.put(f"/{db}/doc", json={"_rev": "not-a-rev-at-all!", "v": 2})
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"


async def test_put_with_stale_rev_is_409_conflict(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    rev2 = await put_doc(client, db, "doc", {"_rev": rev1, "v": 2})
    resp = await client.put(f"/{db}/doc", json={"_rev": rev1, "v": "stale"})
    assert resp.status == 409
    body = await resp.json()
    assert (body["error"], body["reason"]) == ("conflict", "Document update conflict.")
    assert await get_doc(client, db, "doc") == (200, {"_id": "doc", "_rev": rev2, "v": 2})
    assert (await db_info(client, db))["update_seq"] == 2


async def test_concurrent_updates_from_one_rev_let_exactly_one_win(
    client: TestClient, db: str
) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    responses = await asyncio.gather(
        *(client.put(f"/{db}/doc", json={"_rev": rev1, "v": i}) for i in range(2, 7))
    )
    assert sorted(r.status for r in responses) == [201, 409, 409, 409, 409]
    (index,) = [i for i, r in enumerate(responses) if r.status == 201]
    winner_rev = (await responses[index].json())["rev"]
    # The winner's edit is stored, with no conflict branch from the losers.
    assert await get_doc(client, db, "doc", conflicts="true") == (
        200,
        {"_id": "doc", "_rev": winner_rev, "v": index + 2},
    )
    assert (await db_info(client, db))["update_seq"] == 2


async def test_concurrent_creates_of_one_id_let_exactly_one_win(
    client: TestClient, db: str
) -> None:
    responses = await asyncio.gather(*(client.put(f"/{db}/fresh", json={"v": i}) for i in range(5)))
    assert sorted(r.status for r in responses) == [201, 409, 409, 409, 409]
    info = await db_info(client, db)
    assert (info["doc_count"], info["update_seq"]) == (1, 1)


async def test_put_existing_document_without_rev_is_409_conflict(
    client: TestClient, db: str
) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    resp = await client.put(f"/{db}/doc", json={"v": "no rev"})
    assert resp.status == 409
    assert (await resp.json())["error"] == "conflict"
    assert await get_doc(client, db, "doc") == (200, {"_id": "doc", "_rev": rev1, "v": 1})


async def test_put_new_document_with_a_rev_is_409_conflict(client: TestClient, db: str) -> None:
    resp = await client.put(f"/{db}/doc", json={"_rev": "1-" + "a" * 32, "v": 1})
    assert resp.status == 409
    assert (await get_doc(client, db, "doc"))[0] == 404


async def test_put_body_id_different_from_url_is_400(client: TestClient, db: str) -> None:
    resp = await client.put(f"/{db}/doc", json={"_id": "other", "v": 1})
    assert resp.status == 400
    assert (await get_doc(client, db, "doc"))[0] == 404
    assert (await get_doc(client, db, "other"))[0] == 404


async def test_put_with_unknown_special_member_is_400_doc_validation(
    client: TestClient, db: str
) -> None:
    resp = await client.put(f"/{db}/doc", json={"_bogus": 1})
    assert resp.status == 400
    assert (await resp.json())["error"] == "doc_validation"
    assert (await get_doc(client, db, "doc"))[0] == 404


async def test_put_ignores_read_only_special_members(client: TestClient, db: str) -> None:
    rev = await put_doc(client, db, "doc", {"v": 1, "_conflicts": ["1-x"], "_local_seq": 9})
    assert await get_doc(client, db, "doc") == (200, {"_id": "doc", "_rev": rev, "v": 1})


async def test_put_accepts_non_json_content_type_like_couchdb(client: TestClient, db: str) -> None:
    resp = await client.put(
        f"/{db}/doc",
        data=b'{"v": 1}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 201
    assert (await get_doc(client, db, "doc"))[1]["v"] == 1


async def test_put_with_new_edits_false_stores_the_given_rev(client: TestClient, db: str) -> None:
    rev = "3-" + "c" * 32
    resp = await client.put(
        f"/{db}/doc", params={"new_edits": "false"}, json={"_rev": rev, "v": "replicated"}
    )
    assert resp.status == 201
    assert (await resp.json())["rev"] == rev
    assert await get_doc(client, db, "doc") == (200, {"_id": "doc", "_rev": rev, "v": "replicated"})


# POST /{db} --------------------------------------------------------------------------------


async def test_post_creates_document_with_server_generated_id(client: TestClient, db: str) -> None:
    resp = await client.post(f"/{db}", json={"v": 1})
    assert resp.status == 201
    body = await resp.json()
    assert body["ok"] is True
    assert re.match(r"^[0-9a-f]{32}$", body["id"])
    assert body["rev"].startswith("1-")
    assert await get_doc(client, db, body["id"]) == (
        200,
        {"_id": body["id"], "_rev": body["rev"], "v": 1},
    )


async def test_post_generates_a_new_id_each_time(client: TestClient, db: str) -> None:
    ids = {(await (await client.post(f"/{db}", json={"v": 1})).json())["id"] for _ in range(3)}
    assert len(ids) == 3
    assert (await db_info(client, db))["doc_count"] == 3


async def test_post_with_id_in_body_uses_it(client: TestClient, db: str) -> None:
    resp = await client.post(f"/{db}", json={"_id": "chosen", "v": 1})
    assert resp.status == 201
    assert (await resp.json())["id"] == "chosen"
    assert (await get_doc(client, db, "chosen"))[1]["v"] == 1


async def test_post_with_trailing_slash_creates_document(client: TestClient, db: str) -> None:
    resp = await client.post(f"/{db}/", json={"_id": "slashed"})
    assert resp.status == 201
    assert (await get_doc(client, db, "slashed"))[0] == 200


async def test_post_existing_id_without_rev_is_409(client: TestClient, db: str) -> None:
    rev = await put_doc(client, db, "taken", {"v": 1})
    resp = await client.post(f"/{db}", json={"_id": "taken", "v": 2})
    assert resp.status == 409
    assert await get_doc(client, db, "taken") == (200, {"_id": "taken", "_rev": rev, "v": 1})


async def test_post_to_missing_database_is_404(client: TestClient) -> None:
    resp = await client.post("/no-such-db", json={"v": 1})
    assert resp.status == 404
    assert (await resp.json())["reason"] == "Database does not exist."


# HEAD and ETags ------------------------------------------------------------------------------


async def test_head_document_has_etag_and_no_body(client: TestClient, db: str) -> None:
    rev = await put_doc(client, db, "doc", {"v": 1})
    resp = await client.head(f"/{db}/doc")
    assert resp.status == 200
    assert resp.headers["ETag"] == f'"{rev}"'
    assert await resp.read() == b""


async def test_head_missing_document_is_404_without_body(client: TestClient, db: str) -> None:
    resp = await client.head(f"/{db}/nope")
    assert resp.status == 404
    assert await resp.read() == b""


async def test_if_none_match_current_etag_is_304(client: TestClient, db: str) -> None:
    rev = await put_doc(client, db, "doc", {"v": 1})
    resp = await client.get(f"/{db}/doc", headers={"If-None-Match": f'"{rev}"'})
    assert resp.status == 304
    assert resp.headers["ETag"] == f'"{rev}"'
    assert await resp.read() == b""


async def test_if_none_match_stale_etag_returns_the_document(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    rev2 = await put_doc(client, db, "doc", {"_rev": rev1, "v": 2})
    resp = await client.get(f"/{db}/doc", headers={"If-None-Match": f'"{rev1}"'})
    assert resp.status == 200
    assert resp.headers["ETag"] == f'"{rev2}"'
    assert (await resp.json())["v"] == 2


# DELETE --------------------------------------------------------------------------------------


async def test_delete_with_rev_writes_a_tombstone(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    resp = await client.delete(f"/{db}/doc", params={"rev": rev1})
    assert resp.status == 200
    body = await resp.json()
    assert body["ok"] is True
    assert body["id"] == "doc"
    assert body["rev"].startswith("2-")
    assert resp.headers["ETag"] == f'"{body["rev"]}"'
    info = await db_info(client, db)
    assert (info["doc_count"], info["doc_del_count"], info["update_seq"]) == (0, 1, 2)


async def test_delete_with_if_match_header(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    resp = await client.delete(f"/{db}/doc", headers={"If-Match": f'"{rev1}"'})
    assert resp.status == 200
    assert (await get_doc(client, db, "doc"))[1]["reason"] == "deleted"


async def test_delete_without_rev_is_409_conflict(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    resp = await client.delete(f"/{db}/doc")
    assert resp.status == 409
    assert (await resp.json())["error"] == "conflict"
    assert await get_doc(client, db, "doc") == (200, {"_id": "doc", "_rev": rev1, "v": 1})


async def test_delete_with_stale_rev_is_409_conflict(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    rev2 = await put_doc(client, db, "doc", {"_rev": rev1, "v": 2})
    resp = await client.delete(f"/{db}/doc", params={"rev": rev1})
    assert resp.status == 409
    assert await get_doc(client, db, "doc") == (200, {"_id": "doc", "_rev": rev2, "v": 2})


async def test_delete_missing_document_is_404(client: TestClient, db: str) -> None:
    resp = await client.delete(f"/{db}/nope")
    assert resp.status == 404
    assert (await resp.json())["reason"] == "missing"
    assert (await db_info(client, db))["update_seq"] == 0


async def test_delete_missing_document_with_a_rev_is_404(client: TestClient, db: str) -> None:
    resp = await client.delete(f"/{db}/nope", params={"rev": "1-" + "a" * 32})
    assert resp.status == 404
    assert (await resp.json())["reason"] == "missing"
    assert (await get_doc(client, db, "nope"))[0] == 404
    info = await db_info(client, db)
    assert (info["update_seq"], info["doc_del_count"]) == (0, 0)


async def test_deleting_the_tombstone_again_is_404_deleted(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    tomb = await delete_doc(client, db, "doc", rev1)
    resp = await client.delete(f"/{db}/doc", params={"rev": tomb})
    assert resp.status == 404
    assert (await resp.json())["reason"] == "deleted"
    assert (await db_info(client, db))["update_seq"] == 2


async def test_get_deleted_document_is_404_deleted(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    await delete_doc(client, db, "doc", rev1)
    status, body = await get_doc(client, db, "doc")
    assert status == 404
    assert (body["error"], body["reason"]) == ("not_found", "deleted")


async def test_get_tombstone_rev_returns_deleted_stub(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    tomb = await delete_doc(client, db, "doc", rev1)
    assert await get_doc(client, db, "doc", rev=tomb) == (
        200,
        {"_id": "doc", "_rev": tomb, "_deleted": True},
    )


async def test_get_old_rev_of_deleted_document_still_returns_its_body(
    client: TestClient, db: str
) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    await delete_doc(client, db, "doc", rev1)
    assert await get_doc(client, db, "doc", rev=rev1) == (200, {"_id": "doc", "_rev": rev1, "v": 1})


async def test_put_deleted_true_deletes_the_document(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    resp = await client.put(f"/{db}/doc", json={"_rev": rev1, "_deleted": True})
    assert resp.status == 201
    assert (await get_doc(client, db, "doc"))[1]["reason"] == "deleted"
    assert (await db_info(client, db))["doc_del_count"] == 1


async def test_recreating_a_deleted_document_extends_its_tombstone(
    client: TestClient, db: str
) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    tomb = await delete_doc(client, db, "doc", rev1)
    rev3 = await put_doc(client, db, "doc", {"v": "again"})
    assert rev3.startswith("3-")
    status, body = await get_doc(client, db, "doc", revs="true")
    assert status == 200
    assert body["v"] == "again"
    assert body["_revisions"]["ids"] == [digest(rev3), digest(tomb), digest(rev1)]
    info = await db_info(client, db)
    assert (info["doc_count"], info["doc_del_count"]) == (1, 0)


async def test_deleting_a_deleted_document_without_rev_is_404(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    await delete_doc(client, db, "doc", rev1)
    resp = await client.delete(f"/{db}/doc")
    assert resp.status == 404
    assert (await resp.json())["reason"] == "deleted"


# read options --------------------------------------------------------------------------------


async def test_get_old_rev_returns_that_revision(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    await put_doc(client, db, "doc", {"_rev": rev1, "v": 2})
    resp = await client.get(f"/{db}/doc", params={"rev": rev1})
    assert resp.status == 200
    assert resp.headers["ETag"] == f'"{rev1}"'
    assert await resp.json() == {"_id": "doc", "_rev": rev1, "v": 1}


async def test_get_unknown_rev_is_404_missing(client: TestClient, db: str) -> None:
    await put_doc(client, db, "doc", {"v": 1})
    status, body = await get_doc(client, db, "doc", rev="7-" + "f" * 32)
    assert status == 404
    assert body["reason"] == "missing"


async def test_get_malformed_rev_is_400(client: TestClient, db: str) -> None:
    await put_doc(client, db, "doc", {"v": 1})
    status, body = await get_doc(client, db, "doc", rev="garbage")
    assert status == 400
    assert body["error"] == "bad_request"


async def test_revs_true_lists_the_history(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    rev2 = await put_doc(client, db, "doc", {"_rev": rev1, "v": 2})
    rev3 = await put_doc(client, db, "doc", {"_rev": rev2, "v": 3})
    _, body = await get_doc(client, db, "doc", revs="true")
    assert body["_revisions"] == {"start": 3, "ids": [digest(rev3), digest(rev2), digest(rev1)]}
    _, plain = await get_doc(client, db, "doc")
    assert "_revisions" not in plain


async def test_revs_true_for_an_old_rev_lists_its_own_history(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    rev2 = await put_doc(client, db, "doc", {"_rev": rev1, "v": 2})
    await put_doc(client, db, "doc", {"_rev": rev2, "v": 3})
    _, body = await get_doc(client, db, "doc", rev=rev2, revs="true")
    assert body["_revisions"] == {"start": 2, "ids": [digest(rev2), digest(rev1)]}


async def test_revs_info_reports_each_revision_status(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    rev2 = await delete_doc(client, db, "doc", rev1)
    rev3 = await put_doc(client, db, "doc", {"v": 3})
    _, body = await get_doc(client, db, "doc", revs_info="true")
    assert body["_revs_info"] == [
        {"rev": rev3, "status": "available"},
        {"rev": rev2, "status": "deleted"},
        {"rev": rev1, "status": "available"},
    ]


async def test_conflicts_true_lists_losing_leaves(client: TestClient, db: str) -> None:
    await graft(
        client, db, branch("doc", "aaa", "base", side="a"), branch("doc", "bbb", "base", side="b")
    )
    status, body = await get_doc(client, db, "doc", conflicts="true")
    assert status == 200
    assert body["_rev"] == "2-bbb"  # same generation: the higher rev string wins
    assert body["side"] == "b"
    assert body["_conflicts"] == ["2-aaa"]
    _, plain = await get_doc(client, db, "doc")
    assert "_conflicts" not in plain


async def test_conflicts_true_without_conflicts_adds_nothing(client: TestClient, db: str) -> None:
    rev = await put_doc(client, db, "doc", {"v": 1})
    assert await get_doc(client, db, "doc", conflicts="true") == (
        200,
        {"_id": "doc", "_rev": rev, "v": 1},
    )


async def test_deleted_conflicts_true_lists_deleted_leaves(client: TestClient, db: str) -> None:
    await graft(client, db, branch("doc", "aaa", "base"), branch("doc", "bbb", "base"))
    tomb = await delete_doc(client, db, "doc", "2-aaa")
    _, body = await get_doc(client, db, "doc", deleted_conflicts="true", conflicts="true")
    assert body["_rev"] == "2-bbb"
    assert body["_deleted_conflicts"] == [tomb]
    assert "_conflicts" not in body


async def test_a_live_leaf_beats_a_longer_deleted_branch(client: TestClient, db: str) -> None:
    await graft(client, db, branch("doc", "aaa", "base"), branch("doc", "bbb", "base", v="b"))
    await delete_doc(client, db, "doc", "2-bbb")  # 3-... deleted; 2-aaa live
    status, body = await get_doc(client, db, "doc")
    assert status == 200
    assert body["_rev"] == "2-aaa"
    info = await db_info(client, db)
    assert (info["doc_count"], info["doc_del_count"]) == (1, 0)


async def test_meta_true_includes_revs_info_and_both_conflict_lists(
    client: TestClient, db: str
) -> None:
    await graft(
        client,
        db,
        branch("doc", "aaa", "base"),
        branch("doc", "bbb", "base"),
        branch("doc", "ccc", "base"),
    )
    tomb = await delete_doc(client, db, "doc", "2-aaa")
    _, body = await get_doc(client, db, "doc", meta="true")
    assert body["_rev"] == "2-ccc"
    assert body["_conflicts"] == ["2-bbb"]
    assert body["_deleted_conflicts"] == [tomb]
    assert body["_revs_info"] == [
        {"rev": "2-ccc", "status": "available"},
        {"rev": "1-base", "status": "missing"},
    ]


async def test_local_seq_is_the_sequence_of_the_last_change(client: TestClient, db: str) -> None:
    await put_doc(client, db, "first", {"v": 1})
    rev = await put_doc(client, db, "second", {"v": 1})
    await put_doc(client, db, "third", {"v": 1})
    await put_doc(client, db, "second", {"_rev": rev, "v": 2})
    _, body = await get_doc(client, db, "second", local_seq="true")
    assert body["_local_seq"] == 4
    _, first = await get_doc(client, db, "first", local_seq="true")
    assert first["_local_seq"] == 1


async def test_open_revs_all_returns_every_leaf(client: TestClient, db: str) -> None:
    await graft(
        client, db, branch("doc", "aaa", "base", v="a"), branch("doc", "bbb", "base", v="b")
    )
    tomb = await delete_doc(client, db, "doc", "2-aaa")
    resp = await client.get(f"/{db}/doc", params={"open_revs": "all"})
    assert resp.status == 200
    results = await resp.json()
    assert isinstance(results, list)
    assert sorted(results, key=lambda r: r["ok"]["_rev"]) == [
        {"ok": {"_id": "doc", "_rev": "2-bbb", "v": "b"}},
        {"ok": {"_id": "doc", "_rev": tomb, "_deleted": True}},
    ]


async def test_open_revs_list_returns_ok_or_missing_in_order(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    rev2 = await put_doc(client, db, "doc", {"_rev": rev1, "v": 2})
    unknown = "3-" + "e" * 32
    resp = await client.get(f"/{db}/doc", params={"open_revs": f'["{unknown}", "{rev2}"]'})
    assert resp.status == 200
    assert await resp.json() == [
        {"missing": unknown},
        {"ok": {"_id": "doc", "_rev": rev2, "v": 2}},
    ]


async def test_open_revs_with_revs_true_includes_histories(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    rev2 = await put_doc(client, db, "doc", {"_rev": rev1, "v": 2})
    resp = await client.get(f"/{db}/doc", params={"open_revs": "all", "revs": "true"})
    (entry,) = await resp.json()
    assert entry["ok"]["_revisions"] == {"start": 2, "ids": [digest(rev2), digest(rev1)]}


async def test_open_revs_of_a_missing_document(client: TestClient, db: str) -> None:
    rev = "1-" + "a" * 32
    resp = await client.get(f"/{db}/nope", params={"open_revs": f'["{rev}"]'})
    assert resp.status == 200
    assert await resp.json() == [{"missing": rev}]
    resp = await client.get(f"/{db}/nope", params={"open_revs": "all"})
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


async def test_open_revs_malformed_is_400(client: TestClient, db: str) -> None:
    await put_doc(client, db, "doc", {"v": 1})
    for raw in ("[1, 2]", '{"a": 1}', "not json", '["bad-rev!"]'):
        resp = await client.get(f"/{db}/doc", params={"open_revs": raw})
        assert resp.status == 400, raw
        assert (await resp.json())["error"] == "bad_request"


async def test_latest_true_with_old_rev_returns_the_leaf(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    rev2 = await put_doc(client, db, "doc", {"_rev": rev1, "v": 2})
    status, body = await get_doc(client, db, "doc", rev=rev1, latest="true")
    assert (status, body) == (200, {"_id": "doc", "_rev": rev2, "v": 2})


async def test_latest_true_with_open_revs_returns_leaves_below(client: TestClient, db: str) -> None:
    await graft(
        client, db, branch("doc", "aaa", "base", v="a"), branch("doc", "bbb", "base", v="b")
    )
    resp = await client.get(f"/{db}/doc", params={"open_revs": '["1-base"]', "latest": "true"})
    results = await resp.json()
    assert sorted(r["ok"]["_rev"] for r in results) == ["2-aaa", "2-bbb"]


# deterministic revisions -------------------------------------------------------------------


async def test_same_edit_from_same_parent_gives_same_rev_in_two_databases(
    client: TestClient, db: str
) -> None:
    other = "db-" + uuid.uuid4().hex[:12]
    assert (await client.put(f"/{other}")).status == 201
    first = [await put_doc(client, name, "doc", {"a": 1, "b": [1, 2]}) for name in (db, other)]
    assert first[0] == first[1]
    second = [
        await put_doc(client, name, "doc", {"_rev": first[0], "b": [1, 2], "a": 2})
        for name in (db, other)
    ]
    assert second[0] == second[1]
    tomb = [await delete_doc(client, name, "doc", second[0]) for name in (db, other)]
    assert tomb[0] == tomb[1]


async def test_rev_depends_on_content_parent_and_deletion(client: TestClient, db: str) -> None:
    a = await put_doc(client, db, "a", {"v": 1})
    b = await put_doc(client, db, "b", {"v": 2})
    c = await put_doc(client, db, "c", {"v": 1})
    assert a == c  # same content, no parent
    assert a != b
    a2 = await put_doc(client, db, "a", {"_rev": a, "v": 1})
    assert a2 != a
    assert a2.startswith("2-")
    deleted = await client.put(f"/{db}/c", json={"_rev": c, "_deleted": True, "v": 1})
    assert (await deleted.json())["rev"] != a2


# ids -----------------------------------------------------------------------------------------


async def test_doc_id_with_slash_sent_url_encoded(client: TestClient, db: str) -> None:
    url = URL(f"/{db}/a%2Fb", encoded=True)
    resp = await client.put(url, json={"v": 1})
    assert resp.status == 201
    assert (await resp.json())["id"] == "a/b"
    resp = await client.get(url)
    assert resp.status == 200
    assert (await resp.json())["_id"] == "a/b"
    all_docs = await (await client.get(f"/{db}/_all_docs")).json()
    assert [r["id"] for r in all_docs["rows"]] == ["a/b"]


async def test_doc_id_with_unicode_and_spaces(client: TestClient, db: str) -> None:
    url = URL(f"/{db}/caf%C3%A9%20au%20lait", encoded=True)
    resp = await client.put(url, json={"v": 1})
    assert resp.status == 201
    assert (await resp.json())["id"] == "café au lait"
    assert (await (await client.get(url)).json())["_id"] == "café au lait"


async def test_doc_id_with_a_newline_is_answered_and_located_encoded(
    client: TestClient, db: str
) -> None:
    url = URL(f"/{db}/line%0Abreak", encoded=True)
    resp = await client.put(url, json={"v": 1})
    assert resp.status == 201
    assert (await resp.json())["id"] == "line\nbreak"
    assert resp.headers["Location"].endswith(f"/{db}/line%0Abreak")
    resp = await client.get(url)
    assert (await resp.json())["_id"] == "line\nbreak"


async def test_location_of_a_doc_id_with_slash_is_encoded(client: TestClient, db: str) -> None:
    resp = await client.post(f"/{db}", json={"_id": "a/b c"})
    assert resp.status == 201
    assert resp.headers["Location"].endswith(f"/{db}/a%2Fb%20c")


async def test_design_document_is_stored_as_an_ordinary_document(
    client: TestClient, db: str
) -> None:
    resp = await client.put(f"/{db}/_design/foo", json={"views": {}})
    assert resp.status == 201
    body = await resp.json()
    assert body["id"] == "_design/foo"
    resp = await client.get(f"/{db}/_design/foo")
    assert await resp.json() == {"_id": "_design/foo", "_rev": body["rev"], "views": {}}
    assert (await db_info(client, db))["doc_count"] == 1
    rows = (await (await client.get(f"/{db}/_all_docs")).json())["rows"]
    assert [r["id"] for r in rows] == ["_design/foo"]


async def test_design_document_with_encoded_slash_is_the_same_document(
    client: TestClient, db: str
) -> None:
    rev = await put_doc(client, db, "_design/foo", {"v": 1})
    resp = await client.get(URL(f"/{db}/_design%2Ffoo", encoded=True))
    assert resp.status == 200
    assert await resp.json() == {"_id": "_design/foo", "_rev": rev, "v": 1}


async def test_delete_design_document(client: TestClient, db: str) -> None:
    rev = await put_doc(client, db, "_design/foo", {"v": 1})
    resp = await client.delete(f"/{db}/_design/foo", params={"rev": rev})
    assert resp.status == 200
    status, body = await get_doc(client, db, "_design/foo")
    assert (status, body["reason"]) == (404, "deleted")


async def test_put_id_with_leading_underscore_is_400_illegal_docid(
    client: TestClient, db: str
) -> None:
    resp = await client.put(f"/{db}/_foo", json={"v": 1})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "illegal_docid"
    assert body["reason"] == "Only reserved document ids may start with underscore."
    assert (await db_info(client, db))["update_seq"] == 0


async def test_post_id_with_leading_underscore_is_400_illegal_docid(
    client: TestClient, db: str
) -> None:
    resp = await client.post(f"/{db}", json={"_id": "_foo", "v": 1})
    assert resp.status == 400
    assert (await resp.json())["error"] == "illegal_docid"
    assert (await db_info(client, db))["update_seq"] == 0


async def test_post_non_string_id_is_400_illegal_docid(client: TestClient, db: str) -> None:
    resp = await client.post(f"/{db}", json={"_id": 42})
    assert resp.status == 400
    assert (await resp.json())["error"] == "illegal_docid"


async def test_too_long_id_is_400_illegal_docid(client: TestClient, db: str) -> None:
    resp = await client.put(f"/{db}/{'x' * 1025}", json={"v": 1})
    assert resp.status == 400
    assert (await resp.json())["error"] == "illegal_docid"


# request handling ----------------------------------------------------------------------------


async def test_get_with_json_content_type_and_no_body_works(client: TestClient, db: str) -> None:
    rev = await put_doc(client, db, "doc", {"v": 1})
    resp = await client.get(f"/{db}/doc", headers=JSON)
    assert resp.status == 200
    assert (await resp.json())["_rev"] == rev
    resp = await client.get(f"/{db}", headers=JSON)
    assert resp.status == 200


async def test_malformed_json_is_400_and_stores_nothing(client: TestClient, db: str) -> None:
    resp = await client.put(f"/{db}/doc", data=b'{"v": ', headers=JSON)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request"
    assert (await get_doc(client, db, "doc"))[0] == 404
    resp = await client.post(f"/{db}", data=b"{nope}", headers=JSON)
    assert resp.status == 400
    assert (await db_info(client, db))["update_seq"] == 0


async def test_json_that_is_not_an_object_is_400(client: TestClient, db: str) -> None:
    for raw in (b"[1, 2]", b'"text"', b"3"):
        resp = await client.put(f"/{db}/doc", data=raw, headers=JSON)
        assert resp.status == 400, raw
        assert (await resp.json())["error"] == "bad_request"
    assert (await get_doc(client, db, "doc"))[0] == 404


async def test_empty_body_is_400(client: TestClient, db: str) -> None:
    resp = await client.put(f"/{db}/doc", data=b"", headers=JSON)
    assert resp.status == 400
    assert (await get_doc(client, db, "doc"))[0] == 404


async def test_post_with_non_json_content_type_is_415(client: TestClient, db: str) -> None:
    resp = await client.post(f"/{db}", data=b'{"v": 1}', headers={"Content-Type": "text/plain"})
    assert resp.status == 415
    body = await resp.json()
    assert body["error"] == "bad_content_type"
    assert (await db_info(client, db))["doc_count"] == 0


async def test_unknown_route_is_404(client: TestClient, db: str) -> None:
    for path in ("/_nothing_here", f"/{db}/doc/attachment/deeper"):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert (await resp.json())["error"] == "not_found"


async def test_wrong_method_is_405_with_allow(client: TestClient, db: str) -> None:
    resp = await client.post("/_uuids", json={})
    assert resp.status == 405
    assert (await resp.json())["error"] == "method_not_allowed"
    assert set(resp.headers["Allow"].split(",")) >= {"GET", "HEAD"}
    resp = await client.patch(f"/{db}/doc", json={"v": 1})
    assert resp.status == 405
    assert set(resp.headers["Allow"].split(",")) >= {"GET", "HEAD", "PUT", "DELETE"}
    assert (await get_doc(client, db, "doc"))[0] == 404


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/{db}/missing", {}, 404),
        ("GET", "/no-such-db", {}, 404),
        ("PUT", "/{db}/_bad", {"json": {}}, 400),
        ("PUT", "/{db}/doc", {"data": b"{", "headers": JSON}, 400),
        ("POST", "/{db}", {"data": b"{}", "headers": {"Content-Type": "text/plain"}}, 415),
        ("PUT", "/{db}", {}, 412),
        ("GET", "/_nothing_here", {}, 404),
        ("POST", "/_uuids", {}, 405),
        ("GET", "/_uuids?count=0", {}, 400),
    ],
)
async def test_every_error_has_error_reason_and_request_id(
    client: TestClient, db: str, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    resp = await client.request(method, path.format(db=db), **kwargs)
    assert resp.status == status
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == {"error", "reason", "request_id"}
    assert all(isinstance(v, str) and v for v in body.values())
    assert body["request_id"] == resp.headers["X-Request-ID"]


async def test_x_request_id_is_echoed(client: TestClient, db: str) -> None:
    resp = await client.get(f"/{db}", headers={"X-Request-ID": "trace-123.abc"})
    assert resp.headers["X-Request-ID"] == "trace-123.abc"
    resp = await client.get(f"/{db}/missing", headers={"X-Request-ID": "trace-456"})
    assert resp.headers["X-Request-ID"] == "trace-456"
    assert (await resp.json())["request_id"] == "trace-456"


async def test_request_id_is_made_when_missing_or_unsafe(client: TestClient, db: str) -> None:
    resp = await client.get(f"/{db}")
    assert re.match(r"^[0-9a-f]{32}$", resp.headers["X-Request-ID"])
    resp = await client.get(f"/{db}", headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.match(r"^[0-9a-f]{32}$", resp.headers["X-Request-ID"])


# size limits ---------------------------------------------------------------------------------


class TestSizeLimits:
    """Requests above max_request_bytes and documents above max_document_bytes are 413."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return dataclasses.replace(settings, max_request_bytes=4096, max_document_bytes=1024)

    async def test_document_over_max_document_bytes_is_413(
        self, client: TestClient, db: str
    ) -> None:
        resp = await client.put(f"/{db}/big", json={"text": "x" * 2000})
        assert resp.status == 413
        body = await resp.json()
        assert body["error"] == "document_too_large"
        assert (await get_doc(client, db, "big"))[0] == 404
        assert (await db_info(client, db))["update_seq"] == 0

    async def test_document_just_under_the_limit_is_stored(
        self, client: TestClient, db: str
    ) -> None:
        rev = await put_doc(client, db, "fits", {"text": "x" * 900})
        assert (await get_doc(client, db, "fits"))[1]["_rev"] == rev

    async def test_update_over_the_limit_keeps_the_old_revision(
        self, client: TestClient, db: str
    ) -> None:
        rev = await put_doc(client, db, "doc", {"v": 1})
        resp = await client.put(f"/{db}/doc", json={"_rev": rev, "text": "x" * 2000})
        assert resp.status == 413
        assert await get_doc(client, db, "doc") == (200, {"_id": "doc", "_rev": rev, "v": 1})

    async def test_request_over_max_request_bytes_is_413(self, client: TestClient, db: str) -> None:
        resp = await client.put(f"/{db}/huge", json={"text": "x" * 10_000})
        assert resp.status == 413
        body = await resp.json()
        assert body["error"] == "too_large"
        assert "request_id" in body
        assert (await get_doc(client, db, "huge"))[0] == 404
        assert (await db_info(client, db))["update_seq"] == 0

    async def test_post_over_max_request_bytes_is_413(self, client: TestClient, db: str) -> None:
        resp = await client.post(f"/{db}", json={"text": "x" * 10_000})
        assert resp.status == 413
        assert (await db_info(client, db))["doc_count"] == 0

    async def test_local_document_over_the_limit_is_413(self, client: TestClient, db: str) -> None:
        resp = await client.put(f"/{db}/_local/big", json={"text": "x" * 2000})
        assert resp.status == 413
        assert (await client.get(f"/{db}/_local/big")).status == 404
