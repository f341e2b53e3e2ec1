"""Write benchmark: single-document PUTs from 50 clients and _bulk_docs of 100 from 4 clients.

    .venv/bin/python bench/writes.py [--puts N] [--bulk-docs N] [--rounds R] [--py-spy DIR]
                                     [--variant switch=0.001] [--only syncd]

Starts syncd (this checkout, default settings: WAL, synchronous=FULL) and PouchDB Server 4.2
(leveldb on disk), each on a free 127.0.0.1 port with a fresh temp dir, and drives each with
aiohttp clients (keep-alive) from this process:

* ``PUT /{db}/{id}`` of new ~1 KB pack documents from 50 concurrent clients (default 10,000
  documents, at most ``--max-seconds`` per phase): docs/s and p50/p99 latency per request;
* ``POST /{db}/_bulk_docs`` of 100 new documents from 4 concurrent clients (default 20,000
  documents): docs/s and p50/p99 latency per request;

and, in the same run, plain SQLite (Python's sqlite3, WAL, synchronous=FULL) inserting the
rows syncd keeps for the same documents (docs, revs and the counters in syncd's own tables),
100 documents per transaction. Prints the figures, the targets (single PUTs >= 5x PouchDB
Server with p99 < 50 ms; bulk >= 0.5x plain SQLite) and whether each is met, and the machine.
A benchmark, not a test: it fails only when something breaks (a refused write, a server that
does not start). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson
from common import (
    HOST,
    BenchError,
    Profiles,
    Server,
    ThreadTimes,
    add_server_options,
    chosen_servers,
    client_session,
    informative,
    mean_size,
    own_cpu,
    pack_docs,
    percentile,
    plain_rows,
    plain_sqlite_insert,
    pouchdb_server,
    print_ending,
    print_rounds,
    print_table,
    print_targets,
    require_py_spy,
    run_main,
    running,
    server_cpu,
    thread_times,
    verdict,
)

PUT_TARGET = 5.0  # single PUTs: x PouchDB Server
P99_TARGET_MS = 50.0
BULK_TARGET = 0.5  # bulk: x plain SQLite
REQUEST_TIMEOUT = 60
SERVERS = ("syncd", "pouchdb-server", "plain")

T = TypeVar("T")


@dataclass
class Phase:
    """One measured phase against one server."""

    docs: int
    seconds: float
    latencies: list[float]  # seconds, one per request
    server_cpu: float
    client_cpu: float
    threads: ThreadTimes

    @property
    def rate(self) -> float:
        return self.docs / self.seconds

    def ms(self, p: float) -> float:
        return percentile(self.latencies, p) * 1000

    def per_doc(self) -> str:
        """Where the server's CPU went, and how often its threads switched, per document."""
        t, n = self.threads, self.docs
        return (
            f"server main thread {t.main_cpu / n * 1e6:.0f} us + other threads "
            f"{t.other_cpu / n * 1e6:.0f} us per doc; voluntary switches per doc: main "
            f"{t.main_switches / n:.1f}, other threads {t.other_switches / n:.1f}"
        )


def _pid(server: Server) -> int:
    assert server.proc is not None
    return server.proc.pid


async def _session(server: Server, clients: int) -> aiohttp.ClientSession:
    return client_session(server, clients, REQUEST_TIMEOUT)


async def _create_db(server: Server, db: str) -> None:
    async with await _session(server, 1) as session, session.put(f"/{db}") as resp:
        if resp.status not in (201, 202):
            raise BenchError(f"{server.name}: PUT /{db}: {resp.status} {await resp.text()}")
        await resp.read()


async def _phase(
    server: Server,
    items: Sequence[T],
    send: Callable[[aiohttp.ClientSession, T], Awaitable[None]],
    clients: int,
    max_seconds: float,
    docs_per_item: int = 1,
) -> Phase:
    """Each of ``clients`` sends the next item until all are sent or time is up; one latency
    per item, from before ``send`` to its end."""
    latencies: list[float] = []
    next_index = 0
    deadline = time.perf_counter() + max_seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal next_index
        while next_index < len(items) and time.perf_counter() < deadline:
            item = items[next_index]
            next_index += 1
            t0 = time.perf_counter()
            await send(session, item)
            latencies.append(time.perf_counter() - t0)

    async with await _session(server, clients) as session:
        cpu0, own0, t0 = server_cpu(server), own_cpu(), time.perf_counter()
        threads0 = thread_times(_pid(server))
        await asyncio.gather(*(client(session) for _ in range(clients)))
        seconds = time.perf_counter() - t0
        return Phase(
            len(latencies) * docs_per_item,
            seconds,
            latencies,
            server_cpu(server) - cpu0,
            own_cpu() - own0,
            thread_times(_pid(server)) - threads0,
        )


async def _puts(
    server: Server, db: str, bodies: list[tuple[str, bytes]], clients: int, max_seconds: float
) -> Phase:
    """Each of ``clients`` PUTs the next document until all are written or time is up."""

    async def put(session: aiohttp.ClientSession, item: tuple[str, bytes]) -> None:
        doc_id, body = item
        async with session.put(f"/{db}/{doc_id}", data=body) as resp:
            answer = await resp.read()
            if resp.status not in (201, 202):
                raise BenchError(f"{server.name}: PUT {doc_id}: {resp.status} {answer[:300]!r}")

    return await _phase(server, bodies, put, clients, max_seconds)


async def _bulk(
    server: Server, db: str, batches: list[bytes], per_batch: int, clients: int, max_seconds: float
) -> Phase:
    """Each of ``clients`` posts the next batch of ``_bulk_docs`` until all are written."""

    async def post(session: aiohttp.ClientSession, body: bytes) -> None:
        async with session.post(f"/{db}/_bulk_docs", data=body) as resp:
            answer = await resp.read()
            if resp.status != 201:
                raise BenchError(f"{server.name}: _bulk_docs: {resp.status} {answer[:300]!r}")
        results = orjson.loads(answer)
        if len(results) != per_batch or not all(r.get("ok") for r in results):
            bad = next((r for r in results if not r.get("ok")), results[:1])
            raise BenchError(f"{server.name}: _bulk_docs refused a document: {bad}")

    return await _phase(server, batches, post, clients, max_seconds, docs_per_item=per_batch)


async def _count(server: Server, db: str) -> int:
    async with await _session(server, 1) as session, session.get(f"/{db}") as resp:
        return int(orjson.loads(await resp.read())["doc_count"])


def measure(
    server: Server,
    round_no: int,
    put_docs: list[dict[str, Any]],
    bulk_docs: list[dict[str, Any]],
    args: argparse.Namespace,
    profiles: Profiles,
    label: str,
) -> dict[str, Phase]:
    """Warm up, then the PUT phase and the bulk phase, each into a new database."""
    # PUT /{db}/{id} with the body's own fields (the id is in the URL)
    bodies = [
        (d["_id"], orjson.dumps({k: v for k, v in d.items() if k != "_id"})) for d in put_docs
    ]
    per = args.bulk_size
    batches = [
        orjson.dumps({"docs": bulk_docs[i : i + per]}) for i in range(0, len(bulk_docs), per)
    ]
    warm = [(f"warm-{round_no}-{i}", body) for i, (_, body) in enumerate(bodies[:500])]

    async def go() -> dict[str, Phase]:
        out: dict[str, Phase] = {}
        put_db, bulk_db, warm_db = f"puts-{round_no}", f"bulk-{round_no}", f"warm-{round_no}"
        for db in (put_db, bulk_db, warm_db):
            await _create_db(server, db)
        await _puts(server, warm_db, warm, args.clients, 60)  # connections, caches, JIT
        with profiles.record(server, f"{label}-puts-{round_no}"):
            out["puts"] = await _puts(server, put_db, bodies, args.clients, args.max_seconds)
        with profiles.record(server, f"{label}-bulk-{round_no}"):
            out["bulk"] = await _bulk(
                server, bulk_db, batches, per, args.bulk_clients, args.max_seconds
            )
        for db, phase in ((put_db, out["puts"]), (bulk_db, out["bulk"])):
            stored = await _count(server, db)
            if stored != phase.docs:
                raise BenchError(f"{server.name}: {db} holds {stored} docs, not {phase.docs}")
        return out

    return asyncio.run(go())


def _line(name: str, phase: Phase) -> str:
    return (
        f"  {name}: {phase.docs:,} docs in {phase.seconds:.2f} s = {phase.rate:,.0f} docs/s, "
        f"p50 {phase.ms(50):.1f} ms, p99 {phase.ms(99):.1f} ms; CPU per doc: server "
        f"{phase.server_cpu / phase.docs * 1e6:.0f} us, client "
        f"{phase.client_cpu / phase.docs * 1e6:.0f} us\n         {phase.per_doc()}"
    )


def _median_phase(phases: list[Phase]) -> Phase:
    """The round with the median rate (its own latencies)."""
    ordered = sorted(phases, key=lambda p: p.rate)
    return ordered[(len(ordered) - 1) // 2]


def _rates(rounds: list[dict[str, Phase]]) -> list[str]:
    """PUT/bulk docs/s of each round."""
    return [f"{o['puts'].rate:,.0f}/{o['bulk'].rate:,.0f}" for o in rounds]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--puts", type=int, default=10_000, help="documents PUT one by one")
    parser.add_argument("--clients", type=int, default=50, help="concurrent PUT clients")
    parser.add_argument("--bulk-docs", type=int, default=20_000, help="documents via _bulk_docs")
    parser.add_argument("--bulk-size", type=int, default=100, help="documents per _bulk_docs")
    parser.add_argument("--bulk-clients", type=int, default=4, help="concurrent bulk clients")
    parser.add_argument("--max-seconds", type=float, default=120, help="time limit per phase")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (median reported)")
    parser.add_argument("--seed", type=int, default=1)
    add_server_options(
        parser,
        SERVERS,
        "also measure syncd run another way, alternating with the default in the same run: "
        "switch=0.001 (sys.setswitchinterval at start), root=DIR (another checkout), "
        "env=NAME=VALUE, label=TEXT; comma-separated, repeatable",
    )
    args = parser.parse_args(argv)
    if args.bulk_docs % args.bulk_size:
        parser.error("--bulk-docs must be a multiple of --bulk-size")
    require_py_spy(args.py_spy)
    wanted, variants = chosen_servers(args, SERVERS)

    docs = pack_docs(args.puts + args.bulk_docs + 500, args.seed)
    put_docs, bulk_docs = docs[: args.puts], docs[args.puts : args.puts + args.bulk_docs]
    profiles = Profiles(args.py_spy)
    results: dict[str, list[dict[str, Phase]]] = {v.label: [] for v in variants}
    pouch: list[dict[str, Phase]] = []
    plain: list[float] = []
    rows = plain_rows(bulk_docs) if "plain" in wanted else []
    with tempfile.TemporaryDirectory(prefix="syncd-bench-writes-") as tmp:
        for r in range(1, args.rounds + 1):
            # every round: each syncd variant, PouchDB Server, plain SQLite, one after another,
            # so that a change in the machine's load hits all of them
            for variant in variants:
                workdir = Path(tmp) / f"{variant.label}-{r}".replace("/", "_")
                workdir.mkdir()
                print(f"{variant.label}: round {r} ...", flush=True)
                with running(variant.server(workdir)) as server:
                    out = measure(server, r, put_docs, bulk_docs, args, profiles, variant.label)
                results[variant.label].append(out)
                print(_line("PUT  ", out["puts"]) + "\n" + _line("bulk ", out["bulk"]))
            if "pouchdb-server" in wanted:
                workdir = Path(tmp) / f"pouchdb-server-{r}"
                workdir.mkdir()
                print(f"pouchdb-server: round {r} ...", flush=True)
                with running(pouchdb_server(workdir)) as server:
                    out = measure(server, r, put_docs, bulk_docs, args, profiles, "pouchdb")
                pouch.append(out)
                print(_line("PUT  ", out["puts"]) + "\n" + _line("bulk ", out["bulk"]))
            if "plain" in wanted:
                plain.append(plain_sqlite_insert(Path(tmp) / f"plain-{r}.sqlite3", rows))
                print(f"plain SQLite: {plain[-1]:,.0f} docs/s", flush=True)

    print()
    print(
        f"Writes of ~1 KB pack documents (mean {mean_size(docs):.0f} B) over HTTP to {HOST}, "
        f"{args.rounds} round(s), median round shown"
    )
    print(
        f"  PUT: {args.puts:,} new docs, {args.clients} keep-alive clients;  "
        f"bulk: {args.bulk_docs:,} new docs as _bulk_docs of {args.bulk_size}, "
        f"{args.bulk_clients} clients"
    )
    print()
    table: list[list[str]] = []
    pouch_put = _median_phase([o["puts"] for o in pouch]) if pouch else None
    pouch_bulk = _median_phase([o["bulk"] for o in pouch]) if pouch else None
    plain_rate = statistics.median(plain) if plain else None
    for label, runs in results.items():
        for kind in ("puts", "bulk"):
            ph = _median_phase([o[kind] for o in runs])
            table.append(
                [
                    f"{label} {'PUT' if kind == 'puts' else '_bulk_docs'}",
                    f"{ph.rate:,.0f}",
                    f"{ph.ms(50):.1f}",
                    f"{ph.ms(99):.1f}",
                    f"{ph.server_cpu / ph.docs * 1e6:.0f}",
                    f"{ph.client_cpu / ph.docs * 1e6:.0f}",
                ]
            )
    for name, ph in (
        ("PouchDB Server 4.2 PUT", pouch_put),
        ("PouchDB Server 4.2 _bulk_docs", pouch_bulk),
    ):
        if ph is not None:
            table.append(
                [
                    name,
                    f"{ph.rate:,.0f}",
                    f"{ph.ms(50):.1f}",
                    f"{ph.ms(99):.1f}",
                    f"{ph.server_cpu / ph.docs * 1e6:.0f}",
                    f"{ph.client_cpu / ph.docs * 1e6:.0f}",
                ]
            )
    if plain_rate is not None:
        table.append(["plain SQLite, 100 docs/tx", f"{plain_rate:,.0f}", "", "", "", ""])
    print_table(["", "docs/s", "p50 ms", "p99 ms", "server CPU us/doc", "client CPU us/doc"], table)
    print()
    targets: list[list[str]] = []
    for label, runs in results.items():
        put = _median_phase([o["puts"] for o in runs])
        bulk = _median_phase([o["bulk"] for o in runs])
        if pouch_put is not None:
            ratio = put.rate / pouch_put.rate
            targets.append(
                [
                    f"{label} PUT / PouchDB Server PUT",
                    f"{ratio:.2f}x",
                    f">= {PUT_TARGET:.0f}x",
                    verdict(ratio >= PUT_TARGET),
                ]
            )
        targets.append(
            [
                f"{label} PUT p99",
                f"{put.ms(99):.1f} ms",
                f"< {P99_TARGET_MS:.0f} ms",
                verdict(put.ms(99) < P99_TARGET_MS),
            ]
        )
        if plain_rate is not None:
            ratio = bulk.rate / plain_rate
            targets.append(
                [
                    f"{label} _bulk_docs / plain SQLite",
                    f"{ratio:.2f}x",
                    f">= {BULK_TARGET}x",
                    verdict(ratio >= BULK_TARGET),
                ]
            )
        if pouch_bulk is not None:
            targets.append(
                informative(f"{label} _bulk_docs / PouchDB Server", bulk.rate / pouch_bulk.rate)
            )
    print_targets(targets)
    per_round = [(label, "PUT/bulk docs/s", _rates(runs)) for label, runs in results.items()]
    if pouch:
        per_round.append(("PouchDB Server", "PUT/bulk docs/s", _rates(pouch)))
    if plain:
        per_round.append(("plain SQLite", "docs/s", [f"{p:,.0f}" for p in plain]))
    print_rounds(args.rounds, per_round)
    print_ending(profiles, variants[1:])
    return 0


if __name__ == "__main__":
    run_main(main, "bench/writes.py")
