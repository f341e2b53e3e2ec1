"""``GET/POST /{db}/_changes`` as CouchDB defines it, over HTTP against a real server.

Feeds: normal, longpoll, continuous and eventsource. Parameters: since, limit, descending,
include_docs, conflicts, style, attachments, heartbeat, timeout. Filters: _doc_ids, _selector,
_design, and design-document functions (refused: syncd runs no JavaScript).

Waiting feeds are observed through the ``ChangesHub`` (``hub.waiting``, ``hub.open_feeds``)
instead of sleeping: a test writes only once the feed is known to be waiting.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from syncd.services.changes import PAGE, ChangesHub
from syncd.web.keys import SERVICES

DEADLINE = 10.0  # seconds: generous bounds for things that should take milliseconds


# helpers ---------------------------------------------------------------------------------


def hub_of(app: web.Application) -> ChangesHub:
    return app[SERVICES].changes.hub


async def until(check: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    """Poll ``check`` (a cheap in-process read) until it holds; fail after ``deadline``."""
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def put(client: TestClient, db: str, doc_id: str, body: dict[str, Any]) -> str:
    resp = await client.put(f"/{db}/{doc_id}", json=body)
    assert resp.status == 201, await resp.text()
    rev: str = (await resp.json())["rev"]
    return rev


async def delete(client: TestClient, db: str, doc_id: str, rev: str) -> str:
    resp = await client.delete(f"/{db}/{doc_id}", params={"rev": rev})
    assert resp.status == 200, await resp.text()
    new_rev: str = (await resp.json())["rev"]
    return new_rev


async def bulk(
    client: TestClient, db: str, docs: list[dict[str, Any]], new_edits: bool = True
) -> list[dict[str, Any]]:
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": docs, "new_edits": new_edits})
    assert resp.status == 201, await resp.text()
    result: list[dict[str, Any]] = await resp.json()
    return result


async def changes(client: TestClient, db: str, **params: str) -> dict[str, Any]:
    resp = await client.get(f"/{db}/_changes", params=params)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def post_changes(
    client: TestClient, db: str, body: dict[str, Any], **params: str
) -> dict[str, Any]:
    resp = await client.post(f"/{db}/_changes", params=params, json=body)
    assert resp.status == 200, await resp.text()
    out: dict[str, Any] = await resp.json()
    return out


async def error_of(resp: ClientResponse) -> tuple[int, str, str]:
    body = await resp.json()
    return resp.status, body["error"], body["reason"]


async def seed(client: TestClient, db: str) -> dict[str, str]:
    """a, b, c created (seqs 1-3); a updated (4); b deleted (5). Latest revs by id."""
    revs = {d: await put(client, db, d, {"n": i}) for i, d in enumerate("abc")}
    revs["a"] = await put(client, db, "a", {"_rev": revs["a"], "n": 10})
    revs["b"] = await delete(client, db, "b", revs["b"])
    return revs


async def read_line(resp: ClientResponse) -> bytes:
    """The next line of a streamed body, failing if it takes more than ``DEADLINE``."""
    return await asyncio.wait_for(resp.content.readline(), DEADLINE)


def ids(body: dict[str, Any]) -> list[str]:
    return [row["id"] for row in body["results"]]


# the normal feed ---------------------------------------------------------------------------


async def test_normal_feed_lists_each_doc_once_at_its_latest_seq(client: TestClient, db: str):
    revs = await seed(client, db)
    body = await changes(client, db)
    assert set(body) == {"results", "last_seq", "pending"}
    assert body["results"] == [
        {"seq": 3, "id": "c", "changes": [{"rev": revs["c"]}]},
        {"seq": 4, "id": "a", "changes": [{"rev": revs["a"]}]},
        {"seq": 5, "id": "b", "changes": [{"rev": revs["b"]}], "deleted": True},
    ]
    assert body["last_seq"] == 5
    assert body["pending"] == 0


async def test_empty_database_has_empty_feed(client: TestClient, db: str):
    assert await changes(client, db) == {"results": [], "last_seq": 0, "pending": 0}


async def test_since_an_integer_lists_only_later_changes(client: TestClient, db: str):
    await seed(client, db)
    body = await changes(client, db, since="3")
    assert [(r["seq"], r["id"]) for r in body["results"]] == [(4, "a"), (5, "b")]
    assert body["last_seq"] == 5
    assert (await changes(client, db, since="5"))["results"] == []


async def test_since_now_starts_at_the_current_seq(client: TestClient, db: str):
    await seed(client, db)
    assert await changes(client, db, since="now") == {"results": [], "last_seq": 5, "pending": 0}


async def test_limit_counts_what_remains_in_pending(client: TestClient, db: str):
    await bulk(client, db, [{"_id": f"d{i}"} for i in range(5)])
    first = await changes(client, db, limit="2")
    assert ids(first) == ["d0", "d1"]
    assert first["last_seq"] == 2
    assert first["pending"] == 3
    second = await changes(client, db, limit="2", since=str(first["last_seq"]))
    assert ids(second) == ["d2", "d3"]
    assert second["pending"] == 1
    third = await changes(client, db, limit="2", since=str(second["last_seq"]))
    assert ids(third) == ["d4"]
    assert third["pending"] == 0
    assert third["last_seq"] == 5


async def test_limit_zero_lists_nothing_and_leaves_since_unchanged(client: TestClient, db: str):
    """As CouchDB 3 answers (its docs' "0 acts as 1" is out of date: apache/couchdb#6088)."""
    await seed(client, db)
    assert await changes(client, db, limit="0") == {"results": [], "last_seq": 0, "pending": 3}


async def test_descending_lists_newest_first(client: TestClient, db: str):
    await seed(client, db)
    body = await changes(client, db, descending="true")
    assert [(r["seq"], r["id"]) for r in body["results"]] == [(5, "b"), (4, "a"), (3, "c")]
    limited = await changes(client, db, descending="true", limit="2")
    assert ids(limited) == ["b", "a"]
    assert limited["last_seq"] == 4


async def test_include_docs_shows_bodies_and_tombstones(client: TestClient, db: str):
    revs = await seed(client, db)
    body = await changes(client, db, include_docs="true")
    docs = {row["id"]: row["doc"] for row in body["results"]}
    assert docs["a"] == {"_id": "a", "_rev": revs["a"], "n": 10}
    assert docs["c"] == {"_id": "c", "_rev": revs["c"], "n": 2}
    assert docs["b"] == {"_id": "b", "_rev": revs["b"], "_deleted": True}
    assert "doc" not in (await changes(client, db))["results"][0]


async def conflicted(client: TestClient, db: str) -> tuple[str, str]:
    """Doc ``x`` with two branches ``1-aaa…`` and ``1-bbb…``; (winner, loser)."""
    loser, winner = "1-" + "a" * 32, "1-" + "b" * 32
    await bulk(
        client,
        db,
        [{"_id": "x", "_rev": loser, "v": "a"}, {"_id": "x", "_rev": winner, "v": "b"}],
        new_edits=False,
    )
    return winner, loser


async def test_conflicts_with_include_docs(client: TestClient, db: str):
    winner, loser = await conflicted(client, db)
    body = await changes(client, db, include_docs="true", conflicts="true")
    (row,) = body["results"]
    assert row["changes"] == [{"rev": winner}]
    assert row["doc"] == {"_id": "x", "_rev": winner, "v": "b", "_conflicts": [loser]}
    plain = await changes(client, db, include_docs="true")
    assert "_conflicts" not in plain["results"][0]["doc"]


async def test_style_all_docs_lists_every_leaf(client: TestClient, db: str):
    winner, loser = await conflicted(client, db)
    tomb = await delete(client, db, "x", loser)  # a deleted leaf is a leaf too
    body = await changes(client, db, style="all_docs")
    (row,) = body["results"]
    assert row["changes"][0] == {"rev": winner}
    assert sorted(c["rev"] for c in row["changes"]) == sorted([winner, tomb])
    main = await changes(client, db, style="main_only")
    assert main["results"][0]["changes"] == [{"rev": winner}]


async def test_attachments_with_include_docs_inline_the_data(client: TestClient, db: str):
    data = b"hello attachment"
    encoded = base64.b64encode(data).decode()
    await put(
        client,
        db,
        "doc",
        {"_attachments": {"a.txt": {"content_type": "text/plain", "data": encoded}}},
    )
    inline = await changes(client, db, include_docs="true", attachments="true")
    att = inline["results"][0]["doc"]["_attachments"]["a.txt"]
    assert att["data"] == encoded
    assert att["content_type"] == "text/plain"
    assert "stub" not in att
    stubs = await changes(client, db, include_docs="true")
    stub = stubs["results"][0]["doc"]["_attachments"]["a.txt"]
    assert stub["stub"] is True
    assert "data" not in stub


async def test_post_changes_answers_like_get(client: TestClient, db: str):
    await seed(client, db)
    assert await post_changes(client, db, {}) == await changes(client, db)
    assert await post_changes(client, db, {}, since="4") == await changes(client, db, since="4")


# filters -----------------------------------------------------------------------------------


async def test_doc_ids_filter_as_a_json_query_parameter(client: TestClient, db: str):
    await seed(client, db)
    body = await changes(client, db, filter="_doc_ids", doc_ids='["c", "b", "nope"]')
    assert ids(body) == ["c", "b"]
    assert body["last_seq"] == 5


async def test_doc_ids_filter_in_a_post_body(client: TestClient, db: str):
    await seed(client, db)
    body = await post_changes(client, db, {"doc_ids": ["a"]}, filter="_doc_ids")
    assert ids(body) == ["a"]


async def test_doc_ids_filter_without_a_list_is_400(client: TestClient, db: str):
    for params in ({"filter": "_doc_ids"}, {"filter": "_doc_ids", "doc_ids": '"a"'}):
        resp = await client.get(f"/{db}/_changes", params=params)
        assert resp.status == 400, params


async def test_selector_filter_in_a_post_body(client: TestClient, db: str):
    await bulk(
        client,
        db,
        [
            {"_id": "p1", "type": "post", "meta": {"score": 5, "tags": ["x", "y"]}},
            {"_id": "p2", "type": "post", "meta": {"score": 1, "tags": ["x"]}},
            {"_id": "p3", "type": "post", "meta": {"score": 9, "tags": ["z"]}},
            {"_id": "c1", "type": "comment", "meta": {"score": 7, "tags": ["x"]}},
            {"_id": "p4", "type": "post"},
        ],
    )
    selector = {
        "type": {"$in": ["post", "page"]},
        "meta": {"score": {"$gte": 3}},
        "$or": [{"meta.tags": {"$all": ["x"]}}, {"meta.tags": {"$elemMatch": {"$eq": "z"}}}],
    }
    body = await post_changes(client, db, {"selector": selector}, filter="_selector")
    assert ids(body) == ["p1", "p3"]
    missing = await post_changes(
        client, db, {"selector": {"meta.score": {"$exists": False}}}, filter="_selector"
    )
    assert ids(missing) == ["p4"]


async def test_selector_filter_sees_tombstones(client: TestClient, db: str):
    await seed(client, db)
    body = await post_changes(client, db, {"selector": {"_deleted": True}}, filter="_selector")
    assert ids(body) == ["b"]


async def test_bad_or_missing_selector_is_400(client: TestClient, db: str):
    for payload in ({"selector": {"a": {"$bogus": 1}}}, {"selector": 5}, {}):
        resp = await client.post(f"/{db}/_changes", params={"filter": "_selector"}, json=payload)
        assert resp.status == 400, payload


async def test_design_filter_lists_only_design_docs(client: TestClient, db: str):
    await put(client, db, "a", {})
    await put(client, db, "_design/one", {"views": {}})
    await put(client, db, "z", {})
    await put(client, db, "_design/two", {})
    body = await changes(client, db, filter="_design")
    assert ids(body) == ["_design/one", "_design/two"]


@pytest.mark.parametrize(("kind", "params"), [("filters", "filter"), ("views", "view")])
async def test_design_function_that_does_not_exist_is_404(
    client: TestClient, db: str, kind: str, params: str
):
    def query(name: str) -> dict[str, str]:
        return {"filter": name} if params == "filter" else {"filter": "_view", "view": name}

    resp = await client.get(f"/{db}/_changes", params=query("nodoc/fn"))
    assert (await error_of(resp))[:2] == (404, "not_found")
    await put(client, db, "_design/app", {kind: {"other": "function(doc) {}"}})
    resp = await client.get(f"/{db}/_changes", params=query("app/fn"))
    assert (await error_of(resp))[:2] == (404, "not_found")


@pytest.mark.parametrize(("kind", "params"), [("filters", "filter"), ("views", "view")])
async def test_design_function_that_exists_is_400_no_javascript(
    client: TestClient, db: str, kind: str, params: str
):
    function: Any = "function(doc, req) { return true; }"
    if kind == "views":
        function = {"map": "function(doc) { emit(doc._id); }"}
    await put(client, db, "_design/app", {kind: {"fn": function}})
    query = {"filter": "app/fn"} if params == "filter" else {"filter": "_view", "view": "app/fn"}
    status, error, reason = await error_of(await client.get(f"/{db}/_changes", params=query))
    assert (status, error) == (400, "bad_request")
    assert "JavaScript" in reason


@pytest.mark.parametrize(
    "params",
    [
        {"feed": "bogus"},
        {"since": "abc"},
        {"since": "-1"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"style": "bogus"},
        {"filter": "noslash"},
        {"filter": "_view"},
        {"descending": "maybe"},
    ],
)
async def test_bad_parameters_are_400(client: TestClient, db: str, params: dict[str, str]):
    resp = await client.get(f"/{db}/_changes", params=params)
    assert (await error_of(resp))[:2] == (400, "bad_request")


@pytest.mark.parametrize("feed", ["normal", "longpoll", "continuous", "eventsource"])
async def test_missing_database_is_404(client: TestClient, feed: str):
    resp = await client.get("/no-such-db/_changes", params={"feed": feed, "timeout": "100"})
    assert (await error_of(resp))[:2] == (404, "not_found")


# longpoll ------------------------------------------------------------------------------------


async def test_longpoll_answers_at_once_when_there_are_changes(client: TestClient, db: str):
    await seed(client, db)
    resp = await asyncio.wait_for(
        client.get(f"/{db}/_changes", params={"feed": "longpoll", "since": "3"}), DEADLINE
    )
    body = await resp.json()
    assert ids(body) == ["a", "b"]
    assert body["last_seq"] == 5


async def test_longpoll_waits_and_is_woken_by_a_write(client: TestClient, db: str, app):
    await seed(client, db)
    hub = hub_of(app)
    feed = asyncio.create_task(
        client.get(f"/{db}/_changes", params={"feed": "longpoll", "since": "now"})
    )
    await until(lambda: hub.waiting == 1, "the longpoll feed to wait")
    assert not feed.done()
    rev = await put(client, db, "new", {})
    resp = await asyncio.wait_for(feed, DEADLINE)
    body = await resp.json()
    assert body["results"] == [{"seq": 6, "id": "new", "changes": [{"rev": rev}]}]
    assert body["last_seq"] == 6
    assert hub.waiting == 0


async def test_longpoll_with_a_filter_waits_for_a_matching_change(client: TestClient, db: str, app):
    hub = hub_of(app)
    feed = asyncio.create_task(
        client.get(
            f"/{db}/_changes",
            params={"feed": "longpoll", "filter": "_doc_ids", "doc_ids": '["wanted"]'},
        )
    )
    await until(lambda: hub.waiting == 1, "the longpoll feed to wait")
    await put(client, db, "other", {})
    await until(lambda: hub.latest.get(db) == 1 and hub.waiting == 1, "the feed to wait again")
    assert not feed.done()
    await put(client, db, "wanted", {})
    body = await (await asyncio.wait_for(feed, DEADLINE)).json()
    assert ids(body) == ["wanted"]
    assert body["last_seq"] == 2


@pytest.mark.parametrize("since", ["0", "3", "now"])
async def test_longpoll_with_limit_0_answers_at_once_with_no_rows(
    client: TestClient, db: str, since: str
):
    # CouchDB: the limit is reached before the first row, so the feed ends (no wait).
    await seed(client, db)
    resp = await asyncio.wait_for(
        client.get(f"/{db}/_changes", params={"feed": "longpoll", "since": since, "limit": "0"}),
        DEADLINE,
    )
    body = await resp.json()
    assert body["results"] == []
    assert body["last_seq"] == (5 if since == "now" else int(since))


@pytest.mark.parametrize("feed", ["continuous", "eventsource"])
async def test_a_stream_with_limit_0_ends_at_once(client: TestClient, db: str, feed: str):
    await seed(client, db)
    resp = await asyncio.wait_for(
        client.get(f"/{db}/_changes", params={"feed": feed, "since": "0", "limit": "0"}), DEADLINE
    )
    text = await asyncio.wait_for(resp.text(), DEADLINE)
    assert '"id"' not in text


@pytest.mark.parametrize("since", ["0", "2", "5", "now"])
async def test_descending_longpoll_answers_within_its_timeout(
    client: TestClient, db: str, since: str
):
    await seed(client, db)
    params = {"feed": "longpoll", "descending": "true", "since": since, "timeout": "100"}
    resp = await asyncio.wait_for(client.get(f"/{db}/_changes", params=params), DEADLINE)
    assert resp.status == 200
    assert (await client.get("/_up")).status == 200


async def test_longpoll_timeout_returns_empty_results(client: TestClient, db: str):
    await seed(client, db)
    resp = await client.get(
        f"/{db}/_changes", params={"feed": "longpoll", "since": "now", "timeout": "50"}
    )
    assert await resp.json() == {"results": [], "last_seq": 5, "pending": 0}


async def test_longpoll_heartbeat_sends_newlines_while_waiting(client: TestClient, db: str, app):
    hub = hub_of(app)
    resp = await client.get(
        f"/{db}/_changes", params={"feed": "longpoll", "since": "now", "heartbeat": "20"}
    )
    assert resp.status == 200
    assert await read_line(resp) == b"\n"
    assert await read_line(resp) == b"\n"
    await until(lambda: hub.waiting == 1, "the feed to wait")
    rev = await put(client, db, "doc", {})
    rest = await asyncio.wait_for(resp.read(), DEADLINE)
    assert rest.strip(b"\n") != b""
    assert set(rest[: len(rest) - len(rest.lstrip(b"\n"))]) <= {ord("\n")}
    body = orjson.loads(rest)
    assert body["results"] == [{"seq": 1, "id": "doc", "changes": [{"rev": rev}]}]


async def test_longpoll_repolling_from_the_last_seq_waits_for_the_next_change(
    client: TestClient, db: str, app
):
    hub = hub_of(app)
    await put(client, db, "first", {})
    first = await changes(client, db, feed="longpoll")
    assert hub.latest.get(db) == first["last_seq"] == 1
    feed = asyncio.create_task(
        client.get(f"/{db}/_changes", params={"feed": "longpoll", "since": str(first["last_seq"])})
    )
    await until(lambda: hub.waiting == 1, "the re-poll to wait")
    rev = await put(client, db, "second", {})
    body = await (await asyncio.wait_for(feed, DEADLINE)).json()
    assert body["results"] == [{"seq": 2, "id": "second", "changes": [{"rev": rev}]}]


async def test_feeds_woken_by_one_commit_get_the_same_answer(client: TestClient, db: str, app):
    hub = hub_of(app)
    await put(client, db, "first", {})
    polls = [
        asyncio.create_task(
            client.get(f"/{db}/_changes", params={"feed": "longpoll", "since": "1"})
        )
        for _ in range(3)
    ]
    await until(lambda: hub.waiting == 3, "three feeds to wait")
    rev = await put(client, db, "second", {})
    bodies = [await (await asyncio.wait_for(p, DEADLINE)).json() for p in polls]
    expected = {
        "results": [{"seq": 2, "id": "second", "changes": [{"rev": rev}]}],
        "last_seq": 2,
        "pending": 0,
    }
    assert bodies == [expected] * 3


async def test_a_read_after_the_next_commit_sees_that_commit(client: TestClient, db: str):
    await put(client, db, "first", {})
    await put(client, db, "second", {})
    assert ids(await changes(client, db, feed="longpoll", since="1")) == ["second"]
    await put(client, db, "third", {})
    assert ids(await changes(client, db, feed="longpoll", since="1")) == ["second", "third"]


async def test_longpoll_on_a_database_deleted_while_waiting_is_404(
    client: TestClient, db: str, app
):
    hub = hub_of(app)
    feed = asyncio.create_task(
        client.get(f"/{db}/_changes", params={"feed": "longpoll", "since": "now"})
    )
    await until(lambda: hub.waiting == 1, "the feed to wait")
    assert (await client.delete(f"/{db}")).status == 200
    resp = await asyncio.wait_for(feed, DEADLINE)
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


async def test_longpoll_with_heartbeats_ends_when_its_database_is_deleted(
    client: TestClient, db: str, app
):
    hub = hub_of(app)
    resp = await client.get(
        f"/{db}/_changes", params={"feed": "longpoll", "since": "now", "heartbeat": "20"}
    )
    assert await read_line(resp) == b"\n"
    await until(lambda: hub.waiting == 1, "the feed to wait")
    assert (await client.delete(f"/{db}")).status == 200
    rest = await asyncio.wait_for(resp.read(), DEADLINE)
    assert orjson.loads(rest) == {"results": [], "last_seq": 0, "pending": 0}


async def test_feed_of_a_recreated_database_starts_over(client: TestClient, db: str, app):
    await seed(client, db)
    assert hub_of(app).latest.get(db) == 5
    assert (await client.delete(f"/{db}")).status == 200
    assert (await client.put(f"/{db}")).status == 201
    assert db not in hub_of(app).latest  # what was known of the old database is forgotten
    rev = await put(client, db, "new", {})
    body = await changes(client, db, feed="longpoll", since="0")
    assert body["results"] == [{"seq": 1, "id": "new", "changes": [{"rev": rev}]}]


# continuous and eventsource --------------------------------------------------------------------


async def test_continuous_streams_lines_and_ends_with_last_seq_after_timeout(
    client: TestClient, db: str
):
    revs = await seed(client, db)
    resp = await client.get(f"/{db}/_changes", params={"feed": "continuous", "timeout": "50"})
    assert resp.status == 200
    text = await asyncio.wait_for(resp.read(), DEADLINE)
    lines = [orjson.loads(line) for line in text.splitlines() if line]
    assert lines == [
        {"seq": 3, "id": "c", "changes": [{"rev": revs["c"]}]},
        {"seq": 4, "id": "a", "changes": [{"rev": revs["a"]}]},
        {"seq": 5, "id": "b", "changes": [{"rev": revs["b"]}], "deleted": True},
        {"last_seq": 5, "pending": 0},
    ]


async def test_continuous_streams_changes_written_while_open(client: TestClient, db: str, app):
    hub = hub_of(app)
    resp = await client.get(
        f"/{db}/_changes", params={"feed": "continuous", "since": "now", "timeout": "60000"}
    )
    for n in range(3):
        await until(lambda: hub.waiting == 1, "the feed to wait")
        rev = await put(client, db, f"d{n}", {})
        assert orjson.loads(await read_line(resp)) == {
            "seq": n + 1,
            "id": f"d{n}",
            "changes": [{"rev": rev}],
        }
    resp.close()


async def test_continuous_with_limit_ends_after_limit_rows(client: TestClient, db: str):
    await seed(client, db)
    resp = await client.get(
        f"/{db}/_changes", params={"feed": "continuous", "limit": "2", "timeout": "60000"}
    )
    text = await asyncio.wait_for(resp.read(), DEADLINE)  # long before the 60 s timeout
    lines = [orjson.loads(line) for line in text.splitlines() if line]
    assert [line.get("id") for line in lines] == ["c", "a", None]
    assert lines[-1] == {"last_seq": 4, "pending": 0}


async def test_continuous_with_limit_waits_for_rows_still_missing(client: TestClient, db: str, app):
    hub = hub_of(app)
    await put(client, db, "first", {})
    resp = await client.get(
        f"/{db}/_changes", params={"feed": "continuous", "limit": "2", "timeout": "60000"}
    )
    assert orjson.loads(await read_line(resp))["id"] == "first"
    await until(lambda: hub.waiting == 1, "the feed to wait")
    await put(client, db, "second", {})
    assert orjson.loads(await read_line(resp))["id"] == "second"
    assert orjson.loads(await read_line(resp)) == {"last_seq": 2, "pending": 0}


async def test_continuous_heartbeat_sends_newlines_between_changes(
    client: TestClient, db: str, app
):
    hub = hub_of(app)
    resp = await client.get(
        f"/{db}/_changes", params={"feed": "continuous", "since": "now", "heartbeat": "20"}
    )
    assert await read_line(resp) == b"\n"
    await until(lambda: hub.waiting == 1, "the feed to wait")
    await put(client, db, "doc", {})
    line = await read_line(resp)
    while line == b"\n":
        line = await read_line(resp)
    assert orjson.loads(line)["id"] == "doc"
    resp.close()


async def test_eventsource_sends_data_and_id_events(client: TestClient, db: str):
    revs = await seed(client, db)
    resp = await client.get(f"/{db}/_changes", params={"feed": "eventsource", "timeout": "50"})
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    text = (await asyncio.wait_for(resp.read(), DEADLINE)).decode()
    events = [e for e in text.split("\n\n") if e]
    parsed = []
    for event in events:
        data_line, id_line = event.split("\n")
        assert data_line.startswith("data: ")
        assert id_line.startswith("id: ")
        row = orjson.loads(data_line.removeprefix("data: "))
        assert id_line == f"id: {row['seq']}"
        parsed.append(row)
    assert parsed == [
        {"seq": 3, "id": "c", "changes": [{"rev": revs["c"]}]},
        {"seq": 4, "id": "a", "changes": [{"rev": revs["a"]}]},
        {"seq": 5, "id": "b", "changes": [{"rev": revs["b"]}], "deleted": True},
    ]


async def test_eventsource_heartbeat_is_a_heartbeat_event(client: TestClient, db: str):
    resp = await client.get(
        f"/{db}/_changes", params={"feed": "eventsource", "since": "now", "heartbeat": "20"}
    )
    assert await read_line(resp) == b"event: heartbeat\n"
    assert await read_line(resp) == b"data: \n"
    assert await read_line(resp) == b"\n"
    resp.close()


@pytest.mark.parametrize("feed", ["continuous", "eventsource", "longpoll"])
async def test_streamed_feed_is_not_compressed_and_each_line_arrives_as_written(
    client: TestClient, db: str, app, feed: str
):
    hub = hub_of(app)
    params = {"feed": feed, "since": "now", "timeout": "60000"}
    if feed == "longpoll":
        params["heartbeat"] = "20"  # a longpoll answer starts (headers) with its first heartbeat
    resp = await client.get(f"/{db}/_changes", params=params, headers={"Accept-Encoding": "gzip"})
    assert resp.status == 200
    assert "Content-Encoding" not in resp.headers
    await until(lambda: hub.waiting == 1, "the feed to wait")
    await put(client, db, "doc", {})
    line = await read_line(resp)  # well before the server's 60 s timeout
    while line == b"\n":
        line = await read_line(resp)
    if feed == "eventsource":
        assert line.startswith(b"data: ")
        line = line.removeprefix(b"data: ")
    body = orjson.loads(line)
    row = body["results"][0] if feed == "longpoll" else body
    assert row["id"] == "doc"
    resp.close()


async def test_normal_feed_answer_is_not_compressed(client: TestClient, db: str):
    await seed(client, db)
    resp = await client.get(f"/{db}/_changes", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in resp.headers


@pytest.mark.parametrize("feed", ["longpoll", "continuous", "eventsource"])
async def test_client_that_disconnects_frees_its_waiter(
    client: TestClient, db: str, app, feed: str
):
    hub = hub_of(app)
    params = {"feed": feed, "since": "now", "timeout": "60000"}
    if feed == "longpoll":
        params["heartbeat"] = "20"  # a longpoll answer starts (headers) with its first heartbeat
    resp = await client.get(f"/{db}/_changes", params=params)
    assert resp.status == 200
    await until(lambda: hub.waiting == 1 and hub.open_feeds[feed] == 1, "the feed to wait")
    resp.close()
    await until(lambda: hub.waiting == 0 and sum(hub.open_feeds.values()) == 0, "the waiter to go")


async def test_longpoll_client_that_disconnects_before_headers_frees_its_waiter(
    client: TestClient, db: str, app
):
    hub = hub_of(app)
    request = asyncio.create_task(
        client.get(f"/{db}/_changes", params={"feed": "longpoll", "since": "now"})
    )
    await until(lambda: hub.waiting == 1 and hub.open_feeds["longpoll"] == 1, "the feed to wait")
    request.cancel()  # drops the connection while the server has sent nothing yet
    with pytest.raises(asyncio.CancelledError):
        await request
    await until(lambda: hub.waiting == 0 and sum(hub.open_feeds.values()) == 0, "the waiter to go")


async def test_continuous_feed_ends_when_its_database_is_deleted(client: TestClient, db: str, app):
    hub = hub_of(app)
    await put(client, db, "doc", {})
    resp = await client.get(f"/{db}/_changes", params={"feed": "continuous", "since": "now"})
    await until(lambda: hub.waiting == 1, "the feed to wait")
    assert (await client.delete(f"/{db}")).status == 200
    rest = await asyncio.wait_for(resp.read(), DEADLINE)
    assert orjson.loads(rest) == {"last_seq": 1, "pending": 0}
    await until(lambda: sum(hub.open_feeds.values()) == 0, "the feed to end")


# a feed longer than one internal page ------------------------------------------------------------

LARGE = 2_500


async def large_db(client: TestClient, db: str) -> None:
    assert LARGE > 2 * PAGE
    docs = [{"_id": f"doc{n:05d}", "n": n} for n in range(LARGE)]
    await bulk(client, db, docs)


def check_in_seq_order(rows: list[dict[str, Any]]) -> None:
    seqs = [row["seq"] for row in rows]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)


async def test_large_normal_feed_is_complete_and_in_seq_order(client: TestClient, db: str):
    await large_db(client, db)
    body = await changes(client, db)
    assert len(body["results"]) == LARGE
    check_in_seq_order(body["results"])
    assert ids(body) == [f"doc{n:05d}" for n in range(LARGE)]
    assert body["last_seq"] == LARGE
    assert body["pending"] == 0


async def test_large_normal_feed_with_limit_and_since(client: TestClient, db: str):
    await large_db(client, db)
    body = await changes(client, db, limit="1500")
    assert ids(body) == [f"doc{n:05d}" for n in range(1500)]
    assert body["last_seq"] == 1500
    assert body["pending"] == LARGE - 1500
    rest = await changes(client, db, since="1500", limit="5000")
    assert ids(rest) == [f"doc{n:05d}" for n in range(1500, LARGE)]
    assert rest["pending"] == 0
    assert rest["last_seq"] == LARGE


async def test_large_descending_feed_is_complete(client: TestClient, db: str):
    await large_db(client, db)
    body = await changes(client, db, descending="true")
    assert ids(body) == [f"doc{n:05d}" for n in reversed(range(LARGE))]
    limited = await changes(client, db, descending="true", limit="1200")
    assert ids(limited) == [f"doc{n:05d}" for n in reversed(range(LARGE - 1200, LARGE))]


async def test_large_feed_with_filters_is_complete(client: TestClient, db: str):
    await large_db(client, db)
    even = await post_changes(client, db, {"selector": {"n": {"$mod": [2, 0]}}}, filter="_selector")
    assert ids(even) == [f"doc{n:05d}" for n in range(0, LARGE, 2)]
    check_in_seq_order(even["results"])
    assert even["last_seq"] == LARGE
    some = await post_changes(
        client, db, {"selector": {"n": {"$gte": 100}}}, filter="_selector", limit="1100"
    )
    assert ids(some) == [f"doc{n:05d}" for n in range(100, 1200)]
    assert some["last_seq"] == 1200
    wanted = [f"doc{n:05d}" for n in range(0, LARGE, 2)]
    by_id = await post_changes(client, db, {"doc_ids": wanted}, filter="_doc_ids")
    assert ids(by_id) == wanted
    check_in_seq_order(by_id["results"])


async def test_large_continuous_feed_is_complete(client: TestClient, db: str):
    await large_db(client, db)
    resp = await client.get(f"/{db}/_changes", params={"feed": "continuous", "timeout": "50"})
    lines = [orjson.loads(x) for x in (await resp.read()).splitlines() if x]
    assert [row["id"] for row in lines[:-1]] == [f"doc{n:05d}" for n in range(LARGE)]
    assert lines[-1] == {"last_seq": LARGE, "pending": 0}
