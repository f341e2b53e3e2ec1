"""Changes-feed benchmark: a normal ``_changes`` of 20,000 documents, timed end to end.

    .venv/bin/python bench/changes.py [--docs N] [--reps R] [--py-spy DIR]
                                      [--variant switch=0.001] [--only syncd]

Starts syncd (this checkout, default settings) and PouchDB Server 4.2 (leveldb on disk), each
on a free 127.0.0.1 port with a fresh temp dir, loads 20,000 ~1 KB pack documents into one
database with ``_bulk_docs`` of 100 (untimed), then reads ``GET /{db}/_changes`` (feed=normal,
since=0) R times (default 7) with one aiohttp client, timing each from sending the request to
having read the whole body; then the same with ``include_docs=true``. Every answer is checked
(20,000 results, last_seq). Reports the best and the median changes/s, syncd's ratio to
PouchDB Server and the target (100,000+ changes/s), syncd's CPU time per change, and, as a
floor, plain SQLite reading the same rows from syncd's file (Python's sqlite3, the
changes index in seq order, the revision body joined for include_docs) and encoding them with
orjson. A benchmark, not a test. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from common import (
    BenchError,
    Profiles,
    Server,
    Variant,
    add_server_options,
    chosen_servers,
    client_session,
    informative,
    pack_docs,
    pouchdb_server,
    print_ending,
    print_table,
    print_targets,
    require_py_spy,
    run_main,
    running,
    server_cpu,
    verdict,
)

TARGET = 100_000  # changes/s, syncd, normal feed
BATCH = 100
REQUEST_TIMEOUT = 300
SERVERS = ("syncd", "pouchdb-server", "plain")


@dataclass
class Reads:
    seconds: list[float]
    bytes: int
    server_cpu: float  # over all reps

    def rates(self, n: int) -> list[float]:
        return [n / s for s in self.seconds]

    def best(self, n: int) -> float:
        return max(self.rates(n))

    def median(self, n: int) -> float:
        return statistics.median(self.rates(n))


async def _load(server: Server, db: str, docs: list[dict[str, object]]) -> float:
    """``_bulk_docs`` of 100 from 4 clients; seconds (informative)."""
    batches = [orjson.dumps({"docs": docs[i : i + BATCH]}) for i in range(0, len(docs), BATCH)]
    async with client_session(server, 4, REQUEST_TIMEOUT) as session:
        async with session.put(f"/{db}") as resp:
            if resp.status not in (201, 202):
                raise BenchError(f"{server.name}: PUT /{db}: {resp.status}")
        queue = list(reversed(batches))

        async def client() -> None:
            while queue:
                body = queue.pop()
                async with session.post(f"/{db}/_bulk_docs", data=body) as resp:
                    answer = await resp.read()
                    if resp.status != 201 or not all(r.get("ok") for r in orjson.loads(answer)):
                        raise BenchError(f"{server.name}: _bulk_docs: {answer[:300]!r}")

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(4)))
        return time.perf_counter() - t0


async def _reads(server: Server, db: str, n: int, reps: int, include_docs: bool) -> Reads:
    query = "?include_docs=true" if include_docs else ""
    seconds: list[float] = []
    size = 0
    async with client_session(server, 1, REQUEST_TIMEOUT) as session:
        async with session.get(f"/{db}/_changes?limit=1") as resp:  # connection, warm caches
            await resp.read()
        cpu0 = server_cpu(server)
        for _ in range(reps):
            t0 = time.perf_counter()
            async with session.get(f"/{db}/_changes{query}") as resp:
                raw = await resp.read()
                elapsed = time.perf_counter() - t0
            if resp.status != 200:
                raise BenchError(f"{server.name}: _changes: {resp.status} {raw[:300]!r}")
            body = orjson.loads(raw)
            results = body["results"]
            if len(results) != n or len({r["id"] for r in results}) != n:
                raise BenchError(f"{server.name}: _changes gave {len(results)} rows, not {n}")
            if include_docs and not all(r["doc"]["type"] == "pack" for r in results):
                raise BenchError(f"{server.name}: include_docs rows without their doc")
            seconds.append(elapsed)
            size = len(raw)
        return Reads(seconds, size, server_cpu(server) - cpu0)


def _plain(path: Path, n: int, reps: int, include_docs: bool) -> list[float]:
    """Read the same rows from syncd's file with sqlite3 and encode them: seconds per rep."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db_id = conn.execute("SELECT id FROM dbs WHERE name = 'changes'").fetchone()[0]
        if include_docs:
            sql = (
                "SELECT d.seq, d.doc_id, d.rev, d.deleted, r.body FROM docs d LEFT JOIN revs r "
                "ON r.db_id = d.db_id AND r.doc_id = d.doc_id AND r.rev = d.rev "
                "WHERE d.db_id = ? AND d.seq > 0 ORDER BY d.seq"
            )
        else:
            sql = (
                "SELECT d.seq, d.doc_id, d.rev, d.deleted, NULL FROM docs d "
                "WHERE d.db_id = ? AND d.seq > 0 ORDER BY d.seq"
            )
        out = []
        for _ in range(reps):
            t0 = time.perf_counter()
            rows = []
            for seq, doc_id, rev, _deleted, body in conn.execute(sql, (db_id,)):
                row: dict[str, object] = {"seq": seq, "id": doc_id, "changes": [{"rev": rev}]}
                if include_docs:
                    row["doc"] = {"_id": doc_id, "_rev": rev, **orjson.loads(body)}
                rows.append(row)
            data = orjson.dumps({"results": rows, "last_seq": rows[-1]["seq"], "pending": 0})
            out.append(time.perf_counter() - t0)
            if len(rows) != n or not data:
                raise BenchError(f"plain SQLite read {len(rows)} rows, not {n}")
        return out
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=7, help="reads of each feed per server")
    parser.add_argument("--seed", type=int, default=2)
    add_server_options(parser, SERVERS)
    args = parser.parse_args(argv)
    require_py_spy(args.py_spy)
    wanted, variants = chosen_servers(args, SERVERS, syncd_for=("syncd", "plain"))
    docs = pack_docs(args.docs, args.seed)
    n = len(docs)
    profiles = Profiles(args.py_spy)
    results: dict[str, dict[bool, Reads]] = {}
    plain: dict[bool, list[float]] = {}
    load_seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-changes-") as tmp:
        targets: list[tuple[str, Variant | None]] = [(v.label, v) for v in variants]
        if "pouchdb-server" in wanted:
            targets.append(("PouchDB Server 4.2", None))
        for label, variant in targets:
            workdir = Path(tmp) / label.replace("/", "_").replace(" ", "_")
            workdir.mkdir()
            server = variant.server(workdir) if variant else pouchdb_server(workdir)
            print(f"{label}: loading {n:,} docs ...", flush=True)
            with running(server):
                load_seconds[label] = asyncio.run(_load(server, "changes", docs))
                results[label] = {}
                for include_docs in (False, True):
                    tag = "include_docs" if include_docs else "normal"
                    with profiles.record(server, f"{label}-{tag}"):
                        reads = asyncio.run(_reads(server, "changes", n, args.reps, include_docs))
                    results[label][include_docs] = reads
                    print(
                        f"  {tag}: best {reads.best(n):,.0f}, median {reads.median(n):,.0f} "
                        f"changes/s ({reads.bytes / 1e6:.1f} MB), server CPU "
                        f"{reads.server_cpu / (n * args.reps) * 1e6:.1f} us/change",
                        flush=True,
                    )
            if variant is variants[0] and "plain" in wanted:
                path = workdir / "data" / "syncd.sqlite3"
                plain = {inc: _plain(path, n, args.reps, inc) for inc in (False, True)}

    print()
    print(
        f"GET /{{db}}/_changes (feed=normal, since=0) of {n:,} ~1 KB pack docs, one client, "
        f"{args.reps} reads each, timed request to last byte"
    )
    print()
    rows = []
    for label, by_mode in results.items():
        for include_docs, reads in by_mode.items():
            rows.append(
                [
                    f"{label}{' include_docs' if include_docs else ''}",
                    f"{reads.best(n):,.0f}",
                    f"{reads.median(n):,.0f}",
                    f"{min(reads.seconds) * 1000:.0f}",
                    f"{reads.bytes / 1e6:.1f}",
                    f"{reads.server_cpu / (n * args.reps) * 1e6:.1f}",
                ]
            )
    for include_docs, secs in plain.items():
        rates = [n / s for s in secs]
        rows.append(
            [
                f"plain SQLite + orjson{' include_docs' if include_docs else ''}",
                f"{max(rates):,.0f}",
                f"{statistics.median(rates):,.0f}",
                f"{min(secs) * 1000:.0f}",
                "",
                "",
            ]
        )
    print_table(
        ["", "best changes/s", "median changes/s", "best ms", "MB", "server CPU us/change"],
        rows,
        first=36,
    )
    print()
    checks = []
    pouch = results.get("PouchDB Server 4.2")
    for label, by_mode in results.items():
        if label.startswith("PouchDB"):
            continue
        normal = by_mode[False].median(n)
        checks.append(
            [
                f"{label} normal (median)",
                f"{normal:,.0f}/s",
                f">= {TARGET:,}/s",
                verdict(normal >= TARGET),
            ]
        )
        if pouch is not None:
            for include_docs in (False, True):
                ratio = by_mode[include_docs].median(n) / pouch[include_docs].median(n)
                name = "include_docs" if include_docs else "normal"
                checks.append(informative(f"{label} {name} / PouchDB Server", ratio))
    print_targets(checks, first=36)
    if load_seconds:
        print()
        print(
            "  loading (untimed for the targets): "
            + ", ".join(f"{k} {n / v:,.0f} docs/s" for k, v in load_seconds.items())
        )
    print_ending(profiles)
    return 0


if __name__ == "__main__":
    run_main(main, "bench/changes.py")
