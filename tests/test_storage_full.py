"""Storage full: writes are refused with 507, nothing acknowledged is lost, reads go on, and
writes succeed again as soon as there is room, without a restart.

Two ways to run out of room, the same checks for both:

* the size cap (always): ``SYNCD_MAX_DATABASE_BYTES`` at start, and ``Writer.set_max_bytes``
  while serving (SQLite's ``max_page_count``). Room comes back when the cap is raised.
* a real tiny filesystem: a 4 MiB tmpfs mounted for the test (``mount -t tmpfs``, as root).
  SQLite's WAL append fails with "database or disk is full". Room comes back first by deleting
  a filler file, then by remounting the tmpfs bigger. Where mounting is not permitted (not
  root, no CAP_SYS_ADMIN), that test runs the same scenario against the size cap instead and
  says so in its output; it is never skipped. The tmpfs is unmounted in teardown.

The server is in-process (aiohttp test server) so that the test can move the cap; the
database file is a real file either way.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import ADMIN, basic_auth
from crashlib import run_cli

from syncd.app import create_app
from syncd.config import Secret, Settings
from syncd.web.keys import SERVICES

DOC_BYTES = 4096  # incompressible hex, so the file grows as fast as the bodies do
MAX_REQUESTS = 2000  # a fill that never hits the limit fails instead of running on


@dataclass
class Writes:
    """Every write that was acknowledged: id -> (rev, n)."""

    db: str
    rng: random.Random = field(default_factory=lambda: random.Random(507))
    acked: dict[str, tuple[str, int]] = field(default_factory=dict)
    n: int = 0

    def doc(self, doc_id: str | None = None) -> dict[str, Any]:
        self.n += 1
        doc_id = doc_id or f"doc-{self.n:05d}"
        doc: dict[str, Any] = {
            "_id": doc_id,
            "n": self.n,
            "pad": self.rng.randbytes(DOC_BYTES // 2).hex(),
        }
        if doc_id in self.acked:
            doc["_rev"] = self.acked[doc_id][0]
        return doc

    async def put(self, client: TestClient, update: bool = False) -> tuple[int, dict[str, Any]]:
        """PUT a new document, or (``update``) a new revision of an acknowledged one."""
        doc = self.doc(self.rng.choice(sorted(self.acked)) if update else None)
        resp = await client.put(f"/{self.db}/{doc['_id']}", json=doc)
        body = await resp.json()
        if resp.status == 201:
            self.acked[doc["_id"]] = (body["rev"], doc["n"])
        else:
            _check_storage_error(resp.status, resp.headers.get("X-Request-ID"), body)
        return resp.status, body

    async def update(self, client: TestClient) -> tuple[int, dict[str, Any]]:
        return await self.put(client, update=True)

    async def bulk(self, client: TestClient, count: int = 8) -> tuple[int, Any]:
        docs = [self.doc() for _ in range(count)]
        resp = await client.post(f"/{self.db}/_bulk_docs", json={"docs": docs})
        body = await resp.json()
        if resp.status == 201:
            for doc, result in zip(docs, body, strict=True):
                assert result.get("ok"), result
                self.acked[doc["_id"]] = (result["rev"], doc["n"])
        else:
            _check_storage_error(resp.status, resp.headers.get("X-Request-ID"), body)
        return resp.status, body

    async def fill(self, client: TestClient) -> int:
        """Write until the server says 507 to a single new document; how many were acked.

        Bulk batches, new documents and updates take turns; once a batch is refused, single
        documents go on until one is refused too (a smaller write may still fit).
        """
        before = len(self.acked)
        refused_batch = False
        for i in range(MAX_REQUESTS):
            if refused_batch:
                status, _ = await self.put(client)
                if status == 507:
                    return len(self.acked) - before
                continue
            turn = (self.bulk, self.put, self.update)[i % 3]
            status, _ = await turn(client)
            refused_batch = status == 507
        raise AssertionError(f"no 507 after {MAX_REQUESTS} writes")


def _check_storage_error(status: int, request_id: str | None, body: Any) -> None:
    """507 in CouchDB's error shape, with the request id."""
    assert status == 507, body
    assert body == {
        "error": "insufficient_storage",
        "reason": "The server's storage is full.",
        "request_id": request_id,
    }


async def refused_while_full(client: TestClient, writes: Writes) -> None:
    """Every kind of write is refused with 507 while the storage is full."""
    for attempt in (writes.put, writes.bulk, writes.put):
        status, _ = await attempt(client)
        assert status == 507, "a write was accepted after a smaller one was refused"
    resp = await client.post(f"/{writes.db}", json=writes.doc())
    _check_storage_error(resp.status, resp.headers.get("X-Request-ID"), await resp.json())


async def reads_answer(client: TestClient, writes: Writes) -> None:
    """Reads go on, and every acknowledged write is there with its rev and body."""
    assert (await client.get("/_up")).status == 200
    info = await (await client.get(f"/{writes.db}")).json()
    assert info["doc_count"] == len(writes.acked)
    resp = await client.post(
        f"/{writes.db}/_all_docs",
        params={"include_docs": "true"},
        json={"keys": sorted(writes.acked)},
    )
    assert resp.status == 200
    rows = (await resp.json())["rows"]
    assert len(rows) == len(writes.acked)
    for row in rows:
        rev, n = writes.acked[row["key"]]
        assert (row["value"]["rev"], row["doc"]["n"]) == (rev, n), row["key"]
    some = writes.rng.choice(sorted(writes.acked))
    resp = await client.get(f"/{writes.db}/{some}", params={"rev": writes.acked[some][0]})
    assert resp.status == 200
    resp = await client.get(f"/{writes.db}/_changes")
    assert resp.status == 200
    assert len((await resp.json())["results"]) == len(writes.acked)


async def writes_succeed(client: TestClient, writes: Writes) -> None:
    """Single and bulk writes, new documents and updates, all acknowledged again."""
    for attempt in (writes.put, writes.bulk, writes.update, writes.put):
        status, body = await attempt(client)
        assert status == 201, body


async def run_scenario(
    client: TestClient,
    room: list[tuple[str, Callable[[], Awaitable[None]]]],
    data_dir: Path,
) -> list[int]:
    """Fill, check the refusals and reads, make room (each way in ``room``), write again."""
    writes = Writes("full")
    assert (await client.put("/full")).status == 201
    acked_per_fill = []
    for _name, make_room in room:
        acked_per_fill.append(await writes.fill(client))
        await refused_while_full(client, writes)
        await reads_answer(client, writes)
        await make_room()
        await writes_succeed(client, writes)
        await reads_answer(client, writes)
    code, out = run_cli("check", "--data-dir", str(data_dir))
    assert (code, out.strip()) == (0, "ok"), out
    return acked_per_fill


async def _page_count(client: TestClient) -> int:
    readers = client.server.app[SERVICES].readers  # type: ignore[union-attr]
    return int(await readers.run(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0]))


# --- the size cap ------------------------------------------------------------------------


async def test_size_cap_set_while_serving_refuses_writes_until_raised(
    client: TestClient, settings: Settings
) -> None:
    writer = client.server.app[SERVICES].writer  # type: ignore[union-attr]

    async def raise_cap() -> None:
        await writer.set_max_bytes(1 << 30)

    assert (await client.put("/warmup")).status == 201
    await writer.set_max_bytes((await _page_count(client)) * 4096 + 256 * 1024)
    fills = await run_scenario(client, [("raise the cap", raise_cap)], settings.data_dir)
    assert fills[0] > 10


@pytest.fixture
def capped_settings(settings: Settings) -> Settings:
    return Settings(
        data_dir=settings.data_dir,
        admin_user=ADMIN[0],
        admin_password=Secret(ADMIN[1]),
        max_database_bytes=1024 * 1024,
    )


async def test_max_database_bytes_setting_caps_the_file_from_the_start(
    aiohttp_client: Any, capped_settings: Settings
) -> None:
    client = await aiohttp_client(
        create_app(capped_settings), headers={"Authorization": basic_auth(*ADMIN)}
    )
    writer = client.server.app[SERVICES].writer

    async def raise_cap() -> None:
        await writer.set_max_bytes(4 * 1024 * 1024)

    fills = await run_scenario(client, [("raise the cap", raise_cap)], capped_settings.data_dir)
    assert fills[0] > 10
    assert (await _page_count(client)) * 4096 <= 4 * 1024 * 1024


# --- a real tiny filesystem --------------------------------------------------------------


@dataclass
class TinyFs:
    """A 4 MiB tmpfs at ``path`` (or, where mounting is not permitted, nothing: ``None``)."""

    path: Path
    mounted: bool
    why_not: str = ""

    def remount(self, size: str) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,size={size}", str(self.path)], check=True, timeout=30
        )


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[TinyFs]:
    path = tmp_path / "tmpfs"
    path.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError as exc:  # no mount(8) at all
        done = subprocess.CompletedProcess([], 1, "", str(exc))
    if done.returncode != 0:
        yield TinyFs(path, mounted=False, why_not=done.stderr.strip())
        return
    try:
        yield TinyFs(path, mounted=True)
    finally:
        if subprocess.run(["umount", str(path)], timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], timeout=30, check=True)


@pytest.fixture
async def tiny_client(tiny_fs: TinyFs, aiohttp_client: Any) -> AsyncIterator[TestClient]:
    """syncd (in-process) with its data on the tiny filesystem; stopped before the unmount."""
    settings = Settings(
        data_dir=tiny_fs.path / "data", admin_user=ADMIN[0], admin_password=Secret(ADMIN[1])
    )
    client = await aiohttp_client(
        create_app(settings), headers={"Authorization": basic_auth(*ADMIN)}
    )
    yield client
    await client.close()  # closes the database before tiny_fs unmounts


async def test_full_filesystem_refuses_writes_until_space_returns(
    tiny_fs: TinyFs, tiny_client: TestClient
) -> None:
    data_dir = tiny_fs.path / "data"
    if not tiny_fs.mounted:
        # Fallback: the same scenario against SQLite's size cap (mount was refused).
        print(f"\ntmpfs not mounted ({tiny_fs.why_not}); using the size cap instead")
        writer = tiny_client.server.app[SERVICES].writer  # type: ignore[union-attr]
        await writer.set_max_bytes((await _page_count(tiny_client)) * 4096 + 1024 * 1024)

        async def delete_filler() -> None:
            await writer.set_max_bytes((await _page_count(tiny_client)) * 4096 + 512 * 1024)

        async def grow() -> None:
            await writer.set_max_bytes(1 << 30)

    else:
        filler = tiny_fs.path / "filler"
        filler.write_bytes(b"\0" * 512 * 1024)

        async def delete_filler() -> None:
            filler.unlink()

        async def grow() -> None:
            tiny_fs.remount("16m")

    fills = await run_scenario(
        tiny_client, [("delete a filler file", delete_filler), ("grow", grow)], data_dir
    )
    print(f"\nacknowledged per fill: {fills} (tmpfs mounted: {tiny_fs.mounted})")
    assert fills[0] > 100  # most of 4 MiB went into acknowledged documents
    assert fills[1] > 10  # the filler's room was used before the second 507
