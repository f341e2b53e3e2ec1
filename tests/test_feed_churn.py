"""Feed churn: 10 rounds of 1,000 changes feeds opened and dropped leave nothing behind.

A real ``python -m syncd serve`` process (tests/crashlib.py). Each round opens 1,000 feeds on
raw sockets: 400 continuous and 400 longpoll feeds on one database, which the client then
drops (half with a reset, half with a normal close), and 200 longpoll feeds on another
database, which a write wakes and the server ends. ``GET /metrics`` (with the metrics token)
must show all 1,000 open and waiting, then zero open and zero waiting once they are gone.
Resident memory (``VmRSS``) after round 10 must be within 10% of that after round 1.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from crashlib import (
    ADMIN_HEADERS,
    HOST,
    SyncdProcess,
    basic_auth,
    metric,
    parse_metrics,
)

ROUNDS = 10
DROPPED_LONGPOLL = 400
DROPPED_CONTINUOUS = 400
WOKEN_LONGPOLL = 200
FEEDS = DROPPED_LONGPOLL + DROPPED_CONTINUOUS + WOKEN_LONGPOLL
METRICS_TOKEN = "churn-metrics-token-0123456789"
OPEN_AT_ONCE = 100  # connects in flight together (the listen backlog is 128)
DEADLINE = 30.0  # seconds for the server to show all feeds open, or all gone


@pytest.fixture
def syncd(tmp_path: Path) -> Iterator[SyncdProcess]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * FEEDS
    if soft < want:  # the child inherits it: both ends of 1,000 sockets live on this machine
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    proc = SyncdProcess(
        tmp_path / "data",
        tmp_path / "syncd.log",
        env={"SYNCD_LOG_LEVEL": "warning", "SYNCD_METRICS_TOKEN": METRICS_TOKEN},
    )
    proc.start()
    try:
        yield proc
    finally:
        assert proc.stop() == 0, proc.tail()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


Feed = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_feed(port: int, db: str, mode: str) -> Feed:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(
        f"GET /{db}/_changes?feed={mode}&since=now&timeout=120000 HTTP/1.1\r\n"
        f"Host: {HOST}\r\nAuthorization: {basic_auth()}\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    return reader, writer


async def open_many(port: int, db: str, mode: str, count: int) -> list[Feed]:
    feeds: list[Feed] = []
    for start in range(0, count, OPEN_AT_ONCE):
        batch = min(OPEN_AT_ONCE, count - start)
        feeds += await asyncio.gather(*(open_feed(port, db, mode) for _ in range(batch)))
    return feeds


async def feed_gauges(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with session.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    ) as resp:
        assert resp.status == 200, await resp.text()
        samples = parse_metrics(await resp.text())
    return {
        "longpoll": metric(samples, "syncd_changes_feeds_open", mode="longpoll"),
        "continuous": metric(samples, "syncd_changes_feeds_open", mode="continuous"),
        "waiting": metric(samples, "syncd_changes_feeds_waiting"),
    }


async def wait_for_gauges(session: aiohttp.ClientSession, url: str, want: dict[str, float]) -> None:
    """Poll /metrics (another process: no event to await) until it shows ``want``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while (seen := await feed_gauges(session, url)) != want:
        if loop.time() > deadline:
            raise AssertionError(f"after {DEADLINE} s the server shows {seen}, not {want}")
        await asyncio.sleep(0.05)  # polling another process, with a deadline


async def read_longpoll_answer(reader: asyncio.StreamReader) -> Any:
    raw = await asyncio.wait_for(reader.read(), DEADLINE)  # Connection: close -> until EOF
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    if b"transfer-encoding: chunked" in head.lower():
        chunks, rest = [], body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            chunks.append(rest[:size])
            rest = rest[size + 2 :]
        body = b"".join(chunks)
    return orjson.loads(body)


async def one_round(session: aiohttp.ClientSession, proc: SyncdProcess, doc: int) -> None:
    dropped = await open_many(proc.port, "churn", "continuous", DROPPED_CONTINUOUS)
    dropped += await open_many(proc.port, "churn", "longpoll", DROPPED_LONGPOLL)
    woken = await open_many(proc.port, "wake", "longpoll", WOKEN_LONGPOLL)
    await wait_for_gauges(
        session,
        proc.url,
        {
            "longpoll": DROPPED_LONGPOLL + WOKEN_LONGPOLL,
            "continuous": DROPPED_CONTINUOUS,
            "waiting": FEEDS,
        },
    )
    async with session.put(f"{proc.url}/wake/doc-{doc}", json={"round": doc}) as resp:
        assert resp.status == 201, await resp.text()
    answers = await asyncio.gather(*(read_longpoll_answer(reader) for reader, _ in woken))
    for answer in answers:
        assert [row["id"] for row in answer["results"]] == [f"doc-{doc}"], answer
    for _, writer in woken:
        writer.close()
    for index, (_, writer) in enumerate(dropped):
        if index % 2:
            writer.transport.abort()  # a reset, as when a phone loses its network
        else:
            writer.close()  # a FIN, as when a client gives up
    await wait_for_gauges(session, proc.url, {"longpoll": 0, "continuous": 0, "waiting": 0})
    await asyncio.gather(*(writer.wait_closed() for _, writer in dropped + woken))


async def test_opening_and_dropping_feeds_leaks_neither_feeds_nor_memory(
    syncd: SyncdProcess,
) -> None:
    rss: list[int] = []
    async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as session:
        for db in ("churn", "wake"):
            async with session.put(f"{syncd.url}/{db}") as resp:
                assert resp.status == 201
        async with asyncio.timeout(150):
            for round_ in range(1, ROUNDS + 1):
                await one_round(session, syncd, round_)
                rss.append(syncd.rss_kib())
    growth = (rss[-1] - rss[0]) / rss[0]
    print(f"\nVmRSS after each round (KiB): {rss}; round 1 -> {ROUNDS}: {growth:+.1%}")
    assert growth < 0.10, rss
