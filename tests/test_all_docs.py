"""GET and POST /{db}/_all_docs: CouchDB's built-in index of document ids (raw collation)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

IDS = ["a", "b", "c", "d", "e"]


async def put_doc(client: TestClient, db: str, doc_id: str, body: dict[str, Any]) -> str:
    resp = await client.put(f"/{db}/{doc_id}", json=body)
    assert resp.status == 201, await resp.text()
    rev: str = (await resp.json())["rev"]
    return rev


async def seed(client: TestClient, db: str, ids: list[str] = IDS) -> dict[str, str]:
    """Create one document per id (body ``{"n": id}``); their revs by id."""
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": [{"_id": i, "n": i} for i in ids]})
    assert resp.status == 201
    return {r["id"]: r["rev"] for r in await resp.json()}


async def all_docs(client: TestClient, db: str, **params: Any) -> dict[str, Any]:
    """GET _all_docs with JSON-encoded key parameters and plain others."""
    query = {
        name: json.dumps(value) if name in ("key", "keys", "startkey", "endkey") else str(value)
        for name, value in params.items()
    }
    resp = await client.get(f"/{db}/_all_docs", params=query)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def ids(result: dict[str, Any]) -> list[str]:
    return [row["id"] for row in result["rows"]]


# the whole index -----------------------------------------------------------------------------


async def test_all_docs_of_an_empty_database(client: TestClient, db: str) -> None:
    assert await all_docs(client, db) == {"total_rows": 0, "offset": 0, "rows": []}


async def test_all_docs_lists_every_document_with_its_rev(client: TestClient, db: str) -> None:
    revs = await seed(client, db, ["b", "a"])
    result = await all_docs(client, db)
    assert result == {
        "total_rows": 2,
        "offset": 0,
        "rows": [
            {"id": "a", "key": "a", "value": {"rev": revs["a"]}},
            {"id": "b", "key": "b", "value": {"rev": revs["b"]}},
        ],
    }


async def test_all_docs_sorts_ids_by_raw_byte_order(client: TestClient, db: str) -> None:
    await seed(client, db, ["c", "B", "a", "_design/x", "Z", "é", "10", "9"])
    result = await all_docs(client, db)
    assert ids(result) == ["10", "9", "B", "Z", "_design/x", "a", "c", "é"]


async def test_all_docs_shows_the_winning_rev_after_updates(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    rev2 = await put_doc(client, db, "doc", {"_rev": rev1, "v": 2})
    assert (await all_docs(client, db))["rows"] == [
        {"id": "doc", "key": "doc", "value": {"rev": rev2}}
    ]


async def test_deleted_documents_are_not_listed(client: TestClient, db: str) -> None:
    revs = await seed(client, db)
    resp = await client.delete(f"/{db}/b", params={"rev": revs["b"]})
    assert resp.status == 200
    result = await all_docs(client, db)
    assert ids(result) == ["a", "c", "d", "e"]
    assert result["total_rows"] == 4
    ranged = await all_docs(client, db, startkey="a", endkey="c")
    assert ids(ranged) == ["a", "c"]


async def test_design_documents_are_listed_and_local_documents_never(
    client: TestClient, db: str
) -> None:
    await put_doc(client, db, "_design/app", {"views": {}})
    await put_doc(client, db, "plain", {"v": 1})
    resp = await client.put(f"/{db}/_local/checkpoint", json={"seq": 1})
    assert resp.status == 201
    result = await all_docs(client, db)
    assert ids(result) == ["_design/app", "plain"]
    assert result["total_rows"] == 2


async def test_include_docs_adds_bodies(client: TestClient, db: str) -> None:
    revs = await seed(client, db, ["a", "b"])
    result = await all_docs(client, db, include_docs="true")
    assert [row["doc"] for row in result["rows"]] == [
        {"_id": "a", "_rev": revs["a"], "n": "a"},
        {"_id": "b", "_rev": revs["b"], "n": "b"},
    ]
    assert all("doc" not in row for row in (await all_docs(client, db))["rows"])


async def test_conflicts_true_with_include_docs_adds_conflicts(client: TestClient, db: str) -> None:
    docs = [
        {"_id": "doc", "_rev": "1-aaa", "v": "a"},
        {"_id": "doc", "_rev": "1-bbb", "v": "b"},
    ]
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": docs, "new_edits": False})
    assert resp.status == 201
    result = await all_docs(client, db, include_docs="true", conflicts="true")
    assert result["rows"] == [
        {
            "id": "doc",
            "key": "doc",
            "value": {"rev": "1-bbb"},
            "doc": {"_id": "doc", "_rev": "1-bbb", "v": "b", "_conflicts": ["1-aaa"]},
        }
    ]
    plain = await all_docs(client, db, include_docs="true")
    assert "_conflicts" not in plain["rows"][0]["doc"]


async def test_update_seq_true_adds_the_database_sequence(client: TestClient, db: str) -> None:
    await seed(client, db, ["a", "b", "c"])
    result = await all_docs(client, db, update_seq="true")
    assert result["update_seq"] == 3
    assert "update_seq" not in await all_docs(client, db)


# key ranges ----------------------------------------------------------------------------------


async def test_key_selects_one_document(client: TestClient, db: str) -> None:
    revs = await seed(client, db)
    result = await all_docs(client, db, key="c")
    assert result["rows"] == [{"id": "c", "key": "c", "value": {"rev": revs["c"]}}]
    assert result["total_rows"] == 5
    assert result["offset"] == 2


async def test_key_that_does_not_exist_gives_no_rows(client: TestClient, db: str) -> None:
    await seed(client, db)
    assert (await all_docs(client, db, key="cc"))["rows"] == []


async def test_startkey_and_endkey_are_inclusive(client: TestClient, db: str) -> None:
    await seed(client, db)
    result = await all_docs(client, db, startkey="b", endkey="d")
    assert ids(result) == ["b", "c", "d"]
    assert result["offset"] == 1
    assert result["total_rows"] == 5


async def test_start_key_and_end_key_spellings(client: TestClient, db: str) -> None:
    await seed(client, db)
    resp = await client.get(f"/{db}/_all_docs", params={"start_key": '"b"', "end_key": '"c"'})
    assert ids(await resp.json()) == ["b", "c"]


async def test_range_bounds_need_not_be_existing_ids(client: TestClient, db: str) -> None:
    await seed(client, db)
    assert ids(await all_docs(client, db, startkey="bb", endkey="dd")) == ["c", "d"]


async def test_inclusive_end_false_excludes_endkey(client: TestClient, db: str) -> None:
    await seed(client, db)
    result = await all_docs(client, db, startkey="b", endkey="d", inclusive_end="false")
    assert ids(result) == ["b", "c"]


async def test_prefix_range_with_high_unicode_end(client: TestClient, db: str) -> None:
    await seed(client, db, ["user:1", "user:2", "userz", "users", "video:1"])
    result = await all_docs(client, db, startkey="user:", endkey="user:\ufff0")
    assert ids(result) == ["user:1", "user:2"]


async def test_descending_reverses_order(client: TestClient, db: str) -> None:
    await seed(client, db)
    result = await all_docs(client, db, descending="true")
    assert ids(result) == ["e", "d", "c", "b", "a"]
    assert result["offset"] == 0


async def test_descending_range_runs_from_startkey_down_to_endkey(
    client: TestClient, db: str
) -> None:
    await seed(client, db)
    result = await all_docs(client, db, descending="true", startkey="d", endkey="b")
    assert ids(result) == ["d", "c", "b"]
    assert result["offset"] == 1  # "e" comes before "d" in descending order
    exclusive = await all_docs(
        client, db, descending="true", startkey="d", endkey="b", inclusive_end="false"
    )
    assert ids(exclusive) == ["d", "c"]


async def test_limit_caps_the_rows(client: TestClient, db: str) -> None:
    await seed(client, db)
    result = await all_docs(client, db, limit=2)
    assert ids(result) == ["a", "b"]
    assert result["total_rows"] == 5
    assert ids(await all_docs(client, db, limit=0)) == []


async def test_skip_drops_rows_and_counts_in_offset(client: TestClient, db: str) -> None:
    await seed(client, db)
    result = await all_docs(client, db, skip=2)
    assert ids(result) == ["c", "d", "e"]
    assert result["offset"] == 2
    paged = await all_docs(client, db, startkey="b", skip=1, limit=2)
    assert ids(paged) == ["c", "d"]
    assert paged["offset"] == 2


async def test_skip_and_limit_with_descending(client: TestClient, db: str) -> None:
    await seed(client, db)
    result = await all_docs(client, db, descending="true", skip=1, limit=2)
    assert ids(result) == ["d", "c"]


@pytest.mark.parametrize(
    "params",
    [
        {"startkey": "b"},  # not JSON
        {"key": "{"},
        {"limit": "-1"},
        {"limit": "many"},
        {"skip": "-2"},
        {"descending": "maybe"},
        {"include_docs": "yes"},
    ],
)
async def test_bad_parameters_are_400(client: TestClient, db: str, params: dict[str, str]) -> None:
    resp = await client.get(f"/{db}/_all_docs", params=params)
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"


async def test_all_docs_of_missing_database_is_404(client: TestClient) -> None:
    resp = await client.get("/no-such-db/_all_docs")
    assert resp.status == 404


# keys ----------------------------------------------------------------------------------------


async def test_post_keys_returns_rows_in_the_order_asked(client: TestClient, db: str) -> None:
    revs = await seed(client, db)
    resp = await client.post(f"/{db}/_all_docs", json={"keys": ["d", "a", "d"]})
    assert resp.status == 200
    result = await resp.json()
    assert result["total_rows"] == 5
    assert result["rows"] == [
        {"id": "d", "key": "d", "value": {"rev": revs["d"]}},
        {"id": "a", "key": "a", "value": {"rev": revs["a"]}},
        {"id": "d", "key": "d", "value": {"rev": revs["d"]}},
    ]


async def test_keys_missing_document_is_a_not_found_row(client: TestClient, db: str) -> None:
    await seed(client, db, ["a"])
    resp = await client.post(f"/{db}/_all_docs", json={"keys": ["nope", "a", 7]})
    rows = (await resp.json())["rows"]
    assert rows[0] == {"key": "nope", "error": "not_found"}
    assert rows[1]["id"] == "a"
    assert rows[2] == {"key": 7, "error": "not_found"}


async def test_keys_deleted_document_shows_deleted_and_null_doc(
    client: TestClient, db: str
) -> None:
    rev = await put_doc(client, db, "gone", {"v": 1})
    resp = await client.delete(f"/{db}/gone", params={"rev": rev})
    tomb = (await resp.json())["rev"]
    resp = await client.post(
        f"/{db}/_all_docs", params={"include_docs": "true"}, json={"keys": ["gone"]}
    )
    assert (await resp.json())["rows"] == [
        {"id": "gone", "key": "gone", "value": {"rev": tomb, "deleted": True}, "doc": None}
    ]
    without = await client.post(f"/{db}/_all_docs", json={"keys": ["gone"]})
    assert (await without.json())["rows"] == [
        {"id": "gone", "key": "gone", "value": {"rev": tomb, "deleted": True}}
    ]


async def test_keys_with_include_docs_adds_bodies(client: TestClient, db: str) -> None:
    revs = await seed(client, db, ["a", "b"])
    resp = await client.post(
        f"/{db}/_all_docs", params={"include_docs": "true"}, json={"keys": ["b"]}
    )
    row = (await resp.json())["rows"][0]
    assert row["doc"] == {"_id": "b", "_rev": revs["b"], "n": "b"}


async def test_keys_never_find_local_documents(client: TestClient, db: str) -> None:
    await client.put(f"/{db}/_local/cp", json={"seq": 1})
    resp = await client.post(f"/{db}/_all_docs", json={"keys": ["_local/cp"]})
    assert (await resp.json())["rows"] == [{"key": "_local/cp", "error": "not_found"}]


async def test_keys_as_get_parameter(client: TestClient, db: str) -> None:
    await seed(client, db)
    result = await all_docs(client, db, keys=["e", "b"])
    assert ids(result) == ["e", "b"]


async def test_keys_with_limit_and_skip(client: TestClient, db: str) -> None:
    await seed(client, db)
    resp = await client.post(
        f"/{db}/_all_docs", params={"skip": "1", "limit": "2"}, json={"keys": ["a", "b", "c", "d"]}
    )
    assert ids(await resp.json()) == ["b", "c"]


async def test_post_range_parameters_in_the_body(client: TestClient, db: str) -> None:
    await seed(client, db)
    resp = await client.post(f"/{db}/_all_docs", json={"startkey": "b", "endkey": "d", "limit": 2})
    assert ids(await resp.json()) == ["b", "c"]


async def test_post_keys_that_are_not_a_list_is_400(client: TestClient, db: str) -> None:
    resp = await client.post(f"/{db}/_all_docs", json={"keys": "a"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"


# keys that are not strings, and reversed ranges ---------------------------------------------


async def test_a_numeric_startkey_sorts_before_every_id(client: TestClient, db: str) -> None:
    await seed(client, db)
    assert ids(await all_docs(client, db, startkey=1)) == IDS


async def test_a_numeric_endkey_sorts_before_every_id(client: TestClient, db: str) -> None:
    await seed(client, db)
    assert ids(await all_docs(client, db, endkey=1)) == []


async def test_an_object_startkey_sorts_after_every_id(client: TestClient, db: str) -> None:
    await seed(client, db)
    assert ids(await all_docs(client, db, startkey={})) == []


async def test_an_object_endkey_sorts_after_every_id(client: TestClient, db: str) -> None:
    await seed(client, db)
    assert ids(await all_docs(client, db, startkey="c", endkey={})) == ["c", "d", "e"]


async def test_descending_with_an_object_startkey_starts_at_the_last_id(
    client: TestClient, db: str
) -> None:
    await seed(client, db)
    assert ids(await all_docs(client, db, startkey={}, descending="true")) == IDS[::-1]


async def test_a_reversed_range_is_400_query_parse_error(client: TestClient, db: str) -> None:
    await seed(client, db)
    resp = await client.get(f"/{db}/_all_docs", params={"startkey": '"d"', "endkey": '"b"'})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "query_parse_error"
    assert "descending=true" in body["reason"]


async def test_a_reversed_descending_range_is_400(client: TestClient, db: str) -> None:
    await seed(client, db)
    resp = await client.get(
        f"/{db}/_all_docs", params={"startkey": '"b"', "endkey": '"d"', "descending": "true"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"] == "query_parse_error"
