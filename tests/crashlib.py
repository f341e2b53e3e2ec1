"""syncd as a child process, and the kill-and-restart scenario of the crash-safety checks.

Shared by ``tests/test_crash_safety.py`` (20 kills, part of the suite), the other tests that
need a real ``python -m syncd serve`` process (feed churn, lifecycle, storage, observability)
and ``stress/crash.py`` (the same scenario with as many kills as asked, not a test).

The scenario: several asyncio clients write to one database without pause, some with
``_bulk_docs`` batches and some with single ``PUT``s, creating documents and updating their
own. Each write that gets a 2xx goes in a ledger. After a random number of acknowledged writes
(a seeded choice) the server is killed with SIGKILL; clients whose request was in flight mark
those documents "in doubt" (the write may or may not have committed) and wait. ``syncd check``
runs on the crashed file, the server starts again on the same data directory, clients resolve
their doubts from ``_all_docs`` and go on. At the end every acknowledged revision must be
readable with ``GET /db/doc?rev=`` and carry the body that was written, and ``update_seq`` must
never have gone backwards across a restart.

Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

HOST = "127.0.0.1"  # the only address anything here talks to
ADMIN = ("admin", "admin-password")
ROOT = Path(__file__).resolve().parent.parent
INTEROP_DIR = ROOT / "tests" / "interop"
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)


def basic_auth(name: str = ADMIN[0], password: str = ADMIN[1]) -> str:
    """An ``Authorization`` header value for HTTP Basic."""
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


ADMIN_HEADERS = {"Authorization": basic_auth()}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# --- syncd as a child process ----------------------------------------------------------------


class SyncdProcess:
    """``python -m syncd serve`` on 127.0.0.1, a fixed port and a fixed data directory.

    Built on ``subprocess.Popen`` so that one process can outlive an event loop (module-scoped
    fixtures) and be used from plain and async code alike. Waiting is polling with a deadline:
    the process is another program, there is no event to await.
    """

    START_TIMEOUT = 30.0

    def __init__(
        self,
        data_dir: Path,
        log: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.log = log
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "SYNCD_ADMIN_USER": ADMIN[0],
            "SYNCD_ADMIN_PASSWORD": ADMIN[1],
            **(env or {}),
        }
        self.url = f"http://{HOST}:{self.port}"
        self.node_url = f"http://{ADMIN[0]}:{ADMIN[1]}@{HOST}:{self.port}"  # for PouchDB
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def spawn(self) -> None:
        """Start the process (does not wait for it to answer)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "syncd",
                    "serve",
                    "--host",
                    HOST,
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                ],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=self.env,
            )
        self.starts += 1

    def _up_once(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=2) as sock:
                sock.sendall(b"GET /_up HTTP/1.1\r\nHost: syncd\r\nConnection: close\r\n\r\n")
                head = sock.recv(64)
        except OSError:
            return False
        return head.startswith(b"HTTP/1.1 200")

    def _raise_if_exited(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"syncd exited {self.proc.returncode}:\n{self.tail()}")

    def start(self, timeout: float = START_TIMEOUT) -> float:
        """Spawn and wait (blocking) until ``GET /_up`` is 200; seconds it took."""
        started = time.monotonic()
        self.spawn()
        while not self._up_once():
            self._raise_if_exited()
            if time.monotonic() - started > timeout:
                raise AssertionError(f"syncd did not answer /_up in {timeout} s:\n{self.tail()}")
            time.sleep(0.02)  # polling another process, with a deadline
        return time.monotonic() - started

    async def astart(self, timeout: float = START_TIMEOUT) -> float:
        """Spawn and wait (without blocking the loop) until ``GET /_up`` is 200."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.spawn()
        while not await asyncio.to_thread(self._up_once):
            self._raise_if_exited()
            if loop.time() - started > timeout:
                raise AssertionError(f"syncd did not answer /_up in {timeout} s:\n{self.tail()}")
            await asyncio.sleep(0.02)  # polling another process, with a deadline
        return loop.time() - started

    def kill(self) -> None:
        """SIGKILL, and reap the process."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_exit(self, timeout: float) -> int:
        """The exit code, once the process ends (AssertionError after ``timeout``)."""
        assert self.proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.proc.poll() is None:
            if loop.time() > deadline:
                raise AssertionError(f"syncd still running after {timeout} s:\n{self.tail()}")
            await asyncio.sleep(0.02)  # polling another process, with a deadline
        return self.proc.returncode

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code (None if not running)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None

    def rss_kib(self) -> int:
        """Resident memory (``VmRSS`` of /proc/PID/status) in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> tuple[int, str]:
    """``python -m syncd ARGS``; (exit code, stdout + stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


async def arun_cli(*args: str, timeout: float = 120) -> tuple[int, str]:
    """``run_cli`` without blocking the event loop."""
    return await asyncio.to_thread(run_cli, *args, timeout=timeout)


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        assert resp.status == 200, f"GET {url}: {resp.status} {await resp.text()}"
        return await resp.json()


# --- the write ledger -----------------------------------------------------------------------


def rev_gen(rev: str) -> int:
    return int(rev.partition("-")[0])


@dataclass
class Ledger:
    """Every acknowledged revision and the body number written with it."""

    acked: dict[tuple[str, str], int] = field(default_factory=dict)  # (id, rev) -> n
    last_acked: dict[str, str] = field(default_factory=dict)  # id -> rev
    in_doubt_writes: int = 0
    _target: int | None = None
    _reached: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, doc_id: str, rev: str, n: int) -> None:
        self.acked[(doc_id, rev)] = n
        previous = self.last_acked.get(doc_id)
        if previous is None or rev_gen(rev) > rev_gen(previous):
            self.last_acked[doc_id] = rev
        if self._target is not None and len(self.acked) >= self._target:
            self._reached.set()

    async def wait_for(self, count: int) -> None:
        """Until ``count`` revisions in all have been acknowledged."""
        self._target = count
        self._reached.clear()
        if len(self.acked) >= count:
            return
        await self._reached.wait()


# --- load clients --------------------------------------------------------------------------


class Server:
    """The crash scenario's view of the server: its URL and whether it is up right now."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.up = asyncio.Event()
        self.stopping = False


class LoadClient:
    """One client writing without pause: ``_bulk_docs`` batches, or single ``PUT``s."""

    def __init__(
        self, index: int, bulk: bool, server: Server, db: str, ledger: Ledger, seed: int
    ) -> None:
        self.index = index
        self.bulk = bulk
        self.server = server
        self.db = db
        self.ledger = ledger
        self.rng = random.Random(seed * 1000 + index)
        self.known: dict[str, str] = {}  # doc id -> the rev this client believes is current
        self.doubt: set[str] = set()  # ids whose last write got no answer
        self.created = 0
        self.n = 0
        self.errors = 0
        self.writes = 0

    def _new_id(self) -> str:
        self.created += 1
        return f"c{self.index}-{self.created:06d}"

    def _body(self, doc_id: str) -> dict[str, Any]:
        self.n += 1
        doc: dict[str, Any] = {
            "_id": doc_id,
            "client": self.index,
            "n": self.n,
            "pad": "x" * self.rng.randint(10, 400),
        }
        rev = self.known.get(doc_id)
        if rev is not None:
            doc["_rev"] = rev
        return doc

    def _pick(self) -> str:
        settled = [d for d in self.known if d not in self.doubt]
        if settled and self.rng.random() < 0.5:
            return self.rng.choice(settled)
        return self._new_id()

    async def run(self) -> None:
        session: aiohttp.ClientSession | None = None
        try:
            while not self.server.stopping:
                if session is None:
                    await self.server.up.wait()
                    if self.server.stopping:
                        break
                    session = aiohttp.ClientSession(headers=ADMIN_HEADERS, timeout=REQUEST_TIMEOUT)
                answered = await (self._resolve(session) if self.doubt else self._write(session))
                if not answered or not self.server.up.is_set():
                    # The server died (or is about to): new connections after its restart.
                    await session.close()
                    session = None
        finally:
            if session is not None:
                await session.close()

    async def _resolve(self, session: aiohttp.ClientSession) -> bool:
        """Learn the current rev of every document in doubt (the write may have committed)."""
        ids = sorted(self.doubt)
        try:
            async with session.post(
                f"{self.server.url}/{self.db}/_all_docs", json={"keys": ids}
            ) as resp:
                assert resp.status == 200, await resp.text()
                rows = (await resp.json())["rows"]
        except (aiohttp.ClientError, TimeoutError):
            self.errors += 1
            return False
        for row in rows:
            if "value" in row:
                self.known[row["key"]] = row["value"]["rev"]
            else:
                self.known.pop(row["key"], None)
        self.doubt.clear()
        return True

    async def _write(self, session: aiohttp.ClientSession) -> bool:
        if self.bulk:
            ids = list(dict.fromkeys(self._pick() for _ in range(self.rng.randint(1, 20))))
            docs = [self._body(doc_id) for doc_id in ids]
            method, url, payload = "POST", f"{self.server.url}/{self.db}/_bulk_docs", {"docs": docs}
        else:
            docs = [self._body(self._pick())]
            method, url, payload = "PUT", f"{self.server.url}/{self.db}/{docs[0]['_id']}", docs[0]
        try:
            async with session.request(method, url, json=payload) as resp:
                status = resp.status
                answer = await resp.json()
        except (aiohttp.ClientError, TimeoutError):
            # No answer: the server died (or is dying). Each of these writes may have committed.
            self.errors += 1
            self.ledger.in_doubt_writes += len(docs)
            self.doubt.update(d["_id"] for d in docs)
            return False
        self.writes += len(docs)
        if not 200 <= status < 300:
            raise AssertionError(f"{method} {url}: {status} {answer}")
        results = answer if self.bulk else [answer]
        for doc, result in zip(docs, results, strict=True):
            if result.get("ok"):
                self.known[doc["_id"]] = result["rev"]
                self.ledger.record(doc["_id"], result["rev"], doc["n"])
            else:  # a conflict means our idea of the current rev is stale: look it up
                self.doubt.add(doc["_id"])
        return True


# --- the scenario --------------------------------------------------------------------------


@dataclass
class Figures:
    """What a crash run measured."""

    kills: int = 0
    acked_revisions: int = 0
    acked_docs: int = 0
    in_doubt_writes: int = 0
    lost: list[str] = field(default_factory=list)
    wrong_winner: list[str] = field(default_factory=list)
    seq_regressions: list[str] = field(default_factory=list)
    check_failures: list[str] = field(default_factory=list)
    update_seqs: list[int] = field(default_factory=list)  # after each restart
    restart_seconds: list[float] = field(default_factory=list)
    final_update_seq: int = 0
    pouchdb: dict[str, Any] | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        restarts = self.restart_seconds or [0.0]
        lines = [
            f"kills                    {self.kills}",
            f"acknowledged revisions   {self.acked_revisions} ({self.acked_docs} documents)",
            f"writes without an answer {self.in_doubt_writes}",
            f"acknowledged writes lost {len(self.lost)}",
            f"wrong winners            {len(self.wrong_winner)}",
            f"update_seq regressions   {len(self.seq_regressions)}",
            f"syncd check failures     {len(self.check_failures)}",
            f"final update_seq         {self.final_update_seq}",
            f"restart to /_up          mean {sum(restarts) / len(restarts):.2f} s, "
            f"max {max(restarts):.2f} s",
            f"elapsed                  {self.seconds:.1f} s "
            f"({self.acked_revisions / max(self.seconds, 1e-9):.0f} acknowledged writes/s)",
        ]
        if self.pouchdb is not None:
            lines.append(f"pouchdb resume           {json.dumps(self.pouchdb)}")
        for name in ("lost", "wrong_winner", "seq_regressions", "check_failures"):
            for item in getattr(self, name)[:10]:
                lines.append(f"  {name}: {item}")
        return "\n".join(lines)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.wrong_winner or self.seq_regressions or self.check_failures)


async def check_file(proc: SyncdProcess, figures: Figures, when: str) -> None:
    """``syncd check`` on the data directory; a failure is recorded, not raised."""
    code, out = await arun_cli("check", "--data-dir", str(proc.data_dir))
    if code != 0 or out.strip().splitlines()[-1:] != ["ok"]:
        figures.check_failures.append(f"{when}: exit {code}: {out.strip()[-500:]}")


async def update_seq(session: aiohttp.ClientSession, url: str, db: str) -> int:
    info = await get_json(session, f"{url}/{db}")
    return int(info["update_seq"])


async def crash_scenario(
    proc: SyncdProcess,
    *,
    kills: int,
    seed: int,
    db: str = "crash",
    bulk_clients: int = 3,
    put_clients: int = 3,
    writes_between_kills: tuple[int, int] = (20, 250),
    progress: Callable[[str], None] | None = None,
) -> Figures:
    """Write, SIGKILL at random moments, restart, check; ``proc`` is running on return."""
    rng = random.Random(seed)
    figures = Figures()
    ledger = Ledger()
    started = time.monotonic()
    if proc.proc is None or proc.proc.poll() is not None:
        await proc.astart()
    server = Server(proc.url)
    # The controller's own session: a new connection per request (the server dies under it).
    async with aiohttp.ClientSession(
        headers=ADMIN_HEADERS,
        timeout=REQUEST_TIMEOUT,
        connector=aiohttp.TCPConnector(force_close=True),
    ) as admin:
        async with admin.put(f"{proc.url}/{db}") as resp:
            assert resp.status in (201, 412), await resp.text()
        server.up.set()
        clients = [
            LoadClient(i, i < bulk_clients, server, db, ledger, seed)
            for i in range(bulk_clients + put_clients)
        ]
        tasks = [asyncio.create_task(c.run(), name=f"load-{c.index}") for c in clients]
        try:
            for kill in range(1, kills + 1):
                await _race(
                    ledger.wait_for(len(ledger.acked) + rng.randint(*writes_between_kills)), tasks
                )
                before = await update_seq(admin, proc.url, db)
                server.up.clear()
                proc.kill()
                figures.kills += 1
                # The crashed file is checked while the server starts again on it.
                checking = asyncio.create_task(check_file(proc, figures, f"after kill {kill}"))
                figures.restart_seconds.append(await proc.astart())
                await checking
                after = await update_seq(admin, proc.url, db)
                figures.update_seqs.append(after)
                if after < before:
                    figures.seq_regressions.append(f"kill {kill}: {before} -> {after}")
                if after < len(ledger.acked):
                    figures.seq_regressions.append(
                        f"kill {kill}: update_seq {after} < {len(ledger.acked)} acknowledged"
                    )
                server.up.set()
                if progress is not None:
                    progress(
                        f"kill {kill}/{kills}: update_seq {before} -> {after}, "
                        f"{len(ledger.acked)} acknowledged"
                    )
        finally:
            server.stopping = True
            server.up.set()
            done = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
        # Everything settles: resolve the last doubts, then verify every acknowledged write.
        async with aiohttp.ClientSession(headers=ADMIN_HEADERS, timeout=REQUEST_TIMEOUT) as s:
            for client in clients:
                if client.doubt:
                    assert await client._resolve(s), "the server does not answer"
        await verify(proc.url, db, ledger, clients, figures)
        figures.final_update_seq = await update_seq(admin, proc.url, db)
    await check_file(proc, figures, "at the end")
    figures.acked_revisions = len(ledger.acked)
    figures.acked_docs = len(ledger.last_acked)
    figures.in_doubt_writes = ledger.in_doubt_writes
    figures.seconds = time.monotonic() - started
    return figures


async def _race(waiting: Any, tasks: list[asyncio.Task[None]]) -> None:
    """Await ``waiting``, but fail at once if a load client fails first."""
    waiter = asyncio.ensure_future(waiting)
    await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED, timeout=120)
    for task in tasks:
        if task.done():
            waiter.cancel()
            task.result()  # raises the client's failure
            raise AssertionError(f"{task.get_name()} stopped early")
    if not waiter.done():
        waiter.cancel()
        raise AssertionError("no progress in 120 s")


async def verify(
    url: str, db: str, ledger: Ledger, clients: list[LoadClient], figures: Figures
) -> None:
    """Every acknowledged (id, rev) is readable with its body; winners are what clients hold."""
    limit = asyncio.Semaphore(16)
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(
        headers=ADMIN_HEADERS, timeout=REQUEST_TIMEOUT, connector=connector
    ) as session:

        async def one(doc_id: str, rev: str, n: int) -> None:
            async with limit, session.get(f"{url}/{db}/{doc_id}", params={"rev": rev}) as resp:
                if resp.status != 200:
                    figures.lost.append(f"{doc_id} {rev}: {resp.status} {await resp.text()}")
                    return
                body = await resp.json()
            if body.get("_rev") != rev or body.get("n") != n:
                figures.lost.append(f"{doc_id} {rev}: got {body.get('_rev')} n={body.get('n')}")

        await asyncio.gather(*(one(d, r, n) for (d, r), n in ledger.acked.items()))
        ids = sorted(ledger.last_acked)
        winners: dict[str, str] = {}
        for start in range(0, len(ids), 1000):
            async with session.post(
                f"{url}/{db}/_all_docs", json={"keys": ids[start : start + 1000]}
            ) as resp:
                assert resp.status == 200, await resp.text()
                for row in (await resp.json())["rows"]:
                    if "value" in row:
                        winners[row["key"]] = row["value"]["rev"]
    believed = {doc_id: rev for c in clients for doc_id, rev in c.known.items()}
    for doc_id, last in ledger.last_acked.items():
        winner = winners.get(doc_id)
        if winner is None or rev_gen(winner) < rev_gen(last):
            figures.wrong_winner.append(f"{doc_id}: acknowledged {last}, winner {winner}")
        elif believed.get(doc_id) != winner:
            figures.wrong_winner.append(f"{doc_id}: client holds {believed.get(doc_id)}, {winner}")


# --- PouchDB resuming from its checkpoint after a kill -------------------------------------


class NodeSteps:
    """A stepwise interop script (see tests/interop/lib.js): read steps, send go-aheads."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr: Path) -> None:
        self.proc = proc
        self.stderr = stderr

    @classmethod
    async def start(cls, script: str, *args: str, stderr: Path) -> NodeSteps:
        node = shutil.which("node")
        assert node is not None, "node is not on PATH"
        with stderr.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                node,
                str(INTEROP_DIR / script),
                *args,
                cwd=INTEROP_DIR,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                limit=64 * 1024 * 1024,  # the last line lists every local document id
            )
        return cls(proc, stderr)

    async def read(self, step: str, timeout: float = 120) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {step!r} step in {timeout} s:\n{self.tail()}") from None
        if not line:
            await self.proc.wait()
            raise AssertionError(f"node exited {self.proc.returncode}:\n{self.tail()}")
        data: dict[str, Any] = json.loads(line)
        assert data.get("step") == step, data
        return data

    async def send(self, command: dict[str, Any] | None = None) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command or {}).encode() + b"\n")
        await self.proc.stdin.drain()

    async def finish(self, timeout: float = 30) -> None:
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        assert code == 0, f"node exited {code}:\n{self.tail()}"

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def tail(self) -> str:
        return self.stderr.read_text(errors="replace")[-4000:] if self.stderr.exists() else ""


async def pouchdb_resumes_after_kill(
    proc: SyncdProcess, db: str, figures: Figures, *, new_docs: int = 25
) -> dict[str, Any]:
    """PouchDB pulls ``db``; syncd gets new docs and is killed; the next pull reads only those.

    Uses ``tests/interop/checkpoints.js``: it first pushes two small sets from a memory
    PouchDB (checkpointed on syncd too), then pulls everything into a fresh memory PouchDB,
    waits, and pulls again. Between the pulls the new documents are written and syncd is
    SIGKILLed and restarted: the second pull must start from the checkpoint both sides kept.
    """
    first = [{"_id": f"pouch-a{i}", "from": "pouchdb", "i": i} for i in range(5)]
    second = [{"_id": f"pouch-b{i}", "from": "pouchdb", "i": i} for i in range(3)]
    params = json.dumps({"first": first, "second": second})
    script = await NodeSteps.start(
        "checkpoints.js", proc.node_url, db, params, stderr=proc.log.with_suffix(".node.log")
    )
    try:
        push1 = (await script.read("push1"))["replication"]
        assert (push1["docs_read"], push1["docs_written"]) == (5, 5), push1
        await script.send()
        push2 = (await script.read("push2"))["replication"]
        assert (push2["docs_read"], push2["docs_written"]) == (3, 3), push2
        await script.send()
        pull1 = (await script.read("pull1"))["replication"]
        async with aiohttp.ClientSession(
            headers=ADMIN_HEADERS,
            timeout=REQUEST_TIMEOUT,
            connector=aiohttp.TCPConnector(force_close=True),
        ) as s:
            info = await get_json(s, f"{proc.url}/{db}")
            assert pull1["ok"] and pull1["docs_read"] == info["doc_count"], (pull1, info)
            docs = [{"_id": f"after-kill-{i:03d}", "n": i} for i in range(new_docs)]
            async with s.post(f"{proc.url}/{db}/_bulk_docs", json={"docs": docs}) as resp:
                assert resp.status == 201, await resp.text()
                assert all(r.get("ok") for r in await resp.json())
            before = await update_seq(s, proc.url, db)
            proc.kill()
            figures.kills += 1
            checking = asyncio.create_task(check_file(proc, figures, "after the pouchdb kill"))
            figures.restart_seconds.append(await proc.astart())
            await checking
            after = await update_seq(s, proc.url, db)
            if after < before:
                figures.seq_regressions.append(f"pouchdb kill: {before} -> {after}")
        await script.send()
        done = await script.read("pull2")
        await script.finish()
    finally:
        await script.close()
    pull2 = done["replication"]
    result = {
        "pull1_docs_read": pull1["docs_read"],
        "pull2_docs_read": pull2["docs_read"],
        "pull2_docs_written": pull2["docs_written"],
        "pull2_last_seq": pull2["last_seq"],
        "update_seq": after,
        "local_docs": len(done["ids"]),
    }
    figures.pouchdb = result
    return result


def ensure_node_modules() -> None:
    """``npm ci`` in tests/interop when its node_modules is missing (stress/crash.py)."""
    if (INTEROP_DIR / "node_modules" / "pouchdb").is_dir():
        return
    npm = shutil.which("npm")
    assert npm is not None, "npm is not on PATH"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=INTEROP_DIR, check=True)


@contextlib.contextmanager
def running(proc: SyncdProcess) -> Any:
    """Start ``proc`` (blocking) and stop it on the way out."""
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


# --- Prometheus text format ------------------------------------------------------------------

Sample = tuple[str, tuple[tuple[str, str], ...]]  # metric name, sorted labels


def parse_metrics(text: str) -> dict[Sample, float]:
    """Prometheus text format 0.0.4 -> {(name, labels): value}; rejects malformed lines."""
    samples: dict[Sample, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            assert not line or line.startswith(("# HELP ", "# TYPE ")), line
            continue
        head, _, value = line.rpartition(" ")
        name, brace, rest = head.partition("{")
        labels: list[tuple[str, str]] = []
        if brace:
            assert rest.endswith("}"), line
            for part in _split_labels(rest[:-1]):
                key, eq, raw = part.partition("=")
                assert eq and raw.startswith('"') and raw.endswith('"'), line
                labels.append((key, raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")))
        key_ = (name, tuple(sorted(labels)))
        assert key_ not in samples, f"duplicate sample: {line}"
        samples[key_] = float(value)
    return samples


def _split_labels(inner: str) -> list[str]:
    parts, current, quoted, escaped = [], "", False, False
    for char in inner:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append(current)
            current = ""
            continue
        current += char
    if current:
        parts.append(current)
    return parts


def metric(samples: dict[Sample, float], name: str, **labels: str) -> float:
    """One sample's value (0 when absent: counters and gauges not yet touched)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
