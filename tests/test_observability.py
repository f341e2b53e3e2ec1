"""Observability: the JSON access log, request ids, and Prometheus ``/metrics``.

One ``python -m syncd serve`` process for the module (tests/crashlib.py) with JSON logs at
info level on stderr (a file here) and a configured metrics token. Log lines are found by the
request id each request sends; metrics are parsed from the text format and compared before
and after a known set of requests.
"""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest
from crashlib import (
    ADMIN_HEADERS,
    HOST,
    Sample,
    SyncdProcess,
    metric,
    parse_metrics,
)

from syncd.web.middlewares import new_request_id
from syncd.web.routes import ROUTES

METRICS_TOKEN = "observability-metrics-token-42"
TOKEN_HEADERS = {"Authorization": f"Bearer {METRICS_TOKEN}"}
ACCESS_FIELDS = {"request_id", "method", "route", "status", "duration_ms", "bytes", "account"}
ROUTE_NAMES = {r.name for r in ROUTES} | {"unmatched"}
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def syncd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncdProcess]:
    tmp = tmp_path_factory.mktemp("observability")
    proc = SyncdProcess(
        tmp / "data",
        tmp / "syncd.log",
        env={
            "SYNCD_LOG_LEVEL": "info",
            "SYNCD_LOG_FORMAT": "json",
            "SYNCD_METRICS_TOKEN": METRICS_TOKEN,
        },
    )
    proc.start()
    try:
        yield proc
    finally:
        assert proc.stop() == 0


def new_id() -> str:
    return "test-" + uuid.uuid4().hex


def log_entries(proc: SyncdProcess) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in proc.log.read_bytes().splitlines() if line.strip()]


async def access_lines(proc: SyncdProcess, request_id: str) -> list[dict[str, Any]]:
    """The access-log lines of one request (polled briefly: a streamed body may end first)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while True:
        found = [
            e
            for e in log_entries(proc)
            if e.get("logger") == "syncd.access" and e.get("request_id") == request_id
        ]
        if found or loop.time() > deadline:
            return found
        await asyncio.sleep(0.02)  # polling another process's log file, with a deadline


async def scrape(session: aiohttp.ClientSession, url: str) -> dict[Sample, float]:
    async with session.get(f"{url}/metrics", headers=TOKEN_HEADERS) as resp:
        assert resp.status == 200, await resp.text()
        return parse_metrics(await resp.text())


# --- the access log ----------------------------------------------------------------------


async def test_every_request_writes_one_access_log_line_with_the_route_pattern(
    syncd: SyncdProcess,
) -> None:
    db, doc = "obs-" + uuid.uuid4().hex[:8], "secret-doc-" + uuid.uuid4().hex[:8]
    # method, path, body, admin?, expected status, expected route pattern
    cases: list[tuple[str, str, Any, bool, int, str]] = [
        ("GET", "/", None, False, 200, "/"),
        ("PUT", f"/{db}", None, True, 201, "/{db}"),
        ("PUT", f"/{db}/{doc}", {"a": 1}, True, 201, "/{db}/{docid}"),
        ("GET", f"/{db}/{doc}", None, True, 200, "/{db}/{docid}"),
        ("HEAD", f"/{db}/{doc}", None, True, 200, "/{db}/{docid}"),
        ("GET", f"/{db}/{doc}-missing", None, True, 404, "/{db}/{docid}"),
        ("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "b1"}]}, True, 201, "/{db}/_bulk_docs"),
        ("GET", f"/{db}/_changes?feed=continuous&timeout=1", None, True, 200, "/{db}/_changes"),
        ("PUT", f"/{db}/_local/{doc}", {"x": 1}, True, 201, "/{db}/_local/{localid}"),
        ("GET", f"/{db}/{doc}/att.txt", None, True, 404, "/{db}/{docid}/{attname}"),
        ("GET", "/_all_dbs", None, False, 401, "/_all_dbs"),
        ("GET", "/_no_such_thing", None, True, 404, "unmatched"),
        ("DELETE", "/_uuids", None, True, 405, "unmatched"),
    ]
    async with aiohttp.ClientSession() as session:
        for method, path, body, admin, status, route in cases:
            request_id = new_id()
            headers = {"X-Request-ID": request_id, **(ADMIN_HEADERS if admin else {})}
            async with session.request(
                method, syncd.url + path, json=body, headers=headers
            ) as resp:
                raw = await resp.read()
                assert resp.status == status, (method, path, raw)
                assert resp.headers["X-Request-ID"] == request_id
            lines = await access_lines(syncd, request_id)
            assert len(lines) == 1, (method, path, lines)
            (line,) = lines
            assert set(line) >= ACCESS_FIELDS, line
            assert line["method"] == method
            assert line["route"] == route, (path, line)
            assert db not in line["route"] and doc not in line["route"]
            assert line["status"] == status
            assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
            assert line["bytes"] == len(raw), (method, path, line, len(raw))
            assert line["account"] == ("admin" if admin else None)
            assert line["level"] == "info" and line["msg"] == "request"


async def test_a_sane_request_id_is_echoed_and_any_other_is_replaced(
    syncd: SyncdProcess,
) -> None:
    sane = ["abc", "A.b-c_d:e", "x" * 128, str(uuid.uuid4())]
    insane = ["has space", "x" * 129, "semi;colon", 'quote"d', "ünïcode", "tab\there"]
    async with aiohttp.ClientSession() as session:
        for given in sane:
            async with session.get(f"{syncd.url}/_up", headers={"X-Request-ID": given}) as resp:
                assert resp.headers["X-Request-ID"] == given
            assert len(await access_lines(syncd, given)) == 1
        for given in insane:
            async with session.get(
                f"{syncd.url}/nope-{uuid.uuid4().hex}",
                headers={"X-Request-ID": given.encode("utf-8").decode("latin-1")},
            ) as resp:
                body = await resp.json()
                replaced = resp.headers["X-Request-ID"]
            assert resp.status == 401  # no credentials for a database route
            assert GENERATED_ID.match(replaced), replaced
            assert body["request_id"] == replaced
            assert len(await access_lines(syncd, replaced)) == 1
    # A header with a line break cannot be sent by a well-behaved client; send it raw.
    for given in (b'evil\n{"forged": 1}', b"a\rb"):
        head = await _raw_get(syncd.port, b"/_up", b"X-Request-ID: " + given)
        assert head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 400", b"HTTP/1.1 400")), head
        echoed = [v for k, v in _headers(head) if k.lower() == "x-request-id"]
        assert all(GENERATED_ID.match(v) for v in echoed), echoed
    # aiohttp refuses those before syncd sees them (and logs the bad line, JSON-escaped):
    # every log line is still one JSON object, and none was forged.
    entries = log_entries(syncd)
    assert all("forged" not in entry for entry in entries)
    ids = {entry.get("request_id") for entry in entries}
    assert not ids & {*insane, "evil"}


async def _raw_get(port: int, path: bytes, header: bytes) -> bytes:
    def go() -> bytes:
        with socket.create_connection((HOST, port), timeout=10) as sock:
            sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n")
            sock.sendall(b"Connection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return data.partition(b"\r\n\r\n")[0]

    return await asyncio.to_thread(go)


def _headers(head: bytes) -> list[tuple[str, str]]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines)]


async def test_every_error_body_carries_the_request_id(syncd: SyncdProcess) -> None:
    db = "err-" + uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as session:
        async with session.put(f"{syncd.url}/{db}") as resp:
            assert resp.status == 201
        async with session.put(f"{syncd.url}/{db}/d", json={}) as resp:
            assert resp.status == 201
        errors: list[tuple[str, str, dict[str, Any], int]] = [
            ("GET", f"/{db}/missing", {}, 404),
            ("GET", "/no_such_db", {}, 404),
            ("PUT", f"/{db}/d", {"json": {"stale": True}}, 409),
            (
                "POST",
                f"/{db}/_bulk_docs",
                {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
                400,
            ),
            (
                "POST",
                f"/{db}/_bulk_docs",
                {"data": b"{}", "headers": {"Content-Type": "text/plain"}},
                415,
            ),
            ("PUT", f"/{db}", {}, 412),
            ("DELETE", "/_uuids", {}, 405),
            ("GET", "/_uuids?count=99999", {}, 400),
            ("GET", f"/{db}/_changes?feed=nope", {}, 400),
            ("GET", "/_all_dbs", {"headers": {"Authorization": "Basic eDp5"}}, 401),
            ("GET", "/_all_dbs", {"headers": TOKEN_HEADERS}, 403),
            ("GET", "/_all_dbs", {"headers": {"Authorization": "Bearer wrong-token"}}, 401),
        ]
        for method, path, kwargs, status in errors:
            async with session.request(method, syncd.url + path, **kwargs) as resp:
                body = await resp.json()
                assert resp.status == status, (method, path, body)
                assert set(body) == {"error", "reason", "request_id"}, body
                assert body["request_id"] == resp.headers["X-Request-ID"]
                assert GENERATED_ID.match(body["request_id"])


# --- /metrics ------------------------------------------------------------------------------


async def test_metrics_needs_admin_or_the_metrics_token_which_opens_nothing_else(
    syncd: SyncdProcess,
) -> None:
    url = syncd.url
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/metrics") as resp:
            assert resp.status == 401
            assert (await resp.json())["error"] == "unauthorized"
        async with session.get(
            f"{url}/metrics", headers={"Authorization": "Bearer not-the-token"}
        ) as resp:
            assert resp.status == 401
        for headers in (ADMIN_HEADERS, TOKEN_HEADERS):
            async with session.get(f"{url}/metrics", headers=headers) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain")
                assert resp.headers["Cache-Control"] == "no-store"
                parse_metrics(await resp.text())
        async with session.put(f"{url}/tokdb", headers=ADMIN_HEADERS) as resp:
            assert resp.status == 201
        for method, path in [
            ("GET", "/_all_dbs"),
            ("GET", "/tokdb"),
            ("GET", "/tokdb/_all_docs"),
            ("GET", "/tokdb/_changes"),
            ("PUT", "/tokdb/doc"),
            ("PUT", "/newdb"),
            ("DELETE", "/tokdb"),
            ("GET", "/v1/auth/me"),
            ("GET", "/v1/analytics/summary"),
        ]:
            async with session.request(
                method, url + path, headers=TOKEN_HEADERS, json={} if method == "PUT" else None
            ) as resp:
                assert resp.status == 403, (method, path, await resp.text())
                assert (await resp.json())["error"] == "forbidden"


async def test_metrics_text_format_moves_with_requests(syncd: SyncdProcess) -> None:
    url, db = syncd.url, "met-" + uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as session:
        before = await scrape(session, url)
        async with session.put(f"{url}/{db}") as resp:
            assert resp.status == 201
        for i in range(3):
            async with session.put(f"{url}/{db}/d{i}", json={"i": i}) as resp:
                assert resp.status == 201
        docs = [{"_id": f"b{i}"} for i in range(5)]
        async with session.post(f"{url}/{db}/_bulk_docs", json={"docs": docs}) as resp:
            assert resp.status == 201
        for path in ("d0", "d1", "nope"):
            async with session.get(f"{url}/{db}/{path}") as resp:
                assert resp.status in (200, 404)
        async with session.get(f"{url}/{db}/_changes") as resp:
            assert resp.status == 200
        async with session.post(f"{url}/{db}/_revs_diff", json={"d0": ["1-abc"]}) as resp:
            assert resp.status == 200
        async with session.post(f"{url}/{db}/_bulk_get", json={"docs": [{"id": "d0"}]}) as resp:
            assert resp.status == 200
        async with session.put(f"{url}/{db}/_local/ck", json={"seq": 1}) as resp:
            assert resp.status == 201
        async with session.get(f"{url}/{db}/_local/ck") as resp:
            assert resp.status == 200
        async with session.get(f"{url}/{db}/_all_docs") as resp:
            assert resp.status == 200
        after = await scrape(session, url)

        def delta(name: str, **labels: str) -> float:
            return metric(after, name, **labels) - metric(before, name, **labels)

        requests = "syncd_http_requests_total"
        assert delta(requests, route="db_create", method="PUT", status="201") == 1
        assert delta(requests, route="doc_put", method="PUT", status="201") == 3
        assert delta(requests, route="doc_get", method="GET", status="200") == 2
        assert delta(requests, route="doc_get", method="GET", status="404") == 1
        assert delta(requests, route="bulk_docs", method="POST", status="201") == 1
        assert delta(requests, route="metrics", method="GET", status="200") >= 1
        for (name, labels), _ in after.items():
            if name == requests:
                assert dict(labels)["route"] in ROUTE_NAMES, labels

        latency = "syncd_http_request_duration_seconds"
        assert delta(f"{latency}_count", route="doc_put") == 3
        assert delta(f"{latency}_sum", route="doc_put") > 0
        _check_histogram(after, latency, route="doc_put")

        replication = "syncd_replication_requests_total"
        for endpoint, count in [
            ("_bulk_docs", 1),
            ("_changes", 1),
            ("_revs_diff", 1),
            ("_bulk_get", 1),
            ("_local", 2),
            ("_all_docs", 1),
            ("doc", 3),
        ]:
            assert delta(replication, endpoint=endpoint) == count, endpoint

        # writes: 1 db + 3 docs + 1 bulk + 1 _local, each one op of some commit
        assert delta("syncd_writer_commit_batch_size_sum") >= 6
        assert 1 <= delta("syncd_writer_commit_batch_size_count") <= 6
        assert delta("syncd_writer_commit_duration_seconds_count") == delta(
            "syncd_writer_commit_batch_size_count"
        )
        _check_histogram(after, "syncd_writer_commit_batch_size")
        _check_histogram(after, "syncd_writer_commit_duration_seconds")

        assert delta("syncd_databases") == 1
        assert delta("syncd_documents") == 8
        assert metric(after, "syncd_database_file_bytes", file="db") > 0
        assert ("syncd_database_file_bytes", (("file", "wal"),)) in after
        assert metric(after, "syncd_writer_queue_depth") == 0
        assert metric(after, "syncd_wal_frames", state="written") > 0
        assert (
            0
            <= metric(after, "syncd_wal_frames", state="pending")
            <= metric(after, "syncd_wal_frames", state="written")
        )
        assert ("syncd_wal_checkpoints_total", (("by", "background"),)) in after
        assert ("syncd_wal_checkpoints_total", (("by", "writer"),)) in after
        assert metric(after, "syncd_wal_checkpoint_failures_total") == 0

        # open feeds by mode, and back to zero when they end
        continuous = await session.get(
            f"{url}/{db}/_changes", params={"feed": "continuous", "since": "now"}
        )
        longpoll = asyncio.create_task(
            session.get(f"{url}/{db}/_changes", params={"feed": "longpoll", "since": "now"})
        )
        await _until(
            session,
            url,
            {"continuous": 1, "longpoll": 1, "waiting": 2},
        )
        continuous.close()  # the client hangs up
        async with session.put(f"{url}/{db}/wake", json={}) as resp:  # the longpoll answers
            assert resp.status == 201
        answered = await longpoll
        assert [r["id"] for r in (await answered.json())["results"]] == ["wake"]
        await _until(session, url, {"continuous": 0, "longpoll": 0, "waiting": 0})


def _check_histogram(samples: dict[Sample, float], name: str, **labels: str) -> None:
    """Cumulative buckets that never decrease and end in +Inf == _count."""
    buckets = sorted(
        (float(dict(lab)["le"]), value)
        for (n, lab), value in samples.items()
        if n == f"{name}_bucket" and all(dict(lab).get(k) == v for k, v in labels.items())
    )
    assert buckets, name
    counts = [value for _, value in buckets]
    assert counts == sorted(counts), name
    assert buckets[-1][0] == float("inf")
    assert buckets[-1][1] == metric(samples, f"{name}_count", **labels)


async def _until(session: aiohttp.ClientSession, url: str, want: dict[str, float]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        samples = await scrape(session, url)
        seen = {
            "continuous": metric(samples, "syncd_changes_feeds_open", mode="continuous"),
            "longpoll": metric(samples, "syncd_changes_feeds_open", mode="longpoll"),
            "waiting": metric(samples, "syncd_changes_feeds_waiting"),
        }
        if seen == want:
            return
        assert loop.time() < deadline, seen
        await asyncio.sleep(0.02)  # polling another process, with a deadline


def test_generated_request_ids_are_distinct_and_32_hex_digits() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(GENERATED_ID.match(value) for value in ids)
    assert len({value[:16] for value in ids}) == 1  # one process, one prefix
