"""POST /{db}/_bulk_docs: interactive edits, replicated edits, stemming and pack validation."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

JSON = {"Content-Type": "application/json"}


async def bulk(
    client: TestClient, db: str, docs: list[Any], new_edits: bool | None = None
) -> list[dict[str, Any]]:
    """POST _bulk_docs and return the result list (asserting 201)."""
    body: dict[str, Any] = {"docs": docs}
    if new_edits is not None:
        body["new_edits"] = new_edits
    resp = await client.post(f"/{db}/_bulk_docs", json=body)
    assert resp.status == 201, await resp.text()
    results: list[dict[str, Any]] = await resp.json()
    return results


async def get_doc(
    client: TestClient, db: str, doc_id: str, **params: str
) -> tuple[int, dict[str, Any]]:
    resp = await client.get(f"/{db}/{doc_id}", params=params)
    return resp.status, await resp.json()


async def put_doc(client: TestClient, db: str, doc_id: str, body: dict[str, Any]) -> str:
    resp = await client.put(f"/{db}/{doc_id}", json=body)
    assert resp.status == 201, await resp.text()
    rev: str = (await resp.json())["rev"]
    return rev


async def update_seq(client: TestClient, db: str) -> int:
    seq: int = (await (await client.get(f"/{db}")).json())["update_seq"]
    return seq


def replicated(doc_id: str, start: int, ids: list[str], **body: Any) -> dict[str, Any]:
    """A revision as a replicator sends it: ``_rev`` plus the ``_revisions`` history."""
    return {
        "_id": doc_id,
        "_rev": f"{start}-{ids[0]}",
        "_revisions": {"start": start, "ids": ids},
        **body,
    }


def pack(**overrides: Any) -> dict[str, Any]:
    """A valid pack document, with some fields replaced."""
    doc: dict[str, Any] = {
        "type": "pack",
        "title": "Daily questions",
        "language": "en",
        "prompts": [{"id": "p1", "text": "How are you?"}, {"id": "p2", "text": "Why?"}],
    }
    doc.update(overrides)
    return doc


# new_edits=true ------------------------------------------------------------------------------


async def test_bulk_creates_every_document_and_reports_each(client: TestClient, db: str) -> None:
    results = await bulk(client, db, [{"_id": "a", "v": 1}, {"_id": "b", "v": 2}])
    assert [(r["ok"], r["id"], r["rev"][:2]) for r in results] == [
        (True, "a", "1-"),
        (True, "b", "1-"),
    ]
    for r, v in zip(results, (1, 2), strict=True):
        assert await get_doc(client, db, r["id"]) == (
            200,
            {"_id": r["id"], "_rev": r["rev"], "v": v},
        )
    assert await update_seq(client, db) == 2


async def test_bulk_generates_ids_for_documents_without_one(client: TestClient, db: str) -> None:
    (result,) = await bulk(client, db, [{"v": 1}])
    assert len(result["id"]) == 32
    assert (await get_doc(client, db, result["id"]))[1]["v"] == 1


async def test_one_bad_document_never_fails_the_others(client: TestClient, db: str) -> None:
    stale = await put_doc(client, db, "existing", {"v": 1})
    current = await put_doc(client, db, "existing", {"_rev": stale, "v": 2})
    results = await bulk(
        client,
        db,
        [
            {"_id": "new", "v": 1},
            {"_id": "existing", "_rev": stale, "v": "stale"},
            {"_id": "bad-pack", **pack(title="")},
            {"_id": "_illegal", "v": 1},
            {"_id": "also-new", "v": 2},
        ],
    )
    assert len(results) == 5
    assert results[0]["ok"] is True and results[0]["id"] == "new"
    assert results[1] == {
        "id": "existing",
        "error": "conflict",
        "reason": "Document update conflict.",
    }
    assert results[2]["id"] == "bad-pack"
    assert results[2]["error"] == "forbidden"
    assert "title" in results[2]["reason"]
    assert results[3]["id"] == "_illegal"
    assert results[3]["error"] == "illegal_docid"
    assert results[4]["ok"] is True and results[4]["id"] == "also-new"

    assert (await get_doc(client, db, "new"))[1]["_rev"] == results[0]["rev"]
    assert (await get_doc(client, db, "also-new"))[1]["_rev"] == results[4]["rev"]
    assert await get_doc(client, db, "existing") == (
        200,
        {"_id": "existing", "_rev": current, "v": 2},
    )
    assert (await get_doc(client, db, "bad-pack"))[0] == 404
    assert await update_seq(client, db) == 4


async def test_bulk_update_and_delete_with_revs(client: TestClient, db: str) -> None:
    rev_a = await put_doc(client, db, "a", {"v": 1})
    rev_b = await put_doc(client, db, "b", {"v": 1})
    results = await bulk(
        client,
        db,
        [{"_id": "a", "_rev": rev_a, "v": 2}, {"_id": "b", "_rev": rev_b, "_deleted": True}],
    )
    assert all(r["ok"] for r in results)
    assert [r["rev"][:2] for r in results] == ["2-", "2-"]
    assert (await get_doc(client, db, "a"))[1] == {"_id": "a", "_rev": results[0]["rev"], "v": 2}
    status, body = await get_doc(client, db, "b")
    assert (status, body["reason"]) == (404, "deleted")
    info = await (await client.get(f"/{db}")).json()
    assert (info["doc_count"], info["doc_del_count"]) == (1, 1)


async def test_second_edit_of_the_same_new_doc_in_one_request_conflicts(
    client: TestClient, db: str
) -> None:
    results = await bulk(client, db, [{"_id": "twice", "v": 1}, {"_id": "twice", "v": 2}])
    assert results[0]["ok"] is True
    assert results[1]["error"] == "conflict"
    assert await get_doc(client, db, "twice") == (
        200,
        {"_id": "twice", "_rev": results[0]["rev"], "v": 1},
    )


async def test_chained_edits_in_one_request(client: TestClient, db: str) -> None:
    rev1 = await put_doc(client, db, "doc", {"v": 1})
    (first,) = await bulk(client, db, [{"_id": "doc", "_rev": rev1, "v": 2}])
    results = await bulk(
        client,
        db,
        [{"_id": "doc", "_rev": first["rev"], "v": 3}, {"_id": "doc", "_rev": rev1, "v": "x"}],
    )
    assert results[0]["ok"] is True
    assert results[1]["error"] == "conflict"
    assert (await get_doc(client, db, "doc"))[1]["v"] == 3


async def test_bulk_entry_that_is_not_an_object_fails_alone(client: TestClient, db: str) -> None:
    results = await bulk(client, db, [42, {"_id": "fine"}])
    assert results[0]["error"] == "bad_request"
    assert results[1]["ok"] is True
    assert (await get_doc(client, db, "fine"))[0] == 200


async def test_bulk_empty_docs_list_is_an_empty_result(client: TestClient, db: str) -> None:
    assert await bulk(client, db, []) == []
    assert await update_seq(client, db) == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"docs": {"_id": "x"}},
        {"docs": [], "new_edits": "false"},
    ],
)
async def test_bulk_malformed_request_is_400(
    client: TestClient, db: str, body: dict[str, Any]
) -> None:
    resp = await client.post(f"/{db}/_bulk_docs", json=body)
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"


async def test_bulk_without_json_content_type_is_415(client: TestClient, db: str) -> None:
    resp = await client.post(
        f"/{db}/_bulk_docs",
        data=b'{"docs": [{"_id": "a"}]}',
        headers={"Content-Type": "text/plain"},
    )
    assert resp.status == 415
    assert (await get_doc(client, db, "a"))[0] == 404


async def test_bulk_to_missing_database_is_404(client: TestClient) -> None:
    resp = await client.post("/no-such-db/_bulk_docs", json={"docs": [{"_id": "a"}]})
    assert resp.status == 404


# new_edits=false -----------------------------------------------------------------------------


async def test_replicated_write_stores_rev_and_history_as_given(
    client: TestClient, db: str
) -> None:
    results = await bulk(client, db, [replicated("doc", 3, ["c", "b", "a"], v=3)], new_edits=False)
    assert results == []
    status, body = await get_doc(client, db, "doc", revs="true")
    assert status == 200
    assert body == {
        "_id": "doc",
        "_rev": "3-c",
        "v": 3,
        "_revisions": {"start": 3, "ids": ["c", "b", "a"]},
    }
    assert await update_seq(client, db) == 1


async def test_replicated_write_with_rev_only_stores_that_rev(client: TestClient, db: str) -> None:
    results = await bulk(client, db, [{"_id": "doc", "_rev": "5-abc", "v": 5}], new_edits=False)
    assert results == []
    _, body = await get_doc(client, db, "doc", revs="true")
    assert body["_rev"] == "5-abc"
    assert body["_revisions"] == {"start": 5, "ids": ["abc"]}


async def test_replicated_branches_create_a_conflict(client: TestClient, db: str) -> None:
    await bulk(client, db, [replicated("doc", 2, ["aaa", "base"], side="a")], new_edits=False)
    results = await bulk(
        client, db, [replicated("doc", 2, ["bbb", "base"], side="b")], new_edits=False
    )
    assert results == []
    _, body = await get_doc(client, db, "doc", conflicts="true")
    assert body["_rev"] == "2-bbb"
    assert body["side"] == "b"
    assert body["_conflicts"] == ["2-aaa"]
    assert (await get_doc(client, db, "doc", rev="2-aaa"))[1]["side"] == "a"
    info = await (await client.get(f"/{db}")).json()
    assert info["doc_count"] == 1


async def test_replicated_write_is_idempotent(client: TestClient, db: str) -> None:
    doc = replicated("doc", 2, ["bbb", "aaa"], v=2)
    assert await bulk(client, db, [doc], new_edits=False) == []
    seq = await update_seq(client, db)
    _, before = await get_doc(client, db, "doc", revs="true", conflicts="true")
    assert await bulk(client, db, [doc], new_edits=False) == []
    assert await update_seq(client, db) == seq
    assert (await get_doc(client, db, "doc", revs="true", conflicts="true"))[1] == before


async def test_replicating_an_ancestor_of_a_known_leaf_changes_nothing(
    client: TestClient, db: str
) -> None:
    await bulk(client, db, [replicated("doc", 3, ["c", "b", "a"], v=3)], new_edits=False)
    seq = await update_seq(client, db)
    assert await bulk(client, db, [replicated("doc", 2, ["b", "a"], v=2)], new_edits=False) == []
    assert await update_seq(client, db) == seq
    assert (await get_doc(client, db, "doc"))[1]["_rev"] == "3-c"


async def test_replicated_write_extends_a_stemmed_history(client: TestClient, db: str) -> None:
    # The source had stemmed its history: only 3-c and 2-b arrive.
    await bulk(client, db, [replicated("doc", 3, ["c", "b"], v=3)], new_edits=False)
    # Later the next revision arrives with the full history the source knows.
    await bulk(client, db, [replicated("doc", 5, ["e", "d", "c", "b", "a"], v=5)], new_edits=False)
    _, body = await get_doc(client, db, "doc", revs="true", conflicts="true")
    assert body["_rev"] == "5-e"
    assert "_conflicts" not in body
    assert body["_revisions"] == {"start": 5, "ids": ["e", "d", "c", "b", "a"]}


async def test_replicated_write_extends_history_stemmed_by_revs_limit(
    client: TestClient, db: str
) -> None:
    await client.put(f"/{db}/_revs_limit", data=b"2", headers=JSON)
    await bulk(client, db, [replicated("doc", 3, ["c", "b", "a"], v=3)], new_edits=False)
    assert (await get_doc(client, db, "doc", revs="true"))[1]["_revisions"] == {
        "start": 3,
        "ids": ["c", "b"],
    }
    await bulk(client, db, [replicated("doc", 4, ["d", "c", "b", "a"], v=4)], new_edits=False)
    _, body = await get_doc(client, db, "doc", revs="true", conflicts="true")
    assert body["_rev"] == "4-d"
    assert "_conflicts" not in body
    assert body["_revisions"] == {"start": 4, "ids": ["d", "c"]}


async def test_interactive_edit_continues_a_replicated_leaf(client: TestClient, db: str) -> None:
    await bulk(client, db, [replicated("doc", 2, ["bbb", "aaa"], v=2)], new_edits=False)
    rev3 = await put_doc(client, db, "doc", {"_rev": "2-bbb", "v": 3})
    _, body = await get_doc(client, db, "doc", revs="true")
    assert body["_revisions"] == {"start": 3, "ids": [rev3.split("-")[1], "bbb", "aaa"]}


async def test_replicated_deletion_is_stored_as_a_tombstone(client: TestClient, db: str) -> None:
    await bulk(client, db, [replicated("doc", 1, ["aaa"], v=1)], new_edits=False)
    await bulk(
        client, db, [{**replicated("doc", 2, ["bbb", "aaa"]), "_deleted": True}], new_edits=False
    )
    status, body = await get_doc(client, db, "doc")
    assert (status, body["reason"]) == (404, "deleted")
    assert (await get_doc(client, db, "doc", rev="2-bbb"))[1] == {
        "_id": "doc",
        "_rev": "2-bbb",
        "_deleted": True,
    }


async def test_replicated_write_without_rev_fails_alone(client: TestClient, db: str) -> None:
    results = await bulk(
        client, db, [{"_id": "norev", "v": 1}, replicated("ok", 1, ["aaa"])], new_edits=False
    )
    assert len(results) == 1
    assert results[0]["id"] == "norev"
    assert results[0]["error"] == "bad_request"
    assert (await get_doc(client, db, "norev"))[0] == 404
    assert (await get_doc(client, db, "ok"))[0] == 200


@pytest.mark.parametrize(
    "doc",
    [
        {"_id": "bad", "_rev": "1-a\nb"},
        {"_id": "bad", "_rev": '1-a"b'},
        {"_id": "bad", "_rev": "2-ok", "_revisions": {"start": 2, "ids": ["ok", "x\ry"]}},
    ],
    ids=["newline-in-rev", "quote-in-rev", "control-char-in-history"],
)
async def test_replicated_rev_that_cannot_be_an_etag_is_refused_alone(
    client: TestClient, db: str, doc: dict[str, Any]
) -> None:
    results = await bulk(client, db, [doc, replicated("good", 1, ["aaa"])], new_edits=False)
    assert [(r["id"], r["error"]) for r in results] == [
        ("bad", "bad_request" if "_revisions" not in doc else "doc_validation")
    ]
    assert (await get_doc(client, db, "bad"))[0] == 404
    assert (await get_doc(client, db, "good"))[0] == 200


async def test_replicated_errors_name_the_id_and_rev(client: TestClient, db: str) -> None:
    bad = replicated("bad-pack", 1, ["aaa"], **pack(language="not a language"))
    results = await bulk(client, db, [bad, replicated("good", 1, ["bbb"])], new_edits=False)
    assert len(results) == 1
    assert results[0]["id"] == "bad-pack"
    assert results[0]["rev"] == "1-aaa"
    assert results[0]["error"] == "forbidden"
    assert "language" in results[0]["reason"]
    assert (await get_doc(client, db, "bad-pack"))[0] == 404
    assert (await get_doc(client, db, "good"))[0] == 200


# revs_limit stemming -------------------------------------------------------------------------


async def test_revs_limit_stems_history_on_write(client: TestClient, db: str) -> None:
    resp = await client.put(f"/{db}/_revs_limit", data=b"5", headers=JSON)
    assert resp.status == 200
    revs = [await put_doc(client, db, "doc", {"v": 0})]
    for i in range(1, 10):
        revs.append(await put_doc(client, db, "doc", {"_rev": revs[-1], "v": i}))
    _, body = await get_doc(client, db, "doc", revs="true")
    assert body["_rev"] == revs[9]
    assert body["_revisions"]["start"] == 10
    assert body["_revisions"]["ids"] == [r.split("-")[1] for r in reversed(revs[5:])]
    # Stemmed revisions are forgotten; the kept ancestors still have their bodies.
    assert (await get_doc(client, db, "doc", rev=revs[0]))[0] == 404
    assert (await get_doc(client, db, "doc", rev=revs[4]))[0] == 404
    assert (await get_doc(client, db, "doc", rev=revs[5]))[1]["v"] == 5


async def test_revs_limit_stems_replicated_histories(client: TestClient, db: str) -> None:
    await client.put(f"/{db}/_revs_limit", data=b"3", headers=JSON)
    ids = [f"h{i}" for i in range(8, 0, -1)]
    await bulk(client, db, [replicated("doc", 8, ids, v=8)], new_edits=False)
    _, body = await get_doc(client, db, "doc", revs="true")
    assert body["_revisions"] == {"start": 8, "ids": ["h8", "h7", "h6"]}


# pack validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        pack(),
        pack(title="T"),
        pack(title="t" * 200),
        pack(language="pt-BR"),
        pack(language="zh-Hant-TW"),
        pack(language="gsw"),
        pack(prompts=[]),
        {k: v for k, v in pack().items() if k != "prompts"},
        pack(prompts=[{"id": "only", "text": "x"}]),
        pack(prompts=[{"id": "long", "text": "y" * 1000}]),
        pack(prompts=[{"id": f"p{i}", "text": "q"} for i in range(1000)]),
    ],
    ids=[
        "valid",
        "title-1-char",
        "title-200-chars",
        "language-region",
        "language-script-region",
        "language-3-letters",
        "no-prompts",
        "prompts-absent",
        "text-1-char",
        "text-1000-chars",
        "1000-prompts",
    ],
)
async def test_valid_pack_is_stored(client: TestClient, db: str, doc: dict[str, Any]) -> None:
    (result,) = await bulk(client, db, [{"_id": "pack", **doc}])
    assert result["ok"] is True
    _, stored = await get_doc(client, db, "pack")
    assert stored == {"_id": "pack", "_rev": result["rev"], **doc}


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({k: v for k, v in pack().items() if k != "title"}, "title"),
        (pack(title=""), "title"),
        (pack(title="t" * 201), "title"),
        (pack(title=7), "title"),
        ({k: v for k, v in pack().items() if k != "language"}, "language"),
        (pack(language="english"), "language"),
        (pack(language="en_US"), "language"),
        (pack(language="e"), "language"),
        (pack(language="en-"), "language"),
        (pack(prompts="none"), "prompts"),
        (pack(prompts=[{"id": f"p{i}", "text": "q"} for i in range(1001)]), "prompts"),
        (pack(prompts=["just text"]), "prompts[0]"),
        (pack(prompts=[{"text": "no id"}]), "prompts[0].id"),
        (pack(prompts=[{"id": "", "text": "empty id"}]), "prompts[0].id"),
        (pack(prompts=[{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]), "prompts[1].id"),
        (pack(prompts=[{"id": "a"}]), "prompts[0].text"),
        (pack(prompts=[{"id": "a", "text": ""}]), "prompts[0].text"),
        (pack(prompts=[{"id": "a", "text": "z" * 1001}]), "prompts[0].text"),
    ],
    ids=[
        "title-missing",
        "title-empty",
        "title-201-chars",
        "title-not-string",
        "language-missing",
        "language-word",
        "language-underscore",
        "language-1-letter",
        "language-trailing-dash",
        "prompts-not-list",
        "1001-prompts",
        "prompt-not-object",
        "prompt-id-missing",
        "prompt-id-empty",
        "prompt-id-duplicate",
        "prompt-text-missing",
        "prompt-text-empty",
        "prompt-text-1001-chars",
    ],
)
async def test_bad_pack_is_rejected_alone_with_forbidden_naming_the_field(
    client: TestClient, db: str, doc: dict[str, Any], field: str
) -> None:
    results = await bulk(client, db, [{"_id": "bad", **doc}, {"_id": "good", **pack()}])
    assert results[0]["id"] == "bad"
    assert results[0]["error"] == "forbidden"
    assert field in results[0]["reason"]
    assert results[1]["ok"] is True
    assert (await get_doc(client, db, "bad"))[0] == 404
    assert (await get_doc(client, db, "good"))[0] == 200


async def test_bad_pack_put_is_403_forbidden(client: TestClient, db: str) -> None:
    resp = await client.put(f"/{db}/bad", json=pack(title=""))
    assert resp.status == 403
    body = await resp.json()
    assert body["error"] == "forbidden"
    assert "title" in body["reason"]
    assert (await get_doc(client, db, "bad"))[0] == 404


async def test_update_that_breaks_a_pack_is_refused_and_keeps_the_old_one(
    client: TestClient, db: str
) -> None:
    rev = await put_doc(client, db, "p", pack())
    (result,) = await bulk(client, db, [{"_id": "p", "_rev": rev, **pack(language="??")}])
    assert result["error"] == "forbidden"
    assert (await get_doc(client, db, "p"))[1] == {"_id": "p", "_rev": rev, **pack()}


async def test_non_pack_documents_are_not_validated(client: TestClient, db: str) -> None:
    (result,) = await bulk(client, db, [{"_id": "note", "type": "note", "title": ""}])
    assert result["ok"] is True


async def test_deleting_a_pack_is_not_validated(client: TestClient, db: str) -> None:
    rev = await put_doc(client, db, "p", pack())
    # A tombstone that still carries an invalid pack body is accepted: deletions are not judged.
    (result,) = await bulk(
        client, db, [{"_id": "p", "_rev": rev, "_deleted": True, **pack(title="", language="")}]
    )
    assert result["ok"] is True
    status, body = await get_doc(client, db, "p")
    assert (status, body["reason"]) == (404, "deleted")


async def test_deleting_a_pack_with_delete_request(client: TestClient, db: str) -> None:
    rev = await put_doc(client, db, "p", pack())
    resp = await client.delete(f"/{db}/p", params={"rev": rev})
    assert resp.status == 200
    assert (await get_doc(client, db, "p"))[0] == 404


# --- _local documents in a bulk write (CouchDB keeps them out of the revision trees) ---------


async def get_local(client: TestClient, db: str, name: str) -> tuple[int, dict[str, Any]]:
    resp = await client.get(f"/{db}/_local/{name}")
    return resp.status, await resp.json()


async def test_local_doc_in_bulk_is_stored_as_a_local_doc(client: TestClient, db: str) -> None:
    results = await bulk(client, db, [{"_id": "_local/cp", "seq": 7}, {"_id": "a"}])
    assert results[0] == {"ok": True, "id": "_local/cp", "rev": "0-1"}
    assert results[1]["ok"] is True
    assert await get_local(client, db, "cp") == (200, {"_id": "_local/cp", "_rev": "0-1", "seq": 7})
    changes = await (await client.get(f"/{db}/_changes")).json()
    assert [row["id"] for row in changes["results"]] == ["a"]
    all_docs = await (await client.get(f"/{db}/_all_docs")).json()
    assert [row["id"] for row in all_docs["rows"]] == ["a"]
    assert await update_seq(client, db) == 1


async def test_local_doc_in_bulk_needs_its_current_rev(client: TestClient, db: str) -> None:
    await bulk(client, db, [{"_id": "_local/cp", "v": 1}])
    results = await bulk(
        client,
        db,
        [{"_id": "_local/cp", "_rev": "0-1", "v": 2}, {"_id": "_local/cp", "_rev": "0-1", "v": 3}],
    )
    assert results[0] == {"ok": True, "id": "_local/cp", "rev": "0-2"}
    assert results[1] == {
        "id": "_local/cp",
        "error": "conflict",
        "reason": "Document update conflict.",
    }
    assert (await get_local(client, db, "cp"))[1]["v"] == 2


async def test_local_doc_in_bulk_can_be_deleted(client: TestClient, db: str) -> None:
    await bulk(client, db, [{"_id": "_local/cp", "v": 1}])
    results = await bulk(client, db, [{"_id": "_local/cp", "_rev": "0-1", "_deleted": True}])
    assert results == [{"ok": True, "id": "_local/cp", "rev": "0-0"}]
    assert (await get_local(client, db, "cp"))[0] == 404


async def test_local_doc_in_replicated_bulk_counts_on_from_its_rev(
    client: TestClient, db: str
) -> None:
    # CouchDB 3 (apache/couchdb#1683): listed only if it fails; stored as 0-2 here.
    results = await bulk(client, db, [{"_id": "_local/alice", "_rev": "0-1", "name": "A"}], False)
    assert results == []
    status, doc = await get_local(client, db, "alice")
    assert (status, doc["_rev"], doc["name"]) == (200, "0-2", "A")


@pytest.mark.parametrize("rev", ["1-abc", "0-x", 5])
async def test_local_doc_in_bulk_with_a_bad_rev_fails_alone(
    client: TestClient, db: str, rev: Any
) -> None:
    results = await bulk(client, db, [{"_id": "_local/cp", "_rev": rev}, {"_id": "b"}])
    assert results[0]["error"] == "bad_request"
    assert results[1]["ok"] is True
    assert (await get_local(client, db, "cp"))[0] == 404


async def test_local_doc_in_bulk_with_a_bad_special_member_fails_alone(
    client: TestClient, db: str
) -> None:
    results = await bulk(client, db, [{"_id": "_local/cp", "_bogus": 1}, {"_id": "b"}])
    assert results[0] == {
        "id": "_local/cp",
        "error": "doc_validation",
        "reason": "Bad special document member: _bogus",
    }
    assert results[1]["ok"] is True
