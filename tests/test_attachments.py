"""Attachments as CouchDB defines them, over HTTP against a real server.

Inline base64 in a document write, stubs on read, ``attachments=true`` and ``atts_since``,
``open_revs`` and ``_bulk_get``; stubs keeping an attachment across edits (412 for one the
parent revision lacks); the standalone ``PUT/GET/HEAD/DELETE /{db}/{docid}/{attname}`` routes
with ETags and ``Range``; bodies stored once per digest and dropped by compaction only when no
kept revision refers to them.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from syncd.config import Settings

TEXT = b"The quick brown fox jumps over the lazy dog"
EVERY_BYTE = bytes(range(256)) * 3


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def digest(data: bytes) -> str:
    return "md5-" + b64(hashlib.md5(data).digest())


def inline(data: bytes, content_type: str = "text/plain") -> dict[str, Any]:
    return {"content_type": content_type, "data": b64(data)}


async def put(client: TestClient, db: str, doc_id: str, body: dict[str, Any]) -> str:
    resp = await client.put(f"/{db}/{doc_id}", json=body)
    assert resp.status == 201, await resp.text()
    rev: str = (await resp.json())["rev"]
    return rev


async def get(client: TestClient, db: str, doc_id: str, **params: str) -> dict[str, Any]:
    resp = await client.get(f"/{db}/{doc_id}", params=params)
    assert resp.status == 200, await resp.text()
    doc: dict[str, Any] = await resp.json()
    return doc


async def put_att(
    client: TestClient,
    db: str,
    path: str,
    data: bytes,
    content_type: str = "text/plain",
    rev: str | None = None,
) -> str:
    params = {"rev": rev} if rev is not None else {}
    resp = await client.put(
        f"/{db}/{path}", data=data, params=params, headers={"Content-Type": content_type}
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["ok"] is True
    rev_out: str = body["rev"]
    return rev_out


async def update_seq(client: TestClient, db: str) -> int:
    seq: int = (await (await client.get(f"/{db}")).json())["update_seq"]
    return seq


def bodies(settings: Settings) -> dict[str, bytes]:
    """The att_bodies table: digest -> bytes."""
    with sqlite3.connect(settings.database_path) as conn:
        return {d: bytes(b) for d, b in conn.execute("SELECT digest, data FROM att_bodies")}


# inline attachments in document writes --------------------------------------------------------


async def test_inline_attachment_reads_back_as_a_stub(client: TestClient, db: str):
    rev = await put(client, db, "doc", {"_attachments": {"fox.txt": inline(TEXT)}})
    doc = await get(client, db, "doc")
    assert doc["_rev"] == rev
    assert doc["_attachments"] == {
        "fox.txt": {
            "content_type": "text/plain",
            "digest": digest(TEXT),
            "length": len(TEXT),
            "revpos": 1,
            "stub": True,
        }
    }


async def test_attachments_true_returns_the_data(client: TestClient, db: str):
    await put(client, db, "doc", {"_attachments": {"fox.txt": inline(TEXT)}})
    att = (await get(client, db, "doc", attachments="true"))["_attachments"]["fox.txt"]
    assert att["data"] == b64(TEXT)
    assert att["digest"] == digest(TEXT)
    assert att["content_type"] == "text/plain"
    assert att["revpos"] == 1
    assert "stub" not in att


async def test_atts_since_inlines_only_newer_attachments(client: TestClient, db: str):
    rev1 = await put(client, db, "doc", {"_attachments": {"old.txt": inline(b"old")}})
    rev2 = await put(
        client,
        db,
        "doc",
        {
            "_rev": rev1,
            "_attachments": {
                "old.txt": {"stub": True, "digest": digest(b"old")},
                "new.txt": inline(b"new"),
            },
        },
    )
    atts = (await get(client, db, "doc", atts_since=f'["{rev1}"]'))["_attachments"]
    assert atts["old.txt"]["stub"] is True
    assert "data" not in atts["old.txt"]
    assert atts["new.txt"]["data"] == b64(b"new")
    assert atts["new.txt"]["revpos"] == 2
    none_new = (await get(client, db, "doc", atts_since=f'["{rev2}"]'))["_attachments"]
    assert all(att.get("stub") is True for att in none_new.values())
    unknown = (await get(client, db, "doc", atts_since='["9-' + "f" * 32 + '"]'))["_attachments"]
    assert {name: att["data"] for name, att in unknown.items()} == {
        "old.txt": b64(b"old"),
        "new.txt": b64(b"new"),
    }


async def test_open_revs_with_attachments(client: TestClient, db: str):
    rev = await put(client, db, "doc", {"_attachments": {"fox.txt": inline(TEXT)}})
    resp = await client.get(
        f"/{db}/doc",
        params={"open_revs": f'["{rev}"]', "attachments": "true"},
        headers={"Accept": "application/json"},
    )
    assert resp.status == 200
    (entry,) = await resp.json()
    assert entry["ok"]["_attachments"]["fox.txt"]["data"] == b64(TEXT)
    resp = await client.get(
        f"/{db}/doc", params={"open_revs": "all"}, headers={"Accept": "application/json"}
    )
    (entry,) = await resp.json()
    assert entry["ok"]["_attachments"]["fox.txt"]["stub"] is True


async def test_bulk_get_with_attachments(client: TestClient, db: str):
    rev = await put(client, db, "doc", {"_attachments": {"fox.txt": inline(TEXT)}})
    request = {"docs": [{"id": "doc", "rev": rev}]}
    resp = await client.post(f"/{db}/_bulk_get", params={"attachments": "true"}, json=request)
    assert resp.status == 200
    (result,) = (await resp.json())["results"]
    att = result["docs"][0]["ok"]["_attachments"]["fox.txt"]
    assert att["data"] == b64(TEXT)
    resp = await client.post(f"/{db}/_bulk_get", json=request)
    (result,) = (await resp.json())["results"]
    assert result["docs"][0]["ok"]["_attachments"]["fox.txt"]["stub"] is True


async def test_bulk_get_honours_atts_since(client: TestClient, db: str):
    rev1 = await put(client, db, "doc", {"_attachments": {"old.txt": inline(b"old")}})
    rev2 = await put(
        client,
        db,
        "doc",
        {"_rev": rev1, "_attachments": {"old.txt": {"stub": True}, "new.txt": inline(b"new")}},
    )
    request = {"docs": [{"id": "doc", "rev": rev2, "atts_since": [rev1]}]}
    resp = await client.post(f"/{db}/_bulk_get", params={"attachments": "true"}, json=request)
    atts = (await resp.json())["results"][0]["docs"][0]["ok"]["_attachments"]
    assert atts["old.txt"]["stub"] is True
    assert atts["new.txt"]["data"] == b64(b"new")


async def test_a_stub_keeps_the_attachment_across_edits(client: TestClient, db: str):
    rev1 = await put(client, db, "doc", {"_attachments": {"fox.txt": inline(TEXT)}})
    stub = (await get(client, db, "doc"))["_attachments"]["fox.txt"]
    rev2 = await put(client, db, "doc", {"_rev": rev1, "v": 2, "_attachments": {"fox.txt": stub}})
    rev3 = await put(
        client, db, "doc", {"_rev": rev2, "v": 3, "_attachments": {"fox.txt": {"stub": True}}}
    )
    doc = await get(client, db, "doc")
    assert doc["_rev"] == rev3
    assert doc["_attachments"]["fox.txt"] == stub  # revpos stays that of the upload
    resp = await client.get(f"/{db}/doc/fox.txt")
    assert await resp.read() == TEXT


async def test_an_edit_without_attachments_drops_them(client: TestClient, db: str):
    rev1 = await put(client, db, "doc", {"_attachments": {"fox.txt": inline(TEXT)}})
    await put(client, db, "doc", {"_rev": rev1, "v": 2})
    doc = await get(client, db, "doc")
    assert "_attachments" not in doc
    assert (await client.get(f"/{db}/doc/fox.txt")).status == 404
    old = await get(client, db, "doc", rev=rev1)  # the earlier revision still has it
    assert "fox.txt" in old["_attachments"]


async def test_a_stub_the_parent_lacks_is_412_and_writes_nothing(client: TestClient, db: str):
    rev1 = await put(client, db, "doc", {"v": 1})
    seq = await update_seq(client, db)
    resp = await client.put(
        f"/{db}/doc",
        json={"_rev": rev1, "v": 2, "_attachments": {"ghost.txt": {"stub": True}}},
    )
    assert resp.status == 412
    assert (await resp.json())["error"] == "missing_stub"
    assert (await get(client, db, "doc"))["_rev"] == rev1
    assert await update_seq(client, db) == seq


async def test_a_stub_for_an_attachment_dropped_by_the_parent_is_412(client: TestClient, db: str):
    """Only the parent revision counts, not an older one that still has the attachment."""
    rev1 = await put(client, db, "doc", {"_attachments": {"fox.txt": inline(TEXT)}})
    rev2 = await put(client, db, "doc", {"_rev": rev1, "v": 2})
    resp = await client.put(
        f"/{db}/doc",
        json={"_rev": rev2, "v": 3, "_attachments": {"fox.txt": {"stub": True}}},
    )
    assert resp.status == 412, await resp.text()
    assert (await resp.json())["error"] == "missing_stub"
    assert (await get(client, db, "doc"))["_rev"] == rev2


async def test_a_stub_in_a_bulk_write_is_412_for_that_doc_only(client: TestClient, db: str):
    resp = await client.post(
        f"/{db}/_bulk_docs",
        json={
            "docs": [
                {"_id": "bad", "_attachments": {"ghost.txt": {"stub": True}}},
                {"_id": "good"},
            ]
        },
    )
    assert resp.status == 201
    bad, good = await resp.json()
    assert bad["error"] == "missing_stub"
    assert good["ok"] is True
    assert (await client.get(f"/{db}/bad")).status == 404


@pytest.mark.parametrize("data", ["not base64!", "YW==YWJj", "YQ", "YWJj*", 5, None])
async def test_invalid_base64_is_400(client: TestClient, db: str, data: Any):
    resp = await client.put(
        f"/{db}/doc", json={"_attachments": {"a.bin": {"content_type": "x/y", "data": data}}}
    )
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"
    assert (await client.get(f"/{db}/doc")).status == 404


# the standalone attachment routes ------------------------------------------------------------


async def test_put_attachment_creates_the_document(client: TestClient, db: str):
    rev = await put_att(client, db, "new/fox.txt", TEXT, "text/plain")
    assert rev.startswith("1-")
    doc = await get(client, db, "new")
    assert doc["_rev"] == rev
    assert doc["_attachments"]["fox.txt"]["digest"] == digest(TEXT)
    assert set(doc) == {"_id", "_rev", "_attachments"}


async def test_put_attachment_keeps_the_body_and_other_attachments(client: TestClient, db: str):
    rev1 = await put(client, db, "doc", {"v": 1, "_attachments": {"a.txt": inline(b"a")}})
    rev2 = await put_att(client, db, "doc/b.txt", b"b", rev=rev1)
    doc = await get(client, db, "doc")
    assert doc["_rev"] == rev2
    assert doc["v"] == 1
    assert set(doc["_attachments"]) == {"a.txt", "b.txt"}
    assert doc["_attachments"]["a.txt"]["revpos"] == 1
    assert doc["_attachments"]["b.txt"]["revpos"] == 2


async def test_put_attachment_replaces_one_of_the_same_name(client: TestClient, db: str):
    rev1 = await put_att(client, db, "doc/a.txt", b"first")
    await put_att(client, db, "doc/a.txt", b"second", "text/x-second", rev=rev1)
    resp = await client.get(f"/{db}/doc/a.txt")
    assert await resp.read() == b"second"
    assert resp.headers["Content-Type"] == "text/x-second"


async def test_put_attachment_needs_the_current_rev(client: TestClient, db: str):
    rev1 = await put(client, db, "doc", {"v": 1})
    rev2 = await put(client, db, "doc", {"_rev": rev1, "v": 2})
    for params in ({}, {"rev": rev1}, {"rev": "2-" + "0" * 32}):
        resp = await client.put(f"/{db}/doc/a.txt", data=b"x", params=params)
        assert resp.status == 409, params
        assert (await resp.json())["error"] == "conflict"
    doc = await get(client, db, "doc")
    assert doc["_rev"] == rev2
    assert "_attachments" not in doc


async def test_put_attachment_takes_the_rev_from_if_match(client: TestClient, db: str):
    rev1 = await put(client, db, "doc", {})
    resp = await client.put(f"/{db}/doc/a.txt", data=b"x", headers={"If-Match": rev1})
    assert resp.status == 201


async def test_get_attachment_sends_bytes_type_and_etag(client: TestClient, db: str):
    await put_att(client, db, "doc/page.html", b"<p>hi</p>", "text/html; charset=utf-8")
    resp = await client.get(f"/{db}/doc/page.html")
    assert resp.status == 200
    assert await resp.read() == b"<p>hi</p>"
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert resp.headers["ETag"] == '"' + digest(b"<p>hi</p>").removeprefix("md5-") + '"'


async def test_if_none_match_with_the_etag_is_304(client: TestClient, db: str):
    await put_att(client, db, "doc/a.txt", TEXT)
    etag = (await client.get(f"/{db}/doc/a.txt")).headers["ETag"]
    resp = await client.get(f"/{db}/doc/a.txt", headers={"If-None-Match": etag})
    assert resp.status == 304
    assert await resp.read() == b""
    other = await client.get(f"/{db}/doc/a.txt", headers={"If-None-Match": '"other"'})
    assert other.status == 200


async def test_get_attachment_of_an_earlier_rev(client: TestClient, db: str):
    rev1 = await put_att(client, db, "doc/a.txt", b"first")
    await put_att(client, db, "doc/a.txt", b"second", rev=rev1)
    resp = await client.get(f"/{db}/doc/a.txt", params={"rev": rev1})
    assert await resp.read() == b"first"


async def test_head_attachment_sends_headers_only(client: TestClient, db: str):
    await put_att(client, db, "doc/a.txt", TEXT)
    resp = await client.head(f"/{db}/doc/a.txt")
    assert resp.status == 200
    assert resp.headers["Content-Length"] == str(len(TEXT))
    assert resp.headers["Content-Type"] == "text/plain"
    assert resp.headers["ETag"] == '"' + digest(TEXT).removeprefix("md5-") + '"'
    assert await resp.read() == b""
    assert (await client.head(f"/{db}/doc/missing.txt")).status == 404


async def test_missing_attachment_document_or_database_is_404(client: TestClient, db: str):
    await put(client, db, "doc", {})
    for path in (f"/{db}/doc/none.txt", f"/{db}/nodoc/a.txt", "/no-such-db/doc/a.txt"):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert (await resp.json())["error"] == "not_found"


async def test_delete_attachment_writes_a_revision_without_it(client: TestClient, db: str):
    rev1 = await put(
        client, db, "doc", {"v": 1, "_attachments": {"a.txt": inline(b"a"), "b.txt": inline(b"b")}}
    )
    resp = await client.delete(f"/{db}/doc/a.txt", params={"rev": rev1})
    assert resp.status == 200
    body = await resp.json()
    assert body["ok"] is True
    assert body["rev"].startswith("2-")
    doc = await get(client, db, "doc")
    assert doc["_rev"] == body["rev"]
    assert doc["v"] == 1
    assert set(doc["_attachments"]) == {"b.txt"}
    assert (await client.get(f"/{db}/doc/a.txt")).status == 404


async def test_delete_attachment_missing_or_without_rev(client: TestClient, db: str):
    rev = await put(client, db, "doc", {"_attachments": {"a.txt": inline(b"a")}})
    resp = await client.delete(f"/{db}/doc/none.txt", params={"rev": rev})
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"
    resp = await client.delete(f"/{db}/doc/a.txt")
    assert resp.status == 409
    assert (await get(client, db, "doc"))["_rev"] == rev


async def test_attachment_names_may_contain_slashes(client: TestClient, db: str):
    rev = await put_att(client, db, "doc/dir/sub/file.txt", b"deep")
    doc = await get(client, db, "doc")
    assert set(doc["_attachments"]) == {"dir/sub/file.txt"}
    assert await (await client.get(f"/{db}/doc/dir/sub/file.txt")).read() == b"deep"
    encoded = await client.get(f"/{db}/doc/dir%2Fsub%2Ffile.txt")
    assert await encoded.read() == b"deep"
    resp = await client.delete(f"/{db}/doc/dir/sub/file.txt", params={"rev": rev})
    assert resp.status == 200
    assert "_attachments" not in await get(client, db, "doc")


async def test_design_documents_have_attachments(client: TestClient, db: str):
    rev1 = await put(client, db, "_design/app", {"views": {}})
    rev2 = await put_att(client, db, "_design/app/static/index.html", b"<html>", "text/html", rev1)
    ddoc = await get(client, db, "_design/app")
    assert ddoc["_rev"] == rev2
    assert ddoc["views"] == {}
    assert ddoc["_attachments"]["static/index.html"]["length"] == 6
    resp = await client.get(f"/{db}/_design/app/static/index.html")
    assert await resp.read() == b"<html>"
    assert resp.headers["Content-Type"] == "text/html"
    resp = await client.delete(f"/{db}/_design/app/static/index.html", params={"rev": rev2})
    assert resp.status == 200
    assert "_attachments" not in await get(client, db, "_design/app")


# Range requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-3", 0, 3),
        ("bytes=4-8", 4, 8),
        ("bytes=40-", 40, len(TEXT) - 1),
        ("bytes=-3", len(TEXT) - 3, len(TEXT) - 1),
        ("bytes=10-1000", 10, len(TEXT) - 1),
        ("bytes=-1000", 0, len(TEXT) - 1),
    ],
)
async def test_range_request_is_206_with_content_range(
    client: TestClient, db: str, header: str, start: int, end: int
):
    await put_att(client, db, "doc/fox.txt", TEXT)
    resp = await client.get(f"/{db}/doc/fox.txt", headers={"Range": header})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{len(TEXT)}"
    assert await resp.read() == TEXT[start : end + 1]
    assert resp.headers["Content-Length"] == str(end + 1 - start)


@pytest.mark.parametrize(
    "header", [f"bytes={len(TEXT)}-", "bytes=9-3", "bytes=-0", "bytes=100-200"]
)
async def test_unsatisfiable_range_is_416(client: TestClient, db: str, header: str):
    await put_att(client, db, "doc/fox.txt", TEXT)
    resp = await client.get(f"/{db}/doc/fox.txt", headers={"Range": header})
    assert resp.status == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(TEXT)}"


@pytest.mark.parametrize("header", ["items=0-3", "bytes=0-1,5-6", "bytes=a-b", "bytes 0-3"])
async def test_range_of_another_unit_or_several_ranges_is_ignored(
    client: TestClient, db: str, header: str
):
    await put_att(client, db, "doc/fox.txt", TEXT)
    resp = await client.get(f"/{db}/doc/fox.txt", headers={"Range": header})
    assert resp.status == 200
    assert "Content-Range" not in resp.headers
    assert await resp.read() == TEXT


# storage: one body per digest, kept while a kept revision refers to it ---------------------------


async def test_identical_bytes_are_stored_once(client: TestClient, db: str, settings: Settings):
    await put(client, db, "one", {"_attachments": {"a.bin": inline(EVERY_BYTE, "x/y")}})
    await put(client, db, "two", {"_attachments": {"b.bin": inline(EVERY_BYTE, "x/z")}})
    await put_att(client, db, "three/c.bin", EVERY_BYTE)
    assert bodies(settings) == {digest(EVERY_BYTE): EVERY_BYTE}


async def compact(client: TestClient, db: str) -> None:
    resp = await client.post(f"/{db}/_compact", json={})
    assert resp.status == 202, await resp.text()


async def test_compaction_drops_a_body_only_when_no_kept_revision_uses_it(
    client: TestClient, db: str, settings: Settings
):
    shared, alone = b"shared bytes", b"only in one"
    rev_one = await put(
        client,
        db,
        "one",
        {"_attachments": {"s.txt": inline(shared), "o.txt": inline(alone)}},
    )
    rev_two = await put(client, db, "two", {"_attachments": {"s.txt": inline(shared)}})
    assert set(bodies(settings)) == {digest(shared), digest(alone)}

    rev_one = await put(client, db, "one", {"_rev": rev_one})  # drops both attachments
    assert set(bodies(settings)) == {digest(shared), digest(alone)}  # rev 1 still has them
    await compact(client, db)
    assert set(bodies(settings)) == {digest(shared)}  # "two" still refers to it
    assert await (await client.get(f"/{db}/two/s.txt")).read() == shared

    resp = await client.delete(f"/{db}/two/s.txt", params={"rev": rev_two})
    assert resp.status == 200
    await compact(client, db)
    assert bodies(settings) == {}
    assert "_attachments" not in await get(client, db, "one")


async def test_compaction_keeps_bodies_of_conflicting_leaves(
    client: TestClient, db: str, settings: Settings
):
    left = {"_id": "x", "_rev": "1-" + "a" * 32, "_attachments": {"l.txt": inline(b"left")}}
    right = {"_id": "x", "_rev": "1-" + "b" * 32}
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": [left, right], "new_edits": False})
    assert resp.status == 201
    await compact(client, db)
    assert set(bodies(settings)) == {digest(b"left")}
    resp = await client.get(f"/{db}/x/l.txt", params={"rev": left["_rev"]})
    assert await resp.read() == b"left"


# binary data -------------------------------------------------------------------------------------


async def test_every_byte_value_round_trips_through_put_and_get(client: TestClient, db: str):
    await put_att(client, db, "doc/all.bin", EVERY_BYTE, "application/octet-stream")
    resp = await client.get(f"/{db}/doc/all.bin")
    assert await resp.read() == EVERY_BYTE
    doc = await get(client, db, "doc", attachments="true")
    assert base64.b64decode(doc["_attachments"]["all.bin"]["data"]) == EVERY_BYTE
    assert doc["_attachments"]["all.bin"]["digest"] == digest(EVERY_BYTE)


async def test_every_byte_value_round_trips_through_inline_base64(client: TestClient, db: str):
    await put(client, db, "doc", {"_attachments": {"all.bin": inline(EVERY_BYTE, "x/bin")}})
    resp = await client.get(f"/{db}/doc/all.bin")
    assert await resp.read() == EVERY_BYTE
    assert resp.headers["Content-Type"] == "x/bin"
    stub = (await get(client, db, "doc"))["_attachments"]["all.bin"]
    assert stub["length"] == len(EVERY_BYTE)
    assert stub["digest"] == digest(EVERY_BYTE)


async def test_empty_attachment(client: TestClient, db: str):
    await put_att(client, db, "doc/empty.txt", b"")
    resp = await client.get(f"/{db}/doc/empty.txt")
    assert resp.status == 200
    assert await resp.read() == b""
    assert (await get(client, db, "doc"))["_attachments"]["empty.txt"]["length"] == 0
