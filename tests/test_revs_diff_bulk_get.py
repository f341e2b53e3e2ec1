"""The replication reads: POST /{db}/_revs_diff and POST /{db}/_bulk_get."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient


async def graft(client: TestClient, db: str, *docs: dict[str, Any]) -> None:
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": list(docs), "new_edits": False})
    assert resp.status == 201, await resp.text()
    assert await resp.json() == []


def replicated(doc_id: str, *ids: str, deleted: bool = False, **body: Any) -> dict[str, Any]:
    """A revision with history ``ids`` (newest first); its generation is ``len(ids)``."""
    doc = {
        "_id": doc_id,
        "_rev": f"{len(ids)}-{ids[0]}",
        "_revisions": {"start": len(ids), "ids": list(ids)},
        **body,
    }
    if deleted:
        doc["_deleted"] = True
    return doc


async def revs_diff(client: TestClient, db: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(f"/{db}/_revs_diff", json=body)
    assert resp.status == 200, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


async def bulk_get(
    client: TestClient, db: str, docs: list[dict[str, Any]], **params: str
) -> list[dict[str, Any]]:
    resp = await client.post(f"/{db}/_bulk_get", json={"docs": docs}, params=params)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert list(body) == ["results"]
    results: list[dict[str, Any]] = body["results"]
    return results


# _revs_diff ----------------------------------------------------------------------------------


async def test_revs_diff_reports_missing_revs_and_possible_ancestors(
    client: TestClient, db: str
) -> None:
    await graft(client, db, replicated("doc", "b", "a", v=2))
    diff = await revs_diff(client, db, {"doc": ["2-b", "3-c", "3-d"]})
    assert diff == {"doc": {"missing": ["3-c", "3-d"], "possible_ancestors": ["2-b"]}}


async def test_revs_diff_omits_fully_known_documents(client: TestClient, db: str) -> None:
    await graft(client, db, replicated("known", "b", "a"), replicated("partly", "y", "x"))
    diff = await revs_diff(client, db, {"known": ["1-a", "2-b"], "partly": ["2-y", "3-z"]})
    assert diff == {"partly": {"missing": ["3-z"], "possible_ancestors": ["2-y"]}}


async def test_revs_diff_for_an_unknown_document_has_no_ancestors(
    client: TestClient, db: str
) -> None:
    diff = await revs_diff(client, db, {"new": ["1-x", "2-y"]})
    assert diff == {"new": {"missing": ["1-x", "2-y"]}}


async def test_revs_diff_possible_ancestors_are_older_leaves_only(
    client: TestClient, db: str
) -> None:
    # Two branches: 1-a -> 2-b, and 1-a -> 2-x -> 3-y.
    await graft(client, db, replicated("doc", "b", "a"), replicated("doc", "y", "x", "a"))
    diff = await revs_diff(client, db, {"doc": ["3-z"]})
    assert diff == {"doc": {"missing": ["3-z"], "possible_ancestors": ["2-b"]}}
    diff = await revs_diff(client, db, {"doc": ["5-q"]})
    assert diff["doc"]["missing"] == ["5-q"]
    assert sorted(diff["doc"]["possible_ancestors"]) == ["2-b", "3-y"]


async def test_revs_diff_missing_rev_older_than_every_leaf_has_no_ancestors(
    client: TestClient, db: str
) -> None:
    await graft(client, db, replicated("doc", "b", "a"))
    diff = await revs_diff(client, db, {"doc": ["1-zzz"]})
    assert diff == {"doc": {"missing": ["1-zzz"]}}


async def test_revs_diff_knows_tombstones(client: TestClient, db: str) -> None:
    await graft(client, db, replicated("doc", "b", "a", deleted=True))
    assert await revs_diff(client, db, {"doc": ["2-b", "1-a"]}) == {}


async def test_revs_diff_knows_interactive_edits(client: TestClient, db: str) -> None:
    resp = await client.put(f"/{db}/doc", json={"v": 1})
    rev = (await resp.json())["rev"]
    assert await revs_diff(client, db, {"doc": [rev]}) == {}


async def test_revs_diff_empty_request_is_empty(client: TestClient, db: str) -> None:
    assert await revs_diff(client, db, {}) == {}


@pytest.mark.parametrize("body", [{"doc": "1-a"}, {"doc": [1]}, {"doc": ["nonsense"]}])
async def test_revs_diff_malformed_request_is_400(
    client: TestClient, db: str, body: dict[str, Any]
) -> None:
    resp = await client.post(f"/{db}/_revs_diff", json=body)
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"


async def test_revs_diff_on_missing_database_is_404(client: TestClient) -> None:
    resp = await client.post("/no-such-db/_revs_diff", json={"doc": ["1-a"]})
    assert resp.status == 404


# _bulk_get -----------------------------------------------------------------------------------


async def test_bulk_get_with_rev_returns_that_revision(client: TestClient, db: str) -> None:
    await graft(client, db, replicated("doc", "a", v=1))
    await graft(client, db, replicated("doc", "b", "a", v=2))
    results = await bulk_get(client, db, [{"id": "doc", "rev": "1-a"}])
    assert results == [{"id": "doc", "docs": [{"ok": {"_id": "doc", "_rev": "1-a", "v": 1}}]}]


async def test_bulk_get_without_rev_returns_the_winner(client: TestClient, db: str) -> None:
    await graft(client, db, replicated("doc", "b", "a", v="b"), replicated("doc", "c", "a", v="c"))
    results = await bulk_get(client, db, [{"id": "doc"}])
    assert results == [{"id": "doc", "docs": [{"ok": {"_id": "doc", "_rev": "2-c", "v": "c"}}]}]


async def test_bulk_get_keeps_request_order_and_repeats(client: TestClient, db: str) -> None:
    await graft(client, db, replicated("x", "a", v="x"), replicated("y", "a", v="y"))
    results = await bulk_get(client, db, [{"id": "y"}, {"id": "x"}, {"id": "y", "rev": "1-a"}])
    assert [r["id"] for r in results] == ["y", "x", "y"]
    assert [r["docs"][0]["ok"]["v"] for r in results] == ["y", "x", "y"]


async def test_bulk_get_revs_true_includes_revisions(client: TestClient, db: str) -> None:
    await graft(client, db, replicated("doc", "c", "b", "a", v=3))
    results = await bulk_get(client, db, [{"id": "doc", "rev": "3-c"}], revs="true")
    doc = results[0]["docs"][0]["ok"]
    assert doc["_revisions"] == {"start": 3, "ids": ["c", "b", "a"]}
    plain = await bulk_get(client, db, [{"id": "doc", "rev": "3-c"}])
    assert "_revisions" not in plain[0]["docs"][0]["ok"]


async def test_bulk_get_latest_true_returns_the_leaf_below_an_old_rev(
    client: TestClient, db: str
) -> None:
    await graft(client, db, replicated("doc", "a", v=1))
    await graft(client, db, replicated("doc", "b", "a", v=2))
    results = await bulk_get(client, db, [{"id": "doc", "rev": "1-a"}], latest="true")
    assert results == [{"id": "doc", "docs": [{"ok": {"_id": "doc", "_rev": "2-b", "v": 2}}]}]


async def test_bulk_get_latest_true_returns_every_leaf_below(client: TestClient, db: str) -> None:
    await graft(client, db, replicated("doc", "b", "a"), replicated("doc", "c", "a"))
    results = await bulk_get(client, db, [{"id": "doc", "rev": "1-a"}], latest="true")
    assert sorted(d["ok"]["_rev"] for d in results[0]["docs"]) == ["2-b", "2-c"]


async def test_bulk_get_tombstone_is_returned_as_deleted(client: TestClient, db: str) -> None:
    await graft(client, db, replicated("doc", "b", "a", deleted=True))
    results = await bulk_get(client, db, [{"id": "doc", "rev": "2-b"}])
    assert results[0]["docs"] == [{"ok": {"_id": "doc", "_rev": "2-b", "_deleted": True}}]


async def test_bulk_get_missing_document_is_an_error_entry(client: TestClient, db: str) -> None:
    results = await bulk_get(client, db, [{"id": "nope"}, {"id": "nope2", "rev": "1-a"}])
    assert results == [
        {
            "id": "nope",
            "docs": [
                {
                    "error": {
                        "id": "nope",
                        "rev": "undefined",
                        "error": "not_found",
                        "reason": "missing",
                    }
                }
            ],
        },
        {
            "id": "nope2",
            "docs": [
                {"error": {"id": "nope2", "rev": "1-a", "error": "not_found", "reason": "missing"}}
            ],
        },
    ]


async def test_bulk_get_missing_rev_is_an_error_entry_beside_found_ones(
    client: TestClient, db: str
) -> None:
    await graft(client, db, replicated("doc", "a", v=1))
    results = await bulk_get(client, db, [{"id": "doc", "rev": "9-zzz"}, {"id": "doc"}])
    assert results[0] == {
        "id": "doc",
        "docs": [
            {"error": {"id": "doc", "rev": "9-zzz", "error": "not_found", "reason": "missing"}}
        ],
    }
    assert results[1]["docs"] == [{"ok": {"_id": "doc", "_rev": "1-a", "v": 1}}]


async def test_bulk_get_compacted_rev_is_an_error_entry(client: TestClient, db: str) -> None:
    await graft(client, db, replicated("doc", "a", v=1))
    await graft(client, db, replicated("doc", "b", "a", v=2))
    await client.post(f"/{db}/_compact", headers={"Content-Type": "application/json"})
    results = await bulk_get(client, db, [{"id": "doc", "rev": "1-a"}])
    assert results[0]["docs"][0]["error"]["error"] == "not_found"


@pytest.mark.parametrize("body", [{}, {"docs": "doc"}, {"docs": ["doc"]}])
async def test_bulk_get_malformed_request_is_400(
    client: TestClient, db: str, body: dict[str, Any]
) -> None:
    resp = await client.post(f"/{db}/_bulk_get", json=body)
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"


async def test_bulk_get_on_missing_database_is_404(client: TestClient) -> None:
    resp = await client.post("/no-such-db/_bulk_get", json={"docs": [{"id": "a"}]})
    assert resp.status == 404
