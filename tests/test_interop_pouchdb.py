"""An unmodified PouchDB (Node, tests/interop/*.js) replicates with syncd.

Each test runs one script against a real syncd on a real socket, then reads syncd's own
state over HTTP and checks that both sides agree. One-shot scripts go through
``conftest.run_node``; stepwise scripts (``NodeScript``) print a JSON line per step and wait
for pytest's go-ahead, so that pytest can look at syncd (or change it) mid-scenario. The live
sync test runs syncd as a separate process so that it can be stopped and restarted under
PouchDB. The changes-feed test is plain HTTP, as curl would see it. See
tests/interop/README.md.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import ADMIN, INTEROP_DIR, run_node

from syncd.app import create_app
from syncd.config import Settings

pytestmark = pytest.mark.interop

STEP_TIMEOUT = 60.0  # seconds any one step of a Node script may take


# --- test data --------------------------------------------------------------------------

_TEXT = (
    "what song always reminds you of summer and why does it still feel like the best road "
    "trip you ever took with friends who would you call first if you won a small fortune "
    "tomorrow morning which tiny habit changed your life most describe the strangest meal "
    "you have eaten abroad café niño über smile story moment secret dream adventure weekend "
    "childhood kitchen garden mountain ocean city winter festival grandmother language"
)
_WORDS = _TEXT.split()


def make_pack(rng: random.Random, n: int, prompts: int = 7) -> dict[str, Any]:
    """A realistic pack document of about 1 KB (deterministic for a seeded ``rng``)."""
    created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=7 * n)

    def sentence(words: int) -> str:
        text = " ".join(rng.choice(_WORDS) for _ in range(words))
        return text[0].upper() + text[1:] + "?"

    return {
        "_id": f"pack:{rng.getrandbits(128):032x}",
        "type": "pack",
        "title": sentence(3).rstrip("?"),
        "language": "en",
        "prompts": [
            {"id": f"p{i + 1}", "text": sentence(rng.randint(12, 18))} for i in range(prompts)
        ],
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updated_at": (created + timedelta(hours=n % 48)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def make_packs(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [make_pack(rng, n) for n in range(count)]


# A 1x1 PNG (a real file's bytes: signature, IHDR, IDAT, IEND) and a byte string with every
# byte value, so that no encoding step can get away with text assumptions.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
ALL_BYTES = bytes(range(256)) * 4


def digest(data: bytes) -> str:
    """CouchDB's attachment digest: ``md5-`` and the base64 of the MD5."""
    return "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode()


def without_rev(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_rev"}


def rev_key(rev: str) -> tuple[int, str]:
    gen, _, digest_ = rev.partition("-")
    return int(gen), digest_


# --- what PouchDB asked of syncd -----------------------------------------------------------

Exchange = tuple[str, str, int]  # method, path and query, status
HTTP_LOG = web.AppKey("interop_http_log", list)


@pytest.fixture
async def app(settings: Settings) -> web.Application:
    """conftest's app, also recording every request PouchDB makes (not the test's own)."""
    application = create_app(settings)
    log: list[Exchange] = []

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        if not request.headers.get("User-Agent", "").startswith("Python/"):
            log.append((request.method, request.path_qs, response.status))

    application.on_response_prepare.append(record)
    application[HTTP_LOG] = log
    return application


def pouchdb_exchanges(server: TestServer, *, open_revs: bool = False) -> list[Exchange]:
    """Every request PouchDB made so far; fails on any answer PouchDB had to work around.

    The only error expected is 404 for a replication checkpoint (``_local``) not written yet.
    Pulls must use ``_bulk_get`` (PouchDB falls back to one ``open_revs`` GET per doc when it
    fails), unless the script itself reads ``open_revs``.
    """
    log: list[Exchange] = server.app[HTTP_LOG]
    assert log, "PouchDB made no request"
    for method, path, status in log:
        if status >= 400:
            assert (method, status) == ("GET", 404) and "/_local/" in path, (method, path, status)
        assert open_revs or "open_revs" not in path, (method, path, status)
    return log


# --- Node scripts that talk step by step -------------------------------------------------


class NodeScript:
    """A stepwise script of tests/interop: JSON lines out, JSON command lines in."""

    def __init__(self, script: str, proc: asyncio.subprocess.Process) -> None:
        self.script = script
        self.proc = proc
        self.stderr = bytearray()
        self._drain = asyncio.ensure_future(self._read_stderr())

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self.stderr += chunk

    @classmethod
    async def start(cls, script: str, *args: str) -> NodeScript:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(INTEROP_DIR / script),
            *args,
            cwd=INTEROP_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=256 * 1024 * 1024,  # a step may report thousands of documents on one line
        )
        return cls(script, proc)

    async def read(self, step: str, timeout: float = STEP_TIMEOUT) -> dict[str, Any]:
        """The next line, which must report ``step``."""
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"node {self.script}: no {step!r} within {timeout} s\n{self._tail()}"
            ) from None
        if not line:
            await asyncio.wait_for(self.proc.wait(), 10)
            await self._drain
            raise AssertionError(
                f"node {self.script} exited ({self.proc.returncode}) before {step!r}\n{self._tail()}"
            )
        message: dict[str, Any] = json.loads(line)
        assert message.get("step") == step, message
        return message

    async def send(self, command: dict[str, Any] | None = None) -> None:
        """Write one command line (an empty object means: go on)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(command or {}).encode() + b"\n")
            await self.proc.stdin.drain()
        except ConnectionResetError:
            await asyncio.wait_for(self.proc.wait(), 10)
            await self._drain
            raise AssertionError(
                f"node {self.script} exited ({self.proc.returncode})\n{self._tail()}"
            ) from None

    async def finish(self, timeout: float = 10) -> None:
        """Wait for a clean exit after the last step."""
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await self._drain
        assert code == 0, f"node {self.script} exited {code}\n{self._tail()}"

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._drain.cancel()

    def _tail(self) -> str:
        return self.stderr.decode(errors="replace")[-4000:]


StartNode = Callable[..., Awaitable[NodeScript]]


@pytest.fixture
async def node(node_modules: Path) -> AsyncIterator[StartNode]:
    """Start stepwise Node scripts; any still running at teardown are killed."""
    started: list[NodeScript] = []

    async def start(script: str, *args: str) -> NodeScript:
        proc = await NodeScript.start(script, *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        await proc.close()


def base_url(server: TestServer) -> str:
    """The server's URL for PouchDB, with the admin's credentials (sent as HTTP Basic)."""
    url = server.make_url("").with_user(ADMIN[0]).with_password(ADMIN[1])
    return str(url).rstrip("/")


# --- reading syncd's state over HTTP -----------------------------------------------------


async def get_json(client: TestClient, path: str, status: int = 200, **params: Any) -> Any:
    resp = await client.get(path, params={k: str(v) for k, v in params.items()})
    body = await resp.json()
    assert resp.status == status, (path, params, resp.status, body)
    return body


async def all_docs(client: TestClient, db: str) -> dict[str, dict[str, Any]]:
    """Every live document of ``db`` by id, with ``_conflicts`` where there are any."""
    body = await get_json(client, f"/{db}/_all_docs", include_docs="true", conflicts="true")
    return {row["id"]: row["doc"] for row in body["rows"]}


async def changes(client: TestClient, db: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = await get_json(client, f"/{db}/_changes", **params)
    return body


# --- 1, 2: push and pull 2,000 pack documents --------------------------------------------


async def test_push_2000_packs_arrive_with_same_revs_and_bodies(
    node_modules: Path, server: TestServer, client: TestClient, db: str
) -> None:
    packs = make_packs(2000, seed=1)
    sizes = [len(json.dumps(p)) for p in packs]
    assert 800 <= sum(sizes) / len(sizes) <= 1300  # about 1 KB each

    out = await run_node(
        "push.js", base_url(server), db, stdin=json.dumps({"docs": packs}).encode()
    )

    rep = out["replication"]
    assert rep["ok"] and rep["status"] == "complete", rep
    assert rep["docs_read"] == rep["docs_written"] == 2000
    assert rep["doc_write_failures"] == 0 and rep["errors"] == []
    local = out["local"]
    assert len(local) == 2000

    stored = await all_docs(client, db)
    assert set(stored) == {p["_id"] for p in packs}
    for pack in packs:
        doc = stored[pack["_id"]]
        assert doc["_rev"] == local[pack["_id"]]["rev"]
        assert doc["_rev"].startswith("1-")
        assert without_rev(doc) == pack
    info = await get_json(client, f"/{db}")
    assert info["doc_count"] == 2000 and info["doc_del_count"] == 0
    # A few through the single-document route too.
    for pack in packs[::400]:
        doc = await get_json(client, f"/{db}/{pack['_id']}")
        assert doc == {**pack, "_rev": local[pack["_id"]]["rev"]}
    used = {path.partition("?")[0].rsplit("/", 1)[-1] for _, path, _ in pouchdb_exchanges(server)}
    assert {"_revs_diff", "_bulk_docs"} <= used


async def test_pull_2000_packs_into_fresh_pouchdb_is_identical(
    node_modules: Path, server: TestServer, client: TestClient, db: str
) -> None:
    packs = make_packs(2000, seed=2)
    url = base_url(server)
    pushed = await run_node("push.js", url, db, stdin=json.dumps({"docs": packs}).encode())
    assert pushed["replication"]["docs_written"] == 2000

    out = await run_node("pull.js", url, db, stdin=b"{}")

    rep = out["replication"]
    assert rep["ok"] and rep["status"] == "complete", rep
    assert rep["docs_read"] == rep["docs_written"] == 2000
    assert rep["doc_write_failures"] == 0 and rep["errors"] == []
    pulled = out["local"]
    stored = await all_docs(client, db)
    assert set(pulled) == set(stored) == {p["_id"] for p in packs}
    for pack in packs:
        mine, theirs = pulled[pack["_id"]], stored[pack["_id"]]
        assert mine["rev"] == theirs["_rev"] == pushed["local"][pack["_id"]]["rev"]
        assert mine["doc"] == theirs  # ids, revs and bodies, with no _conflicts on either
        assert without_rev(mine["doc"]) == pack
    feed = await changes(client, db)
    assert len(feed["results"]) == 2000
    assert rep["last_seq"] == feed["last_seq"]
    used = {path.partition("?")[0].rsplit("/", 1)[-1] for _, path, _ in pouchdb_exchanges(server)}
    assert {"_changes", "_bulk_get"} <= used


# --- 3: conflicts ----------------------------------------------------------------------


async def test_conflicting_edits_agree_on_winner_and_resolution_clears_everywhere(
    node: StartNode, server: TestServer, client: TestClient, db: str
) -> None:
    pack = make_pack(random.Random(3), 0)
    params = {
        "doc": pack,
        "edit_a": {"title": "Edited on the phone", "updated_at": "2026-02-01T10:00:00Z"},
        "edit_b": {"title": "Edited on the tablet", "updated_at": "2026-02-01T10:00:05Z"},
    }
    script = await node("conflicts.js", base_url(server), db, json.dumps(params))
    pid = pack["_id"]

    step = await script.read("conflicted")
    rev_a, rev_b = step["rev_a"], step["rev_b"]
    assert rev_a != rev_b and rev_a.startswith("2-") and rev_b.startswith("2-")
    winner, loser = sorted([rev_a, rev_b], key=rev_key, reverse=True)
    # syncd keeps both branches and reports the loser as a conflict of the winner.
    doc = await get_json(client, f"/{db}/{pid}", conflicts="true")
    assert doc["_rev"] == winner
    assert doc["_conflicts"] == [loser]
    expected_title = params["edit_a" if winner == rev_a else "edit_b"]["title"]
    assert doc["title"] == expected_title
    leaves = await get_json(client, f"/{db}/{pid}", open_revs="all")
    assert sorted(entry["ok"]["_rev"] for entry in leaves) == sorted([rev_a, rev_b])
    # All three agree on the winner and on the conflict.
    for side in ("a", "b", "remote"):
        seen = step[side]
        assert seen["doc"]["_rev"] == winner, (side, seen)
        assert seen["doc"]["_conflicts"] == [loser], (side, seen)
        assert seen["doc"]["title"] == expected_title
        assert sorted(seen["leaves"]) == sorted([rev_a, rev_b]), (side, seen)
    for side in ("a", "b"):
        for name in ("first", "second"):
            for direction in ("push", "pull"):
                rep = step[name][side][direction]
                assert rep["ok"] and rep["doc_write_failures"] == 0, (name, side, rep)
    stored = await all_docs(client, db)
    assert stored[pid]["_conflicts"] == [loser]
    await script.send()

    done = await script.read("resolved")
    assert done["winner"] == winner
    (tombstone,) = done["removed"]
    assert tombstone.startswith("3-")
    doc = await get_json(client, f"/{db}/{pid}", conflicts="true", deleted_conflicts="true")
    assert doc["_rev"] == winner
    assert "_conflicts" not in doc
    assert doc["_deleted_conflicts"] == [tombstone]
    assert doc["title"] == expected_title
    gone = await get_json(client, f"/{db}/{pid}", rev=tombstone)
    assert gone["_deleted"] is True
    for side in ("a", "b", "remote"):
        seen = done[side]
        assert seen["doc"]["_rev"] == winner, (side, seen)
        assert "_conflicts" not in seen["doc"], (side, seen)
        # (PouchDB's get() has no deleted_conflicts; the tombstone shows as a leaf.)
        assert sorted(seen["leaves"]) == sorted([winner, tombstone]), (side, seen)
    stored = await all_docs(client, db)
    assert "_conflicts" not in stored[pid]
    await script.finish()
    pouchdb_exchanges(server, open_revs=True)  # conflicts.js reads open_revs=all itself


# --- 4: deletions ----------------------------------------------------------------------


async def test_deletions_replicate_both_ways_and_show_in_changes(
    node: StartNode, server: TestServer, client: TestClient, db: str
) -> None:
    packs = make_packs(10, seed=4)
    ids = [p["_id"] for p in packs]
    delete_locally, delete_on_server, keep = ids[:3], ids[3:6], ids[6:]
    params = {"docs": packs, "delete_locally": delete_locally}
    script = await node("deletions.js", base_url(server), db, json.dumps(params))

    pushed = await script.read("pushed")
    assert pushed["replication"]["docs_written"] == 10
    revs = {i: pushed["local"]["docs"][i]["rev"] for i in ids}
    await script.send()

    step = await script.read("deleted_locally")
    assert step["replication"]["docs_written"] == 3, step["replication"]
    tombstones = step["tombstones"]
    assert set(tombstones) == set(delete_locally)
    feed = {row["id"]: row for row in (await changes(client, db))["results"]}
    assert set(feed) == set(ids)
    for doc_id in delete_locally:
        assert feed[doc_id]["deleted"] is True
        assert feed[doc_id]["changes"] == [{"rev": tombstones[doc_id]}]
        assert tombstones[doc_id].startswith("2-")
        missing = await get_json(client, f"/{db}/{doc_id}", status=404)
        assert missing["error"] == "not_found" and missing["reason"] == "deleted"
        old = await get_json(client, f"/{db}/{doc_id}", rev=tombstones[doc_id])
        assert old == {"_id": doc_id, "_rev": tombstones[doc_id], "_deleted": True}
    for doc_id in ids[3:]:
        assert "deleted" not in feed[doc_id] or feed[doc_id]["deleted"] is False
        assert feed[doc_id]["changes"] == [{"rev": revs[doc_id]}]

    # Now delete three others on syncd, as curl would.
    deleted_on_server = {}
    for doc_id in delete_on_server:
        resp = await client.delete(f"/{db}/{doc_id}", params={"rev": revs[doc_id]})
        assert resp.status == 200, await resp.text()
        deleted_on_server[doc_id] = (await resp.json())["rev"]
    await script.send({"deleted_on_server": deleted_on_server})

    done = await script.read("pulled")
    assert done["replication"]["docs_written"] == 3, done["replication"]
    local = done["local"]
    for doc_id, rev in {**tombstones, **deleted_on_server}.items():
        assert local["docs"][doc_id]["live"] is False
        assert local["changes"][doc_id] == {"deleted": True, "revs": [rev]}
    for doc_id in keep:
        assert local["docs"][doc_id] == {"live": True, "rev": revs[doc_id]}
    for doc_id, rev in deleted_on_server.items():
        assert done["tombstones"][doc_id] == {"_id": doc_id, "_rev": rev, "_deleted": True}
    feed_rows = (await changes(client, db))["results"]
    deleted = {row["id"] for row in feed_rows if row.get("deleted")}
    assert deleted == set(delete_locally) | set(delete_on_server)
    info = await get_json(client, f"/{db}")
    assert info["doc_count"] == 4 and info["doc_del_count"] == 6
    await script.finish()
    pouchdb_exchanges(server)


# --- 5: attachments --------------------------------------------------------------------


async def test_binary_attachments_replicate_both_ways_with_same_digest_and_bytes(
    node: StartNode, server: TestServer, client: TestClient, db: str
) -> None:
    pack = make_pack(random.Random(5), 0)
    params = {
        "doc": pack,
        "name": "icon.png",
        "content_type": "image/png",
        "data": base64.b64encode(PNG).decode(),
    }
    script = await node("attachments.js", base_url(server), db, json.dumps(params))
    pid = pack["_id"]

    pushed = await script.read("pushed")
    assert pushed["replication"]["docs_written"] == 1, pushed["replication"]
    local = pushed["local"]
    assert local["attachments"]["icon.png"]["digest"] == digest(PNG)
    doc = await get_json(client, f"/{db}/{pid}")
    assert doc["_rev"] == local["rev"]
    stub = doc["_attachments"]["icon.png"]
    assert stub["stub"] is True
    assert stub["digest"] == digest(PNG)
    assert stub["length"] == len(PNG)
    assert stub["content_type"] == "image/png"
    resp = await client.get(f"/{db}/{pid}/icon.png")
    assert resp.status == 200
    assert resp.content_type == "image/png"
    assert await resp.read() == PNG

    # The other way: an attachment added on syncd to the pushed doc, and a new doc whose
    # attachment is every byte value, both uploaded as curl would.
    resp = await client.put(
        f"/{db}/{pid}/raw.bin",
        params={"rev": doc["_rev"]},
        data=ALL_BYTES,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert resp.status == 201, await resp.text()
    rev_pid = (await resp.json())["rev"]
    resp = await client.put(f"/{db}/pack-cover", json={"title": "cover"})
    assert resp.status == 201, await resp.text()
    resp = await client.put(
        f"/{db}/pack-cover/cover.png",
        params={"rev": (await resp.json())["rev"]},
        data=PNG,
        headers={"Content-Type": "image/png"},
    )
    assert resp.status == 201, await resp.text()
    rev_cover = (await resp.json())["rev"]
    await script.send({"ids": [pid, "pack-cover"]})

    done = await script.read("pulled")
    for name in ("fresh", "first"):
        rep = done["replication"][name]
        assert rep["ok"] and rep["doc_write_failures"] == 0, (name, rep)
        seen = done[name]
        assert seen[pid]["rev"] == rev_pid
        assert seen[pid]["attachments"] == {
            "icon.png": {
                "content_type": "image/png",
                "digest": digest(PNG),
                "length": len(PNG),
                "data": base64.b64encode(PNG).decode(),
            },
            "raw.bin": {
                "content_type": "application/octet-stream",
                "digest": digest(ALL_BYTES),
                "length": len(ALL_BYTES),
                "data": base64.b64encode(ALL_BYTES).decode(),
            },
        }
        assert seen["pack-cover"]["rev"] == rev_cover
        assert seen["pack-cover"]["attachments"]["cover.png"]["digest"] == digest(PNG)
        assert seen["pack-cover"]["attachments"]["cover.png"]["data"] == params["data"]
    doc = await get_json(client, f"/{db}/{pid}")
    assert {name: stub["digest"] for name, stub in doc["_attachments"].items()} == {
        "icon.png": digest(PNG),
        "raw.bin": digest(ALL_BYTES),
    }
    resp = await client.get(f"/{db}/{pid}/raw.bin")
    assert await resp.read() == ALL_BYTES
    await script.finish()
    pouchdb_exchanges(server)


# --- 6: checkpoints --------------------------------------------------------------------


async def test_second_replication_transfers_only_new_docs(
    node: StartNode, server: TestServer, client: TestClient, db: str
) -> None:
    packs = make_packs(60, seed=6)
    params = {"first": packs[:50], "second": packs[50:]}
    script = await node("checkpoints.js", base_url(server), db, json.dumps(params))

    push1 = (await script.read("push1"))["replication"]
    assert (push1["docs_read"], push1["docs_written"]) == (50, 50)
    await script.send()
    push2 = (await script.read("push2"))["replication"]
    assert (push2["docs_read"], push2["docs_written"]) == (10, 10), push2
    assert len(await all_docs(client, db)) == 60
    await script.send()

    pull1 = (await script.read("pull1"))["replication"]
    assert (pull1["docs_read"], pull1["docs_written"]) == (60, 60)
    extra = make_packs(5, seed=66)
    resp = await client.post(f"/{db}/_bulk_docs", json={"docs": extra})
    assert resp.status == 201, await resp.text()
    await script.send()
    done = await script.read("pull2")
    pull2 = done["replication"]
    assert (pull2["docs_read"], pull2["docs_written"]) == (5, 5), pull2
    assert pull2["last_seq"] == (await changes(client, db))["last_seq"]
    assert sorted(done["ids"]) == sorted(p["_id"] for p in packs + extra)
    await script.finish()
    pouchdb_exchanges(server)


# --- 7: live bidirectional sync across a syncd restart -----------------------------------


def basic_auth() -> str:
    """The admin's ``Authorization`` header value."""
    return "Basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SyncdProcess:
    """``python -m syncd serve`` as a child process on a fixed port and data dir."""

    START_TIMEOUT = 20.0
    STOP_TIMEOUT = 15.0  # then SIGKILL

    def __init__(self, port: int, data_dir: Path, log: Path) -> None:
        self.port = port
        self.data_dir = data_dir
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        self.node_url = f"http://{ADMIN[0]}:{ADMIN[1]}@127.0.0.1:{port}"  # for PouchDB
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start syncd and wait until ``GET /_up`` answers 200."""
        assert self.proc is None
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "syncd",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={
                    **os.environ,
                    "SYNCD_LOG_FORMAT": "text",
                    "SYNCD_ADMIN_USER": ADMIN[0],
                    "SYNCD_ADMIN_PASSWORD": ADMIN[1],
                },
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.START_TIMEOUT
        async with aiohttp.ClientSession() as session:
            while True:
                if self.proc.returncode is not None:
                    raise AssertionError(f"syncd exited {self.proc.returncode}:\n{self.tail()}")
                try:
                    async with session.get(self.url + "/_up") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                if loop.time() > deadline:
                    raise AssertionError(f"syncd did not answer /_up:\n{self.tail()}")
                await asyncio.sleep(0.05)  # polling another process, with a deadline

    async def stop(self) -> float:
        """SIGTERM (SIGKILL after ``STOP_TIMEOUT``); how many seconds the exit took."""
        if self.proc is None:
            return 0.0
        proc, self.proc = self.proc, None
        loop = asyncio.get_running_loop()
        started = loop.time()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.STOP_TIMEOUT)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        return loop.time() - started

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@pytest.fixture
async def syncd_process(tmp_path: Path) -> AsyncIterator[SyncdProcess]:
    """syncd as a separate process the test can stop and restart (same port, same data)."""
    proc = SyncdProcess(free_port(), tmp_path / "proc-data", tmp_path / "syncd.log")
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()


async def _revs_on_syncd(
    session: aiohttp.ClientSession, url: str, db: str, ids: list[str]
) -> dict[str, str | None]:
    async with session.post(f"{url}/{db}/_all_docs", json={"keys": ids}) as resp:
        assert resp.status == 200, await resp.text()
        rows = (await resp.json())["rows"]
    return {
        row["key"]: row["value"]["rev"]
        if "value" in row and not row["value"].get("deleted")
        else None
        for row in rows
    }


async def wait_on_syncd(
    session: aiohttp.ClientSession, url: str, db: str, revs: dict[str, str], timeout: float
) -> float:
    """Poll syncd until every id has the given rev; seconds it took (fail after ``timeout``)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        have = await _revs_on_syncd(session, url, db, list(revs))
        if have == revs:
            return loop.time() - started
        if loop.time() - started > timeout:
            missing = {k: v for k, v in revs.items() if have.get(k) != v}
            raise AssertionError(f"not on syncd within {timeout} s: {missing}")
        await asyncio.sleep(0.02)  # polling another process, with a deadline


async def test_live_sync_both_ways_within_2s_and_survives_syncd_restart(
    node: StartNode, syncd_process: SyncdProcess
) -> None:
    url, db = syncd_process.url, "live-" + uuid.uuid4().hex[:8]
    packs = iter(make_packs(60, seed=7))
    async with aiohttp.ClientSession(headers={"Authorization": basic_auth()}) as session:

        async def put_on_syncd(count: int) -> dict[str, str]:
            docs = [next(packs) for _ in range(count)]
            async with session.post(f"{url}/{db}/_bulk_docs", json={"docs": docs}) as resp:
                assert resp.status == 201, await resp.text()
                return {r["id"]: r["rev"] for r in await resp.json()}

        async def put_on_pouch(count: int) -> dict[str, str]:
            await script.send({"op": "put", "docs": [next(packs) for _ in range(count)]})
            revs: dict[str, str] = (await script.read("put"))["revs"]
            return revs

        async def wait_on_pouch(revs: dict[str, str], timeout_ms: int) -> dict[str, Any]:
            await script.send({"op": "wait", "revs": revs, "timeout_ms": timeout_ms})
            return await script.read("wait", timeout=timeout_ms / 1000 + STEP_TIMEOUT)

        async with session.put(f"{url}/{db}") as resp:
            assert resp.status == 201, await resp.text()
        script = await node(
            "live_sync.js", syncd_process.node_url, db, json.dumps({"back_off_ms": 200})
        )
        await script.read("ready")

        # A write on either side shows on the other within 2 s.
        for _ in range(3):
            on_server = await put_on_syncd(1)
            seen = await wait_on_pouch(on_server, 2000)
            assert seen["ok"], seen
            on_pouch = await put_on_pouch(1)
            await wait_on_syncd(session, url, db, on_pouch, 2.0)

        # Writes on both sides just before syncd stops, on PouchDB while it is down: once it
        # is back, everything arrives and sync goes on as before.
        before_stop_server = await put_on_syncd(5)
        before_stop_pouch = await put_on_pouch(5)
        stop_seconds = await syncd_process.stop()
        while_down = await put_on_pouch(5)
        await syncd_process.start()
        await wait_on_syncd(session, url, db, {**before_stop_pouch, **while_down}, 10.0)
        seen = await wait_on_pouch(before_stop_server, 10000)
        assert seen["ok"], seen
        after = await put_on_syncd(1)
        seen = await wait_on_pouch(after, 2000)
        assert seen["ok"], seen
        after_pouch = await put_on_pouch(1)
        await wait_on_syncd(session, url, db, after_pouch, 2.0)

        # Both sides hold the same documents at the same revs, without conflicts.
        await script.send({"op": "snapshot"})
        snap = await script.read("snapshot")
        async with session.get(
            f"{url}/{db}/_all_docs", params={"include_docs": "true", "conflicts": "true"}
        ) as resp:
            stored = {row["id"]: row["doc"] for row in (await resp.json())["rows"]}
        assert len(stored) == 3 * 2 + 5 + 5 + 5 + 1 + 1
        assert {i: e["rev"] for i, e in snap["local"].items()} == {
            i: d["_rev"] for i, d in stored.items()
        }
        assert all("_conflicts" not in d for d in stored.values())
        assert all(e["doc"] == stored[i] for i, e in snap["local"].items())
        assert snap["events"]["errors"] == [] and snap["events"]["denied"] == 0
        assert snap["events"]["request_errors"]["pull"] >= 1  # PouchDB did see syncd go away
        # PouchDB itself may leave a failed request unhandled while syncd is going away or
        # down (a network-level FetchError: refused, reset, hang up); nothing else.
        for reason in snap["events"]["unhandled_rejections"]:
            assert reason.startswith(f"request to {syncd_process.url}/{db}/"), reason
            assert "failed, reason:" in reason, reason

        await script.send({"op": "stop"})
        stopped = await script.read("stopped")
        assert stopped["events"]["errors"] == []
        assert stopped["events"]["unhandled_rejections"] == snap["events"]["unhandled_rejections"]
        await script.finish()
    # A graceful stop with PouchDB's longpoll open must not wait out a long shutdown.
    assert stop_seconds < SyncdProcess.STOP_TIMEOUT, syncd_process.tail()


# --- 8: the changes feed as curl sees it -------------------------------------------------


async def open_feed(client: TestClient, db: str, **params: Any) -> aiohttp.ClientResponse:
    """``GET /{db}/_changes`` up to its response headers (bounded); the body is left to read."""
    resp = await asyncio.wait_for(
        client.get(f"/{db}/_changes", params={k: str(v) for k, v in params.items()}), 5
    )
    assert resp.status == 200, await resp.text()
    return resp


def parse_sse(text: str) -> list[dict[str, str]]:
    """Server-sent events: one dict of field -> value per event (comments dropped)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = fields.get(name, "") + value.removeprefix(" ")
        if fields:
            events.append(fields)
    return events


async def test_changes_feed_in_all_four_modes_over_plain_http(client: TestClient, db: str) -> None:
    revs = {}
    for name in ("alpha", "beta", "gamma"):
        resp = await client.put(f"/{db}/{name}", json={"n": name})
        revs[name] = (await resp.json())["rev"]
    resp = await client.delete(f"/{db}/beta", params={"rev": revs["beta"]})
    revs["beta"] = (await resp.json())["rev"]

    # normal: one JSON object; each doc once, at its latest change, in seq order.
    normal = await changes(client, db)
    rows = normal["results"]
    assert [r["id"] for r in rows] == ["alpha", "gamma", "beta"]
    assert [r["changes"] for r in rows] == [[{"rev": revs[r["id"]]}] for r in rows]
    assert [r.get("deleted", False) for r in rows] == [False, False, True]
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert normal["last_seq"] == seqs[-1]
    assert normal.get("pending", 0) == 0
    last_seq = normal["last_seq"]
    assert (await changes(client, db, since=seqs[0]))["results"] == rows[1:]
    assert await changes(client, db, since="now") == {
        "results": [],
        "last_seq": last_seq,
        **({"pending": 0} if "pending" in normal else {}),
    }

    # longpoll with changes already there: answers at once, like normal.
    quick = await changes(client, db, feed="longpoll", since=seqs[0])
    assert quick["results"] == rows[1:]
    # longpoll since=now: waits (a heartbeat proves it is parked), a write wakes it.
    resp = await open_feed(client, db, feed="longpoll", since="now", heartbeat=50)
    head = await asyncio.wait_for(resp.content.readline(), 5)
    put = await client.put(f"/{db}/delta", json={"n": "delta"})
    delta_rev = (await put.json())["rev"]
    body = json.loads(head + await asyncio.wait_for(resp.read(), 5))
    assert [(r["id"], r["changes"]) for r in body["results"]] == [("delta", [{"rev": delta_rev}])]
    assert body["last_seq"] == body["results"][0]["seq"]
    assert body["last_seq"] != last_seq
    last_seq = body["last_seq"]
    # longpoll since=now with no write: the timeout ends it with no results.
    assert await changes(client, db, feed="longpoll", since="now", timeout=100) == {
        "results": [],
        "last_seq": last_seq,
        **({"pending": 0} if "pending" in normal else {}),
    }

    # continuous: one JSON object per line, then a last_seq line when the feed times out.
    resp = await open_feed(client, db, feed="continuous", since=0, timeout=200)
    assert resp.status == 200
    lines = [json.loads(line) for line in (await resp.text()).splitlines() if line.strip()]
    assert [r["id"] for r in lines[:-1]] == ["alpha", "gamma", "beta", "delta"]
    assert lines[-2]["seq"] == last_seq
    assert lines[-1]["last_seq"] == last_seq
    assert "results" not in lines[-1]
    # continuous since=now: a write shows up as the next line.
    resp = await open_feed(client, db, feed="continuous", since="now", heartbeat=50)
    first = await asyncio.wait_for(resp.content.readline(), 5)
    assert first.strip() == b"", first
    put = await client.put(f"/{db}/epsilon", json={"n": "epsilon"})
    eps_rev = (await put.json())["rev"]
    line = b""
    while not line.strip():  # heartbeats until the change
        line = await asyncio.wait_for(resp.content.readline(), 5)
    change = json.loads(line)
    assert (change["id"], change["changes"]) == ("epsilon", [{"rev": eps_rev}])
    resp.close()
    last_seq = change["seq"]

    # eventsource: SSE, one event per change with id: = its seq.
    resp = await open_feed(client, db, feed="eventsource", since=0, timeout=200)
    assert resp.status == 200
    assert resp.content_type == "text/event-stream"
    events = [e for e in parse_sse(await resp.text()) if e.get("data")]
    data = [json.loads(e["data"]) for e in events]
    assert [d["id"] for d in data] == ["alpha", "gamma", "beta", "delta", "epsilon"]
    assert [e["id"] for e in events] == [json.dumps(d["seq"]).strip('"') for d in data]
    assert data[-1]["seq"] == last_seq
    # eventsource since=now: wait for a heartbeat event, write, read the change's event.
    resp = await open_feed(client, db, feed="eventsource", since="now", heartbeat=50)
    buffer = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
    assert b"data: {" not in buffer, buffer
    put = await client.put(f"/{db}/zeta", json={"n": "zeta"})
    zeta_rev = (await put.json())["rev"]
    event: dict[str, str] = {}
    while not event.get("data"):
        chunk = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
        event = parse_sse(chunk.decode())[0] if parse_sse(chunk.decode()) else {}
    change = json.loads(event["data"])
    assert (change["id"], change["changes"]) == ("zeta", [{"rev": zeta_rev}])
    assert event["id"] == json.dumps(change["seq"]).strip('"')
    resp.close()


# --- 9: revs_limit on both sides ---------------------------------------------------------


def common_suffix_agrees(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two ``_revisions`` of the same leaf agree where their stemmed histories overlap."""
    if a["start"] != b["start"]:
        return False
    n = min(len(a["ids"]), len(b["ids"]))
    return bool(a["ids"][:n] == b["ids"][:n])


async def test_revs_limit_20_stemmed_histories_stay_consistent(
    node: StartNode, server: TestServer, client: TestClient, db: str
) -> None:
    limit, first, second, on_server = 20, 24, 15, 10  # 1 + 24 + 15 + 10 = 50 revisions
    resp = await client.put(f"/{db}/_revs_limit", data=b"20")
    assert resp.status == 200, await resp.text()
    assert await get_json(client, f"/{db}/_revs_limit") == limit
    packs = make_packs(100, seed=9)
    params = {"docs": packs, "revs_limit": limit, "first_edits": first, "second_edits": second}
    script = await node("revs_limit.js", base_url(server), db, json.dumps(params))

    async def check_against_syncd(local: dict[str, Any], gen: int) -> dict[str, Any]:
        stored = await all_docs(client, db)
        assert set(stored) == set(local)
        out = {}
        for doc_id, entry in local.items():
            doc = await get_json(client, f"/{db}/{doc_id}", revs="true", conflicts="true")
            assert doc["_rev"] == entry["rev"] and doc["_rev"].startswith(f"{gen}-")
            assert "_conflicts" not in doc and "_conflicts" not in entry["doc"]
            assert "_conflicts" not in stored[doc_id]
            mine, theirs = entry["revisions"], doc["_revisions"]
            assert len(mine["ids"]) == limit and len(theirs["ids"]) == limit
            assert common_suffix_agrees(mine, theirs), (doc_id, mine, theirs)
            out[doc_id] = doc
        return out

    step = await script.read("pushed1")
    assert step["replication"]["docs_written"] == 100
    await check_against_syncd(step["local"], 1 + first)
    await script.send()

    step = await script.read("pushed2")
    assert step["replication"]["docs_written"] == 100
    stored = await check_against_syncd(step["local"], 1 + first + second)
    # Ten more edits of every doc on syncd: history reaches 50 revisions there too.
    for n in range(on_server):
        batch = [{**doc, "edits": f"server {n}"} for doc in stored.values()]
        for doc in batch:
            doc.pop("_revisions")
        resp = await client.post(f"/{db}/_bulk_docs", json={"docs": batch})
        results = await resp.json()
        assert all(r.get("ok") for r in results), results[:3]
        for r in results:
            stored[r["id"]]["_rev"] = r["rev"]
    await script.send()

    done = await script.read("pulled")
    for name in ("same", "fresh"):
        rep = done["replication"][name]
        assert rep["docs_written"] == 100 and rep["doc_write_failures"] == 0, (name, rep)
        final = await check_against_syncd(done[name], 50)
        for doc_id, doc in final.items():
            assert doc["_revisions"]["start"] == 50
            assert done[name][doc_id]["revisions"] == doc["_revisions"]
            assert without_rev(done[name][doc_id]["doc"]) == without_rev(
                {k: v for k, v in doc.items() if k not in ("_revisions",)}
            )
    await script.finish()
    pouchdb_exchanges(server)
