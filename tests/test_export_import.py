"""GET /{db}/_export and POST /{db}/_import: the packs of a database as one JSON file."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

JSON = {"Content-Type": "application/json"}


def pack(**overrides: Any) -> dict[str, Any]:
    """The fields of a valid pack document, some replaced."""
    doc: dict[str, Any] = {
        "type": "pack",
        "title": "Road trip",
        "language": "en",
        "prompts": [{"id": "p1", "text": "Where to?"}, {"id": "p2", "text": "Who drives?"}],
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-02T10:00:00Z",
    }
    doc.update(overrides)
    return doc


def export_file(*packs: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """An export file holding ``packs`` (each with its ``id``)."""
    data: dict[str, Any] = {
        "format": "syncd.packs",
        "version": 1,
        "exported_at": "2024-05-03T00:00:00Z",
        "packs": list(packs),
    }
    data.update(overrides)
    return data


async def bulk(client: TestClient, db: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": docs})
    assert resp.status == 201, await resp.text()
    results: list[dict[str, Any]] = await resp.json()
    assert all("ok" in r for r in results), results
    return results


async def put(client: TestClient, db: str, doc_id: str, body: dict[str, Any]) -> str:
    resp = await client.put(f"/{db}/{doc_id}", json=body)
    assert resp.status == 201, await resp.text()
    rev: str = (await resp.json())["rev"]
    return rev


async def get(client: TestClient, db: str, doc_id: str) -> dict[str, Any]:
    resp = await client.get(f"/{db}/{doc_id}")
    assert resp.status == 200, await resp.text()
    doc: dict[str, Any] = await resp.json()
    return doc


async def attach(
    client: TestClient, db: str, doc_id: str, rev: str, name: str, data: bytes
) -> None:
    """Add the text/plain attachment ``name`` to revision ``rev`` of ``doc_id``."""
    resp = await client.put(
        f"/{db}/{doc_id}/{name}",
        params={"rev": rev},
        data=data,
        headers={"Content-Type": "text/plain"},
    )
    assert resp.status == 201, await resp.text()


async def export(client: TestClient, db: str, **params: str) -> dict[str, Any]:
    resp = await client.get(f"/{db}/_export", params=params)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = orjson.loads(await resp.read())
    return data


async def import_(client: TestClient, db: str, data: Any) -> dict[str, Any]:
    resp = await client.post(f"/{db}/_import", data=orjson.dumps(data), headers=JSON)
    assert resp.status == 200, await resp.text()
    report: dict[str, Any] = await resp.json()
    return report


async def update_seq(client: TestClient, db: str) -> int:
    seq: int = (await (await client.get(f"/{db}")).json())["update_seq"]
    return seq


async def new_db(client: TestClient) -> str:
    name = "db-" + uuid.uuid4().hex[:12]
    assert (await client.put(f"/{name}")).status == 201
    return name


# export -----------------------------------------------------------------------------------


async def test_export_is_a_json_attachment(client: TestClient, db: str) -> None:
    resp = await client.get(f"/{db}/_export")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    assert f'filename="{db}.packs.json"' in resp.headers["Content-Disposition"]


async def test_export_has_format_version_time_and_packs(client: TestClient, db: str) -> None:
    await put(client, db, "pack:a", pack())
    data = await export(client, db)
    assert list(data) == ["format", "version", "exported_at", "packs"]
    assert data["format"] == "syncd.packs"
    assert data["version"] == 1
    assert data["exported_at"].endswith("Z")
    when = datetime.fromisoformat(data["exported_at"].replace("Z", "+00:00"))
    assert when.utcoffset() is not None and when.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


async def test_export_of_a_database_without_packs_has_an_empty_list(
    client: TestClient, db: str
) -> None:
    assert (await export(client, db))["packs"] == []


async def test_export_entry_is_the_id_and_the_documents_own_fields(
    client: TestClient, db: str
) -> None:
    fields = pack(extra={"color": "blue"}, tags=["car"])
    await put(client, db, "pack:a", fields)
    (entry,) = (await export(client, db))["packs"]
    assert entry == {"id": "pack:a", **fields}
    assert next(iter(entry)) == "id"


async def test_export_lists_packs_in_doc_id_order(client: TestClient, db: str) -> None:
    ids = ["pack:b", "pack:a", "Pack:z", "pack:c", "pack:aa"]
    await bulk(client, db, [{"_id": i, **pack()} for i in ids])
    assert [p["id"] for p in (await export(client, db))["packs"]] == sorted(ids)


async def test_export_leaves_out_revision_metadata(client: TestClient, db: str) -> None:
    rev = await put(client, db, "pack:a", pack())
    await attach(client, db, "pack:a", rev, "cover.txt", b"hi")
    conflict = {"_id": "pack:a", "_rev": "1-abc", **pack(title="Other")}
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": [conflict], "new_edits": False})
    assert resp.status == 201
    (entry,) = (await export(client, db))["packs"]
    assert not [k for k in entry if k.startswith("_")]
    assert entry["title"] == (await get(client, db, "pack:a"))["title"]


async def test_export_excludes_documents_that_are_not_packs(client: TestClient, db: str) -> None:
    await bulk(
        client,
        db,
        [
            {"_id": "a", "type": "note", "text": "hello"},
            {"_id": "b", "title": "no type"},
            {"_id": "c", **pack()},
            {"_id": "_design/x", "views": {}},
        ],
    )
    assert [p["id"] for p in (await export(client, db))["packs"]] == ["c"]


async def test_export_excludes_deleted_packs(client: TestClient, db: str) -> None:
    await put(client, db, "pack:keep", pack())
    rev = await put(client, db, "pack:gone", pack())
    assert (await client.delete(f"/{db}/pack:gone", params={"rev": rev})).status == 200
    assert [p["id"] for p in (await export(client, db))["packs"]] == ["pack:keep"]


async def test_export_of_one_pack(client: TestClient, db: str) -> None:
    await bulk(client, db, [{"_id": i, **pack(title=i)} for i in ("pack:a", "pack:b", "pack:c")])
    data = await export(client, db, pack="pack:b")
    assert data["packs"] == [{"id": "pack:b", **pack(title="pack:b")}]


@pytest.mark.parametrize("doc_id", ["pack:missing", "note", "pack:deleted"])
async def test_export_of_a_missing_or_non_pack_is_404(
    client: TestClient, db: str, doc_id: str
) -> None:
    await put(client, db, "note", {"type": "note"})
    rev = await put(client, db, "pack:deleted", pack())
    await client.delete(f"/{db}/pack:deleted", params={"rev": rev})
    resp = await client.get(f"/{db}/_export", params={"pack": doc_id})
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


async def test_export_of_a_missing_database_is_404(client: TestClient) -> None:
    resp = await client.get("/no-such-db/_export")
    assert resp.status == 404
    assert (await resp.json())["reason"] == "Database does not exist."


async def test_large_export_streams_every_pack(client: TestClient, db: str) -> None:
    ids = [f"pack:{n:05d}" for n in range(3000)]
    for start in range(0, len(ids), 1000):
        await bulk(client, db, [{"_id": i, **pack(title=i)} for i in ids[start : start + 1000]])
    resp = await client.get(f"/{db}/_export")
    assert resp.status == 200
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in resp.headers
    data = orjson.loads(await resp.read())
    assert len(data["packs"]) == 3000
    assert [p["id"] for p in data["packs"]] == ids
    assert all(p["title"] == p["id"] for p in data["packs"])


# import -----------------------------------------------------------------------------------


async def test_round_trip_export_import_export_gives_the_same_packs(
    client: TestClient, db: str
) -> None:
    await bulk(
        client,
        db,
        [
            {"_id": "pack:1", **pack(title="One", language="pt-BR")},
            {"_id": "pack:2", **pack(title="Two", prompts=[])},
            {"_id": "pack:3", **pack(title="Three", extra={"nested": [1, 2.5, None, True]})},
            {"_id": "note", "type": "note"},
        ],
    )
    first = await export(client, db)
    target = await new_db(client)
    report = await import_(client, target, first)
    assert report["counts"] == {"created": 3, "updated": 0, "unchanged": 0, "rejected": 0}
    second = await export(client, target)
    del first["exported_at"], second["exported_at"]
    assert second == first


async def test_import_creates_new_packs(client: TestClient, db: str) -> None:
    report = await import_(client, db, export_file({"id": "pack:new", **pack()}))
    assert report["results"] == [{"id": "pack:new", "status": "created"}]
    doc = await get(client, db, "pack:new")
    assert doc["_rev"].startswith("1-")
    assert {k: v for k, v in doc.items() if not k.startswith("_")} == pack()


async def test_import_updates_an_existing_pack_on_top_of_its_winner(
    client: TestClient, db: str
) -> None:
    rev = await put(client, db, "pack:a", pack())
    rev = await put(client, db, "pack:a", {"_rev": rev, **pack(title="Second")})
    report = await import_(client, db, export_file({"id": "pack:a", **pack(title="Imported")}))
    assert report["results"] == [{"id": "pack:a", "status": "updated"}]
    resp = await client.get(f"/{db}/pack:a", params={"revs": "true"})
    doc = await resp.json()
    assert doc["title"] == "Imported"
    assert doc["_rev"].startswith("3-")
    assert doc["_revisions"]["ids"][1] == rev.split("-", 1)[1]


async def test_import_recreates_a_deleted_pack(client: TestClient, db: str) -> None:
    rev = await put(client, db, "pack:a", pack())
    await client.delete(f"/{db}/pack:a", params={"rev": rev})
    report = await import_(client, db, export_file({"id": "pack:a", **pack(title="Back")}))
    assert report["results"] == [{"id": "pack:a", "status": "created"}]
    doc = await get(client, db, "pack:a")
    assert doc["title"] == "Back"
    assert doc["_rev"].startswith("3-")


async def test_import_of_an_identical_pack_is_unchanged_and_not_rewritten(
    client: TestClient, db: str
) -> None:
    rev = await put(client, db, "pack:a", pack())
    seq = await update_seq(client, db)
    reordered = dict(reversed(list(pack().items())))
    report = await import_(client, db, export_file({"id": "pack:a", **reordered}))
    assert report["results"] == [{"id": "pack:a", "status": "unchanged"}]
    assert (await get(client, db, "pack:a"))["_rev"] == rev
    assert await update_seq(client, db) == seq


async def test_import_keeps_the_attachments_of_an_updated_pack(client: TestClient, db: str) -> None:
    rev = await put(client, db, "pack:a", pack())
    await attach(client, db, "pack:a", rev, "cover.txt", b"cover")
    report = await import_(client, db, export_file({"id": "pack:a", **pack(title="New")}))
    assert report["counts"]["updated"] == 1
    doc = await get(client, db, "pack:a")
    assert doc["title"] == "New"
    assert list(doc["_attachments"]) == ["cover.txt"]
    assert await (await client.get(f"/{db}/pack:a/cover.txt")).read() == b"cover"


async def test_import_does_not_overwrite_a_document_that_is_not_a_pack(
    client: TestClient, db: str
) -> None:
    rev = await put(client, db, "note", {"type": "note", "text": "keep me"})
    report = await import_(client, db, export_file({"id": "note", **pack()}))
    assert report["results"] == [
        {"id": "note", "status": "rejected", "reason": "A document that is not a pack has this id."}
    ]
    assert (await get(client, db, "note"))["_rev"] == rev


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("a string", "A pack must be a JSON object."),
        ({"type": "pack", "title": "x", "language": "en"}, "The pack has no id."),
        ({"id": 7, **pack()}, "Document id must be a string"),
        ({"id": "", **pack()}, "Document id must not be empty"),
        ({"id": "_design/packs", **pack()}, "A pack id must not start with '_'."),
        ({"id": "_secret", **pack()}, "A pack id must not start with '_'."),
        ({"id": "pack:a", **pack(type="note")}, "type must be 'pack'."),
        ({"id": "pack:a", "title": "x", "language": "en"}, "type must be 'pack'."),
        ({"id": "pack:a", **pack(title="")}, "title must be a string of 1 to 200 characters"),
        ({"id": "pack:a", **pack(language="english!")}, "language must be a BCP 47"),
        (
            {"id": "pack:a", **pack(prompts=[{"id": "p", "text": "a"}, {"id": "p", "text": "b"}])},
            "prompts[1].id 'p' is not unique",
        ),
        (
            {"id": "pack:a", "_rev": "1-abc", **pack()},
            "Field '_rev' is not allowed: field names must not start with '_'.",
        ),
    ],
)
async def test_import_rejects_a_bad_pack_with_its_reason(
    client: TestClient, db: str, entry: Any, reason: str
) -> None:
    report = await import_(client, db, export_file(entry))
    (result,) = report["results"]
    assert result["status"] == "rejected"
    assert result["reason"].startswith(reason)
    assert result["id"] == (entry.get("id") if isinstance(entry, dict) else None)
    assert await update_seq(client, db) == 0


async def test_import_writes_the_good_packs_of_a_file_with_bad_ones(
    client: TestClient, db: str
) -> None:
    report = await import_(
        client,
        db,
        export_file(
            {"id": "pack:1", **pack()},
            {"id": "pack:2", **pack(title="")},
            {"id": "pack:3", **pack()},
        ),
    )
    assert [r["status"] for r in report["results"]] == ["created", "rejected", "created"]
    assert [p["id"] for p in (await export(client, db))["packs"]] == ["pack:1", "pack:3"]


async def test_import_rejects_a_second_pack_with_the_same_id(client: TestClient, db: str) -> None:
    report = await import_(
        client,
        db,
        export_file({"id": "pack:a", **pack(title="First")}, {"id": "pack:a", **pack()}),
    )
    assert report["results"] == [
        {"id": "pack:a", "status": "created"},
        {
            "id": "pack:a",
            "status": "rejected",
            "reason": "The id appears more than once in the file.",
        },
    ]
    assert (await get(client, db, "pack:a"))["title"] == "First"


async def test_import_reports_counts_of_every_status(client: TestClient, db: str) -> None:
    await put(client, db, "pack:same", pack())
    await put(client, db, "pack:old", pack())
    report = await import_(
        client,
        db,
        export_file(
            {"id": "pack:same", **pack()},
            {"id": "pack:old", **pack(title="Changed")},
            {"id": "pack:new1", **pack()},
            {"id": "pack:new2", **pack()},
            {"id": "pack:bad", **pack(language="")},
        ),
    )
    assert report["counts"] == {"created": 2, "updated": 1, "unchanged": 1, "rejected": 1}
    assert [r["status"] for r in report["results"]] == [
        "unchanged",
        "updated",
        "created",
        "created",
        "rejected",
    ]


async def test_import_of_more_packs_than_a_batch(client: TestClient, db: str) -> None:
    packs = [{"id": f"pack:{n:04d}", **pack(title=str(n))} for n in range(1200)]
    report = await import_(client, db, export_file(*packs))
    assert report["counts"]["created"] == 1200
    assert len((await export(client, db))["packs"]) == 1200


BAD_FILES = {
    "not JSON": b'{"format": "syncd.packs", ',
    "empty": b"",
    "not an object": orjson.dumps([export_file({"id": "pack:a", **pack()})]),
    "wrong format": orjson.dumps(export_file({"id": "pack:a", **pack()}, format="other")),
    "no format": orjson.dumps({"version": 1, "packs": [{"id": "pack:a", **pack()}]}),
    "wrong version": orjson.dumps(export_file({"id": "pack:a", **pack()}, version=2)),
    "version as text": orjson.dumps(export_file({"id": "pack:a", **pack()}, version="1")),
    "packs not a list": orjson.dumps(export_file(packs={"pack:a": pack()})),
    "no packs": orjson.dumps({"format": "syncd.packs", "version": 1}),
}

BAD_FILE_REASONS = {
    "not JSON": "The import file is not valid JSON",
    "empty": "The import file is empty.",
    "not an object": "The import file must be a JSON object",
    "wrong format": "The import file's format must be 'syncd.packs', not \"other\".",
    "no format": "The import file's format must be 'syncd.packs', not null.",
    "wrong version": "Version 2 of syncd.packs is not supported; this server reads version 1.",
    "version as text": 'Version "1" of syncd.packs is not supported',
    "packs not a list": "The import file's packs must be a list.",
    "no packs": "The import file's packs must be a list.",
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
async def test_a_bad_file_is_refused_with_400_and_nothing_is_written(
    client: TestClient, db: str, kind: str
) -> None:
    resp = await client.post(f"/{db}/_import", data=BAD_FILES[kind], headers=JSON)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request"
    assert body["reason"].startswith(BAD_FILE_REASONS[kind])
    assert await update_seq(client, db) == 0


async def test_import_needs_a_json_content_type(client: TestClient, db: str) -> None:
    resp = await client.post(
        f"/{db}/_import",
        data=orjson.dumps(export_file({"id": "pack:a", **pack()})),
        headers={"Content-Type": "text/plain"},
    )
    assert resp.status == 415
    assert await update_seq(client, db) == 0


async def test_import_into_a_missing_database_is_404(client: TestClient) -> None:
    resp = await client.post("/no-such-db/_import", data=orjson.dumps(export_file()), headers=JSON)
    assert resp.status == 404


# authorization ----------------------------------------------------------------------------


async def anonymous_account(anon_client: TestClient) -> tuple[dict[str, str], str]:
    """A new anonymous account: its Bearer header and its database."""
    resp = await anon_client.post("/v1/auth/anonymous")
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return {"Authorization": f"Bearer {body['access_token']}"}, body["account"]["db"]


async def test_the_owner_of_a_userdb_may_export_it(anon_client: TestClient) -> None:
    auth, userdb = await anonymous_account(anon_client)
    resp = await anon_client.put(f"/{userdb}/pack:mine", json=pack(), headers=auth)
    assert resp.status == 201, await resp.text()
    resp = await anon_client.get(f"/{userdb}/_export", headers=auth)
    assert resp.status == 200
    assert [p["id"] for p in orjson.loads(await resp.read())["packs"]] == ["pack:mine"]


async def test_the_owner_of_a_userdb_may_import_into_it(anon_client: TestClient) -> None:
    auth, userdb = await anonymous_account(anon_client)
    resp = await anon_client.post(
        f"/{userdb}/_import",
        data=orjson.dumps(export_file({"id": "pack:mine", **pack()})),
        headers={**auth, **JSON},
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["counts"]["created"] == 1
    resp = await anon_client.get(f"/{userdb}/pack:mine", headers=auth)
    assert resp.status == 200


async def test_another_account_may_not_export_a_userdb(anon_client: TestClient) -> None:
    _, userdb = await anonymous_account(anon_client)
    other, _ = await anonymous_account(anon_client)
    resp = await anon_client.get(f"/{userdb}/_export", headers=other)
    assert resp.status == 403
    assert (await resp.json())["error"] == "forbidden"


async def test_another_account_may_not_import_into_a_userdb(anon_client: TestClient) -> None:
    auth, userdb = await anonymous_account(anon_client)
    other, _ = await anonymous_account(anon_client)
    resp = await anon_client.post(
        f"/{userdb}/_import",
        data=orjson.dumps(export_file({"id": "pack:theirs", **pack()})),
        headers={**other, **JSON},
    )
    assert resp.status == 403
    assert (await anon_client.get(f"/{userdb}/pack:theirs", headers=auth)).status == 404


async def test_export_without_credentials_is_401(anon_client: TestClient, db: str) -> None:
    resp = await anon_client.get(f"/{db}/_export")
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthorized"


async def test_import_without_credentials_is_401(
    client: TestClient, anon_client: TestClient, db: str
) -> None:
    resp = await anon_client.post(
        f"/{db}/_import",
        data=orjson.dumps(export_file({"id": "pack:a", **pack()})),
        headers=JSON,
    )
    assert resp.status == 401
    assert await update_seq(client, db) == 0
