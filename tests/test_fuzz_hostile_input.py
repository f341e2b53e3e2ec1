"""Hostile input at the document and replication endpoints: refused, in CouchDB's shape, unwritten.

Hypothesis throws malformed, truncated and non-UTF-8 JSON, absurdly nested and oversized
bodies, bad document ids (in the body and in the URL, including percent-escapes that are not
UTF-8), bad revs, bad query parameters and JSON of the wrong types at ``PUT/GET/DELETE
/{db}/{docid}``, ``POST /{db}``, ``_bulk_docs`` (both ``new_edits`` modes), ``_bulk_get``,
``_revs_diff``, ``_all_docs``, ``_changes``, ``_local`` and attachments. Every answer must be a
4xx with CouchDB's ``{"error", "reason", "request_id"}`` body, and nothing may be written: the
database's ``update_seq``, ``doc_count``, ``_all_docs`` (with the bodies), its ``_local``
document and its attachment are the same after every request as before the first.

``_bulk_docs`` answers 201 even when every document fails (each fails alone, as in CouchDB), so
only bad documents are sent there and every entry of the answer must be an error;
``_bulk_get`` likewise reports a bad entry inside a 200. The server runs with small size limits
(``settings`` below) so that "too large" is cheap to reach.
"""

from __future__ import annotations

import dataclasses
import os
import string
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from yarl import URL

from syncd.config import Settings

MAX_REQUEST = 512 * 1024
MAX_DOCUMENT = 128 * 1024
MAX_INT = 2**63 - 1
NEGATIVE_INTS = st.integers(-(2**63), -1)  # orjson writes 64-bit integers only

FUZZ = hypothesis_settings(
    max_examples=int(os.environ.get("SYNCD_FUZZ_EXAMPLES", "75")),  # raise it for a deeper run
    deadline=None,
    # The fixtures (server, database, seeded rows) are shared by every example on purpose:
    # the point is that no example changes them.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """conftest's settings with small size limits."""
    return dataclasses.replace(
        settings, max_request_bytes=MAX_REQUEST, max_document_bytes=MAX_DOCUMENT
    )


# --- the seeded database and its snapshot ----------------------------------------------------


@dataclasses.dataclass
class Seeded:
    """A database with a document (and its attachment), a design doc and a _local doc."""

    client: TestClient
    db: str
    rev: str  # the current rev of "existing"
    baseline: tuple[Any, ...] = ()

    def url(self, path: str) -> URL:
        """``path`` (already percent-encoded) on the server, sent byte for byte."""
        base = str(self.client.server.make_url("/")).rstrip("/")
        return URL(base + path, encoded=True)

    async def send(self, method: str, path: str, **kwargs: Any) -> ClientResponse:
        resp = await self.client.session.request(method, self.url(path), **kwargs)
        await resp.read()
        return resp

    async def snapshot(self) -> tuple[Any, ...]:
        info = await (await self.send("GET", f"/{self.db}")).json()
        docs = await self.send(
            "GET", f"/{self.db}/_all_docs?include_docs=true&conflicts=true&update_seq=true"
        )
        local = await self.send("GET", f"/{self.db}/_local/checkpoint")
        att = await self.send("GET", f"/{self.db}/existing/note.txt")
        return (
            info["update_seq"],
            info["doc_count"],
            info["doc_del_count"],
            await docs.json(),
            await local.json(),
            await att.read(),
        )

    async def refused(self, resp: ClientResponse) -> dict[str, Any]:
        """Assert a 4xx in CouchDB's error shape and that nothing was written."""
        body = await resp.read()
        assert 400 <= resp.status < 500, (resp.status, resp.method, resp.url, body[:300])
        assert resp.content_type == "application/json", (resp.status, resp.url, body[:300])
        error = orjson.loads(body)
        assert isinstance(error, dict), body[:300]
        assert isinstance(error.get("error"), str) and error["error"], body[:300]
        assert isinstance(error.get("reason"), str), body[:300]
        assert isinstance(error.get("request_id"), str) and error["request_id"], body[:300]
        await self.unchanged()
        return error

    async def unchanged(self) -> None:
        assert await self.snapshot() == self.baseline


@pytest.fixture
async def seeded(client: TestClient, db: str) -> Seeded:
    resp = await client.put(f"/{db}/existing", json={"kind": "seed", "n": 1})
    assert resp.status == 201, await resp.text()
    rev = (await resp.json())["rev"]
    resp = await client.put(
        f"/{db}/existing/note.txt?rev={rev}", data=b"hello", headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 201, await resp.text()
    rev = (await resp.json())["rev"]
    resp = await client.put(f"/{db}/_design/app", json={"views": {}})
    assert resp.status == 201, await resp.text()
    resp = await client.put(f"/{db}/_local/checkpoint", json={"last_seq": 3})
    assert resp.status == 201, await resp.text()
    seeded = Seeded(client, db, rev)
    seeded.baseline = await seeded.snapshot()
    return seeded


JSON_HEADERS = {"Content-Type": "application/json"}

# --- strategies ------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
not_objects = json_values.filter(lambda v: not isinstance(v, dict))

# Invalid UTF-8: stray continuation bytes, overlong forms, surrogates, beyond U+10FFFF, cut off.
BAD_UTF8 = [b"\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]
BAD_UTF8_ESCAPES = ["%FF", "%80", "%C0%AF", "%ED%A0%80", "%F4%90%80%80", "%E2%82", "%C3%28"]


def _nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


@st.composite
def malformed_json(draw: st.DrawFn) -> bytes:
    """Bytes that are not a JSON object, or not JSON at all, or nested too deep to keep."""
    kind = draw(st.sampled_from(["truncated", "utf8", "surrogate", "junk", "deep", "other"]))
    if kind == "truncated":  # a proper prefix of an object is never valid JSON
        text = orjson.dumps(draw(json_objects.filter(bool)))
        return text[: draw(st.integers(1, len(text) - 1))]
    if kind == "utf8":
        value = draw(st.text(max_size=10)).encode()
        cut = draw(st.integers(0, len(value)))
        bad = draw(st.sampled_from(BAD_UTF8))
        return b'{"a":"' + value[:cut] + bad + value[cut:] + b'"}'
    if kind == "surrogate":  # a lone surrogate escape is not a Unicode string
        escape = draw(st.sampled_from([b"\\ud800", b"\\udfff", b"\\udbff"]))
        return draw(st.sampled_from([b'{"a":"x' + escape + b'"}', b'{"' + escape + b'":1}']))
    if kind == "junk":
        raw = draw(st.binary(min_size=1, max_size=60))
        try:
            if isinstance(orjson.loads(raw), dict):
                raw = raw + b"}"
        except orjson.JSONDecodeError:
            pass
        return raw
    if kind == "deep":  # past syncd's 128 levels, past orjson's 1024, and far past both
        depth = draw(st.sampled_from([129, 300, 1025, 100_000]))
        return draw(
            st.sampled_from(
                [
                    _nested(depth),
                    b'{"a":' + _nested(depth) + b"}",
                    b'{"docs":[' + _nested(depth) + b"]}",
                ]
            )
        )
    return orjson.dumps(draw(not_objects))


def _bad_rev_text(rev: str) -> bool:
    gen, sep, digest = rev.partition("-")
    well_formed = sep and digest and gen.isascii() and gen.isdigit() and len(gen) <= 9
    return not (well_formed and int(gen) >= 1)


bad_revs = st.one_of(
    st.sampled_from(["abc", "0-x", "-1-a", "1-", "-a", "1", "x-1", "", "²-a", "\u0661-a", "0-0"]),
    st.integers(10**9, 10**40).map(lambda n: f"{n}-abc"),
    st.text(string.ascii_letters + string.digits + "-_.", max_size=12).filter(_bad_rev_text),
)
# Well formed, but no such revision: a conflict, never a write.
unknown_revs = st.integers(1, 999_999_999).map(lambda n: f"{n}-0123456789abcdef")

bad_ids = st.one_of(
    st.sampled_from(["_bad", "_design", "_design/", "_local", "_foo/bar", "_all_docs_x"]),
    st.text(string.ascii_lowercase, min_size=1, max_size=10).map(lambda s: "_" + s),
    st.integers(1025, 3000).map(lambda n: "x" * n),
    st.integers(342, 1000).map(lambda n: "é€" * n),  # over 1024 bytes in UTF-8
)
body_bad_ids = st.one_of(
    bad_ids,
    st.just(""),
    st.just("_local/"),  # a _local id needs a name (_local/x is a local doc in _bulk_docs)
    json_values.filter(lambda v: not isinstance(v, str) and v is not None),
)

bad_ints = st.one_of(
    st.sampled_from(["", "abc", "1.5", "1e3", "0x10", "-1", "9" * 30, str(MAX_INT + 1), "true"]),
    st.integers(max_value=-1).map(str),
    st.integers(min_value=MAX_INT + 1).map(str),
    st.from_regex(r"\A[a-zA-Z.][a-zA-Z0-9.]{0,8}\Z"),  # never an integer to int()
)
bad_bools = st.one_of(
    st.sampled_from(["", "maybe", "1", "0", "yes", "TRUE", "False", "null"]),
    st.text(string.ascii_letters, min_size=1, max_size=6).filter(
        lambda s: s not in ("true", "false")
    ),
)
bad_json_params = st.sampled_from(["[", "{", "abc", "'a'", '"open', "[1,", "{]", "nul", "01"])

# --- one corrupted document ------------------------------------------------------------------

bad_attachments = st.one_of(
    not_objects,
    st.sampled_from(
        [
            {"a": "text"},
            {"a": 5},
            {"a": []},
            {"a": {}},
            {"a": {"data": 5}},
            {"a": {"data": None}},
            {"a": {"data": "!!not base64!!"}},
            {"a": {"data": "aGk", "content_type": "text/plain"}},
            {"a": {"data": "aGk=", "content_type": 5}},
            {"a": {"data": "aGk=", "content_type": None}},
            {"a": {"follows": True}},
            {"a": {"stub": True}},
            {"": {"data": "aGk="}},
            {"_a": {"data": "aGk="}},
            {"x" * 1025: {"data": "aGk="}},
        ]
    ),
)
bad_revisions = st.one_of(
    not_objects,
    st.fixed_dictionaries(
        {
            "start": st.one_of(
                json_values.filter(lambda v: type(v) is not int),
                st.integers(-(2**63), 0),
                st.integers(10**9, 2**64 - 1),
            ),
            "ids": st.just(["abc"]),
        }
    ),
    st.fixed_dictionaries(
        {
            "start": st.just(1),
            "ids": st.one_of(
                not_objects.filter(lambda v: not isinstance(v, list)),
                st.just([]),
                st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=3),
                st.just(["a-b"]),
                st.just([""]),
            ),
        }
    ),
    st.just({"start": 1, "ids": ["a", "b"]}),  # more ids than generations
)


@st.composite
def bad_docs(draw: st.DrawFn, *, doc_id: str | None = None, replicated: bool = False) -> Any:
    """A document that both ``new_edits`` modes must refuse: one member corrupted."""
    doc: dict[str, Any] = {
        "_id": doc_id or "new-" + draw(st.text(string.ascii_lowercase, min_size=1, max_size=8))
    }
    if replicated:
        doc["_rev"] = "1-0123456789abcdef"
    doc.update(
        draw(
            st.dictionaries(
                st.text(string.ascii_lowercase, min_size=1, max_size=6), json_values, max_size=3
            )
        )
    )
    corruption = draw(
        st.sampled_from(["id", "rev", "deleted", "attachments", "revisions", "special", "whole"])
    )
    if corruption == "id":
        doc["_id"] = draw(body_bad_ids)
    elif corruption == "rev":
        doc["_rev"] = draw(
            st.one_of(
                bad_revs, json_values.filter(lambda v: not isinstance(v, str) and v is not None)
            )
        )
    elif corruption == "deleted":
        doc["_deleted"] = draw(json_values.filter(lambda v: not isinstance(v, bool)))
    elif corruption == "attachments":
        doc["_attachments"] = draw(bad_attachments)
    elif corruption == "revisions":
        doc["_revisions"] = draw(bad_revisions)
    elif corruption == "special":
        name = "_" + draw(st.text(string.ascii_lowercase, min_size=1, max_size=8))
        if name in (
            "_id",
            "_rev",
            "_deleted",
            "_attachments",
            "_revisions",
            "_conflicts",
            "_local_seq",
            "_revs_info",
            "_deleted_conflicts",
        ):
            name = "_bogus"
        doc[name] = draw(json_values)
    else:
        return draw(not_objects)
    return doc


def _bad_id_path(raw_id: str) -> str:
    return quote(raw_id, safe="")


url_bad_ids = st.one_of(
    bad_ids.map(_bad_id_path).filter(lambda path: len(path) < 7000),  # aiohttp reads 8 KiB lines
    st.tuples(
        st.text(string.ascii_lowercase, max_size=4),
        st.sampled_from(BAD_UTF8_ESCAPES),
        st.text(string.ascii_lowercase, max_size=4),
    ).map("".join),
)

# --- malformed and oversized bodies ----------------------------------------------------------

JSON_TARGETS = [
    ("PUT", "/{db}/existing"),
    ("PUT", "/{db}/fresh"),
    ("POST", "/{db}"),
    ("POST", "/{db}/_bulk_docs"),
    ("POST", "/{db}/_bulk_get"),
    ("POST", "/{db}/_revs_diff"),
    ("POST", "/{db}/_all_docs"),
    ("POST", "/{db}/_changes"),
    ("PUT", "/{db}/_local/checkpoint"),
    ("PUT", "/{db}/_local/fresh"),
    ("PUT", "/{db}/_design/fresh"),
]


@FUZZ
@given(body=malformed_json(), target=st.sampled_from(JSON_TARGETS))
async def test_malformed_json_is_refused(
    seeded: Seeded, body: bytes, target: tuple[str, str]
) -> None:
    method, path = target
    resp = await seeded.send(method, path.format(db=seeded.db), data=body, headers=JSON_HEADERS)
    await seeded.refused(resp)


async def test_oversized_bodies_are_refused(seeded: Seeded) -> None:
    db = seeded.db
    too_big_request = b'{"a":"' + b"x" * MAX_REQUEST + b'"}'
    for method, path in JSON_TARGETS:
        resp = await seeded.send(
            method, path.format(db=db), data=too_big_request, headers=JSON_HEADERS
        )
        error = await seeded.refused(resp)
        assert resp.status == 413, (path, error)

    big = "x" * (MAX_DOCUMENT + 1)  # over the document limit, under the request limit
    for method, path, body in [
        ("PUT", f"/{db}/existing", {"_rev": seeded.rev, "a": big}),
        ("PUT", f"/{db}/fresh", {"a": big}),
        ("POST", f"/{db}", {"a": big}),
        ("PUT", f"/{db}/_local/checkpoint", {"_rev": "0-1", "a": big}),
    ]:
        resp = await seeded.send(method, path, json=body)
        error = await seeded.refused(resp)
        assert resp.status == 413, (path, error)
    for new_edits in (True, False):
        docs = [{"_id": "big", "_rev": "1-0123456789abcdef", "a": big}]
        resp = await seeded.send(
            "POST", f"/{db}/_bulk_docs", json={"docs": docs, "new_edits": new_edits}
        )
        await _every_doc_failed(seeded, resp, len(docs))


async def _every_doc_failed(seeded: Seeded, resp: ClientResponse, count: int) -> None:
    """``_bulk_docs``: 201 with one error per document, and nothing written."""
    body = await resp.json()
    assert resp.status == 201, body
    assert isinstance(body, list) and len(body) == count, body
    for entry in body:
        assert isinstance(entry.get("error"), str) and isinstance(entry.get("reason"), str), body
        assert "ok" not in entry, body
    await seeded.unchanged()


# --- bad document ids ------------------------------------------------------------------------


@FUZZ
@given(doc_id=url_bad_ids, action=st.sampled_from(["get", "put", "delete", "att", "local"]))
async def test_bad_ids_in_the_url_are_refused(seeded: Seeded, doc_id: str, action: str) -> None:
    db = seeded.db
    if action == "get":
        resp = await seeded.send("GET", f"/{db}/{doc_id}")
    elif action == "put":
        resp = await seeded.send("PUT", f"/{db}/{doc_id}", json={"a": 1})
    elif action == "delete":
        resp = await seeded.send("DELETE", f"/{db}/{doc_id}?rev={seeded.rev}")
    elif action == "att":
        resp = await seeded.send(
            "PUT", f"/{db}/{doc_id}/note.txt", data=b"x", headers={"Content-Type": "text/plain"}
        )
    else:
        resp = await seeded.send("PUT", f"/{db}/_local/{doc_id}", json={"a": 1})
        if resp.status < 400:  # a bad *document* id can be a fine _local name ("_bad")
            assert not any(e in doc_id for e in BAD_UTF8_ESCAPES), doc_id
            await seeded.send("DELETE", f"/{db}/_local/{doc_id}?rev=0-1")
            return
    await seeded.refused(resp)


@FUZZ
@given(
    doc_id=st.one_of(body_bad_ids, st.just("_local/x")),
    mode=st.sampled_from(["post", "bulk", "replicate"]),
)
async def test_bad_ids_in_the_body_are_refused(seeded: Seeded, doc_id: Any, mode: str) -> None:
    db = seeded.db
    doc = {"_id": doc_id, "a": 1}
    if doc_id == "_local/x" and mode == "bulk":
        return  # a local document, written apart (tests/test_bulk_docs.py); POST refuses it
    if mode == "post":
        await seeded.refused(await seeded.send("POST", f"/{db}", json=doc))
        return
    if mode == "replicate":
        doc["_rev"] = "1-0123456789abcdef"
    body = {"docs": [doc], "new_edits": mode == "bulk"}
    await _every_doc_failed(seeded, await seeded.send("POST", f"/{db}/_bulk_docs", json=body), 1)


# --- bad revs --------------------------------------------------------------------------------

REV_WRITES = ["query", "body", "if-match", "delete", "att_put", "att_delete", "bulk"]
REV_READS = ["get", "open_revs", "revs_diff", "replicate", "put_replicated", "local"]


@FUZZ
@given(
    rev=st.one_of(bad_revs, unknown_revs),
    where=st.sampled_from(REV_WRITES + REV_READS),
)
async def test_bad_revs_are_refused(seeded: Seeded, rev: str, where: str) -> None:
    db = seeded.db
    if where in REV_READS and not _bad_rev_text(rev):
        # A well-formed unknown rev is a fine question here ("missing"), or with
        # new_edits=false a new branch; only malformed ones must be refused.
        rev = "abc"
    q = quote(rev, safe="")
    send = seeded.send
    if where == "query":
        resp = await send("PUT", f"/{db}/existing?rev={q}", json={"n": 2})
    elif where == "body":
        resp = await send("PUT", f"/{db}/existing", json={"_rev": rev, "n": 2})
    elif where == "if-match":
        header = rev if rev.isascii() else "abc"
        resp = await send("PUT", f"/{db}/existing", json={"n": 2}, headers={"If-Match": header})
    elif where == "delete":
        resp = await send("DELETE", f"/{db}/existing?rev={q}")
    elif where == "att_put":
        resp = await send("PUT", f"/{db}/existing/other.txt?rev={q}", data=b"x")
    elif where == "att_delete":
        resp = await send("DELETE", f"/{db}/existing/note.txt?rev={q}")
    elif where == "bulk":
        body = {"docs": [{"_id": "existing", "_rev": rev, "n": 2}]}
        await _every_doc_failed(seeded, await send("POST", f"/{db}/_bulk_docs", json=body), 1)
        return
    elif where == "get":
        resp = await send("GET", f"/{db}/existing?rev={q}")
    elif where == "open_revs":
        resp = await send("GET", f"/{db}/existing?open_revs={quote(orjson.dumps([rev]))}")
    elif where == "revs_diff":
        resp = await send("POST", f"/{db}/_revs_diff", json={"existing": [rev]})
    elif where == "replicate":
        body = {"docs": [{"_id": "existing", "_rev": rev, "n": 2}], "new_edits": False}
        await _every_doc_failed(seeded, await send("POST", f"/{db}/_bulk_docs", json=body), 1)
        return
    elif where == "put_replicated":
        resp = await send("PUT", f"/{db}/existing?new_edits=false", json={"_rev": rev, "n": 2})
    else:
        if rev in ("0-1", "0-01", "0-001"):  # the _local doc's current rev: a fine update
            rev = "0-x"
        resp = await send("PUT", f"/{db}/_local/checkpoint", json={"_rev": rev, "n": 2})
    await seeded.refused(resp)


# --- bad query parameters --------------------------------------------------------------------


@st.composite
def bad_queries(draw: st.DrawFn) -> tuple[str, str, dict[str, str], Any]:
    """(method, path under the db, one bad query parameter, JSON body or None)."""
    target = draw(
        st.sampled_from(["all_docs", "all_docs_post", "changes", "doc", "write", "bulk_get"])
    )
    if target in ("all_docs", "all_docs_post"):
        name = draw(
            st.sampled_from(
                [
                    "limit",
                    "skip",
                    "descending",
                    "include_docs",
                    "inclusive_end",
                    "conflicts",
                    "update_seq",
                    "key",
                    "keys",
                    "startkey",
                    "endkey",
                    "start_key",
                    "end_key",
                ]
            )
        )
        if name in ("limit", "skip"):
            value = draw(bad_ints)
        elif name in ("key", "keys", "startkey", "endkey", "start_key", "end_key"):
            value = draw(
                bad_json_params
                if name != "keys"
                else bad_json_params | st.sampled_from(["5", "{}", '"x"', "true"])
            )
        else:
            value = draw(bad_bools)
        if target == "all_docs":
            return "GET", "/_all_docs", {name: value}, None
        return "POST", "/_all_docs", {name: value}, {}
    if target == "changes":
        name = draw(
            st.sampled_from(
                [
                    "since",
                    "limit",
                    "feed",
                    "style",
                    "descending",
                    "include_docs",
                    "conflicts",
                    "attachments",
                    "heartbeat",
                    "timeout",
                    "seq_interval",
                    "doc_ids",
                    "filter",
                ]
            )
        )
        params: dict[str, str]
        if name == "since":
            params = {
                "since": draw(
                    st.sampled_from(
                        ["xyz", "-1", "1.5", "", "now1", "9" * 20, str(MAX_INT + 1), "{}", "[1]"]
                    )
                )
            }
        elif name in ("limit", "heartbeat", "timeout"):
            params = {name: draw(bad_ints.filter(lambda v: v != "true"))}
        elif name == "seq_interval":
            params = {name: draw(bad_ints | st.just("0"))}
        elif name == "feed":
            params = {
                "feed": draw(
                    st.text(string.ascii_letters, min_size=1, max_size=8).filter(
                        lambda f: f not in ("normal", "longpoll", "continuous", "eventsource")
                    )
                )
            }
        elif name == "style":
            params = {
                "style": draw(
                    st.text(string.ascii_letters + "_", min_size=1, max_size=8).filter(
                        lambda s: s not in ("main_only", "all_docs")
                    )
                )
            }
        elif name == "doc_ids":
            params = {
                "filter": "_doc_ids",
                "doc_ids": draw(
                    bad_json_params | st.sampled_from(["5", "{}", "[1]", "[null]", '"x"'])
                ),
            }
        elif name == "filter":
            params = {"filter": draw(st.sampled_from(["nope", "_view", "_selector", "/x", "x/"]))}
        else:
            params = {name: draw(bad_bools)}
        return "GET", "/_changes", params, None
    if target == "doc":
        name = draw(
            st.sampled_from(
                [
                    "rev",
                    "revs",
                    "revs_info",
                    "conflicts",
                    "deleted_conflicts",
                    "meta",
                    "local_seq",
                    "latest",
                    "attachments",
                    "open_revs",
                    "atts_since",
                ]
            )
        )
        if name == "rev":
            value = draw(bad_revs)
        elif name == "open_revs":
            value = draw(
                bad_json_params | st.sampled_from(["{}", "[1]", '"x"', "[null]", '["abc"]'])
            )
        elif name == "atts_since":
            value = draw(bad_json_params | st.sampled_from(["5", "[1]", "{}"]))
        else:
            value = draw(bad_bools)
        return "GET", "/existing", {name: value}, None
    if target == "write":
        return "PUT", "/existing", {"new_edits": draw(bad_bools)}, {"n": 2}
    name = draw(st.sampled_from(["revs", "latest", "attachments"]))
    return "POST", "/_bulk_get", {name: draw(bad_bools)}, {"docs": [{"id": "existing"}]}


@FUZZ
@given(query=bad_queries())
async def test_bad_query_parameters_are_refused(
    seeded: Seeded, query: tuple[str, str, dict[str, str], Any]
) -> None:
    method, path, params, body = query
    if method == "PUT":  # the write would go through with the right rev: only the param is bad
        params = {"rev": seeded.rev, **params}
    encoded = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    resp = await seeded.send(method, f"/{seeded.db}{path}?{encoded}", **kwargs)
    await seeded.refused(resp)


# --- JSON of the wrong types -----------------------------------------------------------------


@st.composite
def wrong_types(draw: st.DrawFn) -> tuple[str, str, Any]:
    """(method, path under the db, a JSON body with a member of the wrong type)."""
    target = draw(
        st.sampled_from(
            [
                "put_existing",
                "put_fresh",
                "post",
                "bulk_docs",
                "bulk_get",
                "revs_diff",
                "all_docs",
                "changes",
                "local",
            ]
        )
    )
    if target == "put_existing":
        doc = draw(bad_docs(doc_id="existing"))
        if isinstance(doc, dict) and "_rev" not in doc:
            doc["_rev"] = "<current>"
        return "PUT", "/existing", doc
    if target == "put_fresh":
        return "PUT", "/fresh", draw(bad_docs(doc_id="fresh"))
    if target == "post":
        return "POST", "", draw(bad_docs())
    if target == "bulk_docs":
        return (
            "POST",
            "/_bulk_docs",
            draw(
                st.one_of(
                    not_objects,
                    st.fixed_dictionaries(
                        {"docs": not_objects.filter(lambda v: not isinstance(v, list))}
                    ),
                    st.fixed_dictionaries(
                        {
                            "docs": st.just([]),
                            "new_edits": json_values.filter(lambda v: not isinstance(v, bool)),
                        }
                    ),
                )
            ),
        )
    if target == "bulk_get":
        return (
            "POST",
            "/_bulk_get",
            draw(
                st.one_of(
                    not_objects,
                    st.just({}),
                    st.fixed_dictionaries(
                        {"docs": not_objects.filter(lambda v: not isinstance(v, list))}
                    ),
                    st.fixed_dictionaries({"docs": st.lists(not_objects, min_size=1, max_size=3)}),
                )
            ),
        )
    if target == "revs_diff":
        return (
            "POST",
            "/_revs_diff",
            draw(
                st.one_of(
                    not_objects,
                    st.fixed_dictionaries(
                        {"existing": not_objects.filter(lambda v: not isinstance(v, list))}
                    ),
                    st.fixed_dictionaries(
                        {
                            "existing": st.lists(
                                json_values.filter(lambda v: not isinstance(v, str)),
                                min_size=1,
                                max_size=3,
                            )
                        }
                    ),
                )
            ),
        )
    if target == "all_docs":
        return (
            "POST",
            "/_all_docs",
            draw(
                st.one_of(
                    not_objects,
                    st.fixed_dictionaries(
                        {
                            "keys": not_objects.filter(
                                lambda v: v is not None and not isinstance(v, list)
                            )
                        }
                    ),
                    st.fixed_dictionaries(
                        {
                            "limit": json_values.filter(lambda v: type(v) is not int)
                            | NEGATIVE_INTS
                            | st.integers(MAX_INT + 1, 2**64 - 1)
                        }
                    ),
                    st.fixed_dictionaries(
                        {
                            "skip": json_values.filter(lambda v: type(v) is not int)
                            | NEGATIVE_INTS
                            | st.integers(MAX_INT + 1, 2**64 - 1)
                        }
                    ),
                )
            ),
        )
    if target == "changes":
        kind = draw(st.sampled_from(["doc_ids", "selector", "since", "body"]))
        if kind == "doc_ids":
            return (
                "POST",
                "/_changes?filter=_doc_ids",
                {
                    "doc_ids": draw(
                        json_values.filter(
                            lambda v: (
                                not (isinstance(v, list) and all(isinstance(d, str) for d in v))
                            )
                        )
                    )
                },
            )
        if kind == "selector":
            return (
                "POST",
                "/_changes?filter=_selector",
                {
                    "selector": draw(
                        st.one_of(
                            not_objects,
                            st.sampled_from(
                                [
                                    {"$bogus": 1},
                                    {"a": {"$gt": 1, "$bogus": 2}},
                                    {"$or": 5},
                                    {"$and": [5]},
                                    {"a": {"$in": 5}},
                                    {"a": {"$regex": "("}},
                                    {"a": {"$size": -1}},
                                    {"a": {"$mod": [0, 1]}},
                                    {"a": {"$type": "nothing"}},
                                ]
                            ),
                        )
                    )
                },
            )
        if kind == "since":
            since = draw(
                st.one_of(
                    json_values.filter(lambda v: v is not None and not isinstance(v, (int, str))),
                    st.booleans(),
                    NEGATIVE_INTS,
                    st.integers(MAX_INT + 1, 2**64 - 1),
                    st.sampled_from(["xyz", "-1", "", "1.5", "9" * 20]),
                )
            )
            return "POST", "/_changes", {"since": since}
        return "POST", "/_changes", draw(not_objects)
    body = draw(
        st.one_of(
            st.fixed_dictionaries(
                {"_rev": json_values.filter(lambda v: not isinstance(v, str) and v is not None)}
            ),
            st.fixed_dictionaries(
                {
                    "_rev": st.just("0-1"),
                    "_deleted": json_values.filter(lambda v: not isinstance(v, bool)),
                }
            ),
            not_objects,
        )
    )
    return "PUT", "/_local/checkpoint", body


@FUZZ
@given(case=wrong_types())
async def test_wrong_json_types_are_refused(seeded: Seeded, case: tuple[str, str, Any]) -> None:
    method, path, body = case
    if isinstance(body, dict) and body.get("_rev") == "<current>":
        body = {**body, "_rev": seeded.rev}
    resp = await seeded.send(
        method, f"/{seeded.db}{path}", data=orjson.dumps(body), headers=JSON_HEADERS
    )
    await seeded.refused(resp)


@FUZZ
@given(docs=st.lists(st.data(), min_size=1, max_size=4), new_edits=st.booleans(), data=st.data())
async def test_bulk_docs_of_bad_documents_write_nothing(
    seeded: Seeded, docs: list[Any], new_edits: bool, data: st.DataObject
) -> None:
    bad = [
        data.draw(
            bad_docs(
                doc_id=data.draw(st.sampled_from(["existing", "fresh", None])),
                replicated=not new_edits,
            )
        )
        for _ in docs
    ]
    resp = await seeded.send(
        "POST", f"/{seeded.db}/_bulk_docs", json={"docs": bad, "new_edits": new_edits}
    )
    await _every_doc_failed(seeded, resp, len(bad))


@FUZZ
@given(
    entries=st.lists(
        st.one_of(
            st.fixed_dictionaries({"id": json_values.filter(lambda v: not isinstance(v, str))}),
            st.fixed_dictionaries(
                {
                    "id": st.just("existing"),
                    "rev": json_values.filter(lambda v: not isinstance(v, str) and v is not None)
                    | bad_revs,
                }
            ),
            st.just({}),
        ),
        min_size=1,
        max_size=4,
    )
)
async def test_bulk_get_reports_bad_entries_inside_its_answer(
    seeded: Seeded, entries: list[dict[str, Any]]
) -> None:
    resp = await seeded.send("POST", f"/{seeded.db}/_bulk_get", json={"docs": entries})
    body = await resp.json()
    assert resp.status == 200, body
    assert len(body["results"]) == len(entries), body
    for result in body["results"]:
        assert result["docs"] and all("error" in d for d in result["docs"]), (entries, body)
    await seeded.unchanged()


# --- attachments -----------------------------------------------------------------------------


@FUZZ
@given(
    name=st.one_of(
        st.sampled_from(["_bad", "_attachments", "%FF", "a%C0%AFb", "x%ED%A0%80"]),
        st.text(string.ascii_lowercase, min_size=1, max_size=6).map(lambda s: "_" + s),
        st.integers(1025, 2000).map(lambda n: "a" * n),
    ),
    method=st.sampled_from(["PUT", "DELETE", "GET"]),
)
async def test_bad_attachment_names_are_refused(seeded: Seeded, name: str, method: str) -> None:
    path = f"/{seeded.db}/existing/{name}?rev={seeded.rev}"
    kwargs: dict[str, Any] = {"data": b"data"} if method == "PUT" else {}
    await seeded.refused(await seeded.send(method, path, **kwargs))


async def test_attachment_writes_need_the_current_rev(seeded: Seeded) -> None:
    db = seeded.db
    for method, path in [
        ("PUT", f"/{db}/existing/new.txt"),
        ("PUT", f"/{db}/existing/note.txt"),
        ("DELETE", f"/{db}/existing/note.txt"),
        ("PUT", f"/{db}/fresh/new.txt?rev=1-0123456789abcdef"),
        ("DELETE", f"/{db}/existing/missing.txt?rev={seeded.rev}"),
    ]:
        await seeded.refused(await seeded.send(method, path, data=b"data"))
