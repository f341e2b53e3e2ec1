"""Listener load benchmark: 1,000 longpoll feeds on 100 databases while 200 writes/s go in.

    .venv/bin/python bench/load.py [--dbs 100] [--listeners-per-db 10] [--rate 200]
                                   [--seconds 25] [--py-spy DIR] [--variant switch=0.001]
                                   [--only syncd]

Starts syncd (this checkout, default settings) and PouchDB Server 4.2 (leveldb on disk), one
after the other, each on a free 127.0.0.1 port with a fresh temp dir, creates 100 databases
as admin, and opens 10 longpoll listeners on each (1,000 in all, each on its own keep-alive
connection, all in one Node process: bench/listeners.js) that re-poll with ``since=<last_seq>`` after every answer, as PouchDB's live sync
does (``feed=longpoll&style=all_docs&heartbeat=10000&limit=100``). Once they all wait, one
writer PUTs new ~1 KB pack documents at 200 writes/s (open loop, round-robin over the
databases, at most 200 in flight) for 25 s, then the listeners get up to 15 s to catch up.

Measured: writes acknowledged per second; deliveries (every write must reach every listener
of its database); write-ack -> listener-wake latency (the time the listener's answer holding
the change was read, minus the time the writer's PUT answer was read; both CLOCK_MONOTONIC);
the server's resident memory (VmRSS from /proc/PID/status, summed over its process session)
before the listeners, with them waiting, and at peak under load; server CPU. Targets: every
write delivered to every listener, wake p99 < 50 ms, RSS < 150 MB. A benchmark, not a test.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from common import (
    BENCH,
    BenchError,
    Profiles,
    Server,
    ThreadTimes,
    add_server_options,
    chosen_servers,
    client_session,
    informative,
    own_cpu,
    pack_docs,
    percentile,
    pouchdb_server,
    print_ending,
    print_rounds,
    print_table,
    print_targets,
    raise_nofile,
    require_py_spy,
    run_main,
    running,
    server_cpu,
    server_rss,
    thread_times,
    verdict,
)

WAKE_P99_TARGET_MS = 50.0
RSS_TARGET_MB = 150.0
MB = 1024 * 1024
SETTLE_TIMEOUT = 60  # every listener has sent its first poll and waits
DRAIN_SECONDS = 15  # after the last write: listeners catching up
SERVERS = ("syncd", "pouchdb-server")


@dataclass
class Result:
    writes_acked: int
    writes_failed: int
    write_seconds: float
    expected: int  # deliveries: sum over listeners of the writes to their db
    delivered: int
    latencies: list[float]  # seconds, may be < 0 (the wake came before the ack)
    from_sent: list[float]  # seconds from sending the PUT to the wake
    rss_idle: int
    rss_listening: int
    rss_peak: int
    rss_end: int
    server_cpu: float
    client_cpu: float
    threads: ThreadTimes
    polls: int
    errors: int
    write_latencies: list[float]
    behind_schedule: float  # seconds the writer fell behind its schedule at the end

    @property
    def rate(self) -> float:
        return self.writes_acked / self.write_seconds

    def ms(self, p: float) -> float:
        return max(percentile(self.latencies, p), 0.0) * 1000


async def _create_dbs(server: Server, names: list[str]) -> None:
    async with client_session(server, 8, 60) as session:
        for name in names:
            async with session.put(f"/{name}") as resp:
                if resp.status not in (201, 202):
                    raise BenchError(f"{server.name}: PUT /{name}: {resp.status}")
                await resp.read()


async def _parked(server: Server, count: int) -> None:
    """syncd: wait until /metrics shows ``count`` feeds waiting (PouchDB Server: 2 s)."""
    if server.name != "syncd":
        await asyncio.sleep(2.0)
        return
    deadline = time.monotonic() + SETTLE_TIMEOUT
    async with client_session(server, 1, 30) as session:
        while time.monotonic() < deadline:
            async with session.get("/metrics") as resp:
                text = (await resp.read()).decode()
            for line in text.splitlines():
                if (
                    line.startswith("syncd_changes_feeds_waiting ")
                    and float(line.split()[1]) >= count
                ):
                    return
            await asyncio.sleep(0.2)
    raise BenchError(f"syncd: fewer than {count} feeds waiting after {SETTLE_TIMEOUT} s")


async def _sample_rss(server: Server, out: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        out.append(server_rss(server))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


# --- the listeners ---------------------------------------------------------------------------
# They run in Node (bench/listeners.js): a Python client for 1,000 feeds took most of a core
# on this small machine, competing with the server it measures and queueing the writer's
# acks behind its own event loop. Node's process.hrtime and Python's time.monotonic() read
# the same clock (CLOCK_MONOTONIC), so wake times compare with ack times.

FEED_QUERY = "feed=longpoll&style=all_docs&heartbeat=10000&limit=100"
Collected = list[tuple[str, dict[str, float], int, int, float | None]]


class NodeListeners:
    """``node bench/listeners.js`` holding one longpoll listener per entry of ``dbs``."""

    def __init__(self, server: Server, dbs: list[str]) -> None:
        self.server = server
        self.dbs = dbs
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "node",
            str(BENCH / "listeners.js"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,  # the results line holds every wake time
        )
        config = {
            "url": self.server.url,
            "auth": list(self.server.auth) if self.server.auth else None,
            "dbs": self.dbs,
            "query": FEED_QUERY,
        }
        await self._send(config)
        line = await asyncio.wait_for(self._line(), SETTLE_TIMEOUT)
        if line != b"ready":
            raise BenchError(f"{self.server.name}: listeners did not all start polling")

    async def finish(
        self, wanted: dict[str, list[str]], drain_end: float
    ) -> tuple[Collected, float]:
        """Tell them what to wait for and until when; their wake times and CPU seconds."""
        await self._send({"wanted": wanted, "drain_end": drain_end})
        line = await asyncio.wait_for(self._line(), DRAIN_SECONDS + 60)
        out = orjson.loads(line)
        collected: Collected = [(d, s, p, e, f) for d, s, p, e, f in out["listeners"]]
        return collected, float(out["cpu_seconds"])

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def _send(self, obj: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(obj) + b"\n")
        await self.proc.stdin.drain()

    async def _line(self) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise BenchError(f"{self.server.name}: the listeners' node process ended")
        return line.strip()


async def _run(server: Server, args: argparse.Namespace, profiles: Profiles, label: str) -> Result:
    dbs = [f"user-{n:04d}" for n in range(args.dbs)]
    await _create_dbs(server, dbs)
    rss_idle = server_rss(server)
    listener_dbs = [db for db in dbs for _ in range(args.listeners_per_db)]
    docs = pack_docs(int(args.rate * args.seconds) + 1, args.seed)
    bodies = [orjson.dumps({k: v for k, v in d.items() if k != "_id"}) for d in docs]

    listeners = NodeListeners(server, listener_dbs)
    await listeners.start()
    write_session = client_session(server, args.max_in_flight, 60)
    stop_sampling = asyncio.Event()
    rss_samples: list[int] = []
    sampler: asyncio.Task[None] | None = None
    collected: Collected = []
    workers_cpu = 0.0
    try:
        await _parked(server, len(listener_dbs))
        await asyncio.sleep(1.0)
        rss_listening = server_rss(server)
        sampler = asyncio.create_task(_sample_rss(server, rss_samples, stop_sampling))

        acked: dict[str, tuple[str, float, float]] = {}  # doc id -> (db, ack time, sent time)
        write_latencies: list[float] = []
        failed = 0
        in_flight = asyncio.Semaphore(args.max_in_flight)

        async def write(i: int) -> None:
            nonlocal failed
            db = dbs[i % len(dbs)]
            doc_id = docs[i]["_id"]
            try:
                t0 = time.monotonic()
                async with write_session.put(f"/{db}/{doc_id}", data=bodies[i]) as resp:
                    await resp.read()
                    now = time.monotonic()
                    if resp.status not in (201, 202):
                        failed += 1
                        return
                acked[doc_id] = (db, now, t0)
                write_latencies.append(now - t0)
            except (TimeoutError, aiohttp.ClientError):
                failed += 1
            finally:
                in_flight.release()

        total = int(args.rate * args.seconds)
        writers: list[asyncio.Task[None]] = []
        cpu0, own0 = server_cpu(server), own_cpu()
        assert server.proc is not None
        threads0 = thread_times(server.proc.pid)
        with profiles.record(server, f"{label}-load"):
            started = time.monotonic()
            for i in range(total):
                due = started + i / args.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await in_flight.acquire()
                writers.append(asyncio.create_task(write(i)))
            behind = max(time.monotonic() - (started + (total - 1) / args.rate), 0.0)
            await asyncio.gather(*writers)
            write_seconds = time.monotonic() - started
            # catch-up: until every listener has every write of its db, or the drain time ends
            by_db: dict[str, list[str]] = {}
            for doc_id, (db, _, _) in acked.items():
                by_db.setdefault(db, []).append(doc_id)
            drain_end = time.monotonic() + DRAIN_SECONDS
            collected, workers_cpu = await listeners.finish(by_db, drain_end)
        server_cpu_used, client_cpu_used = server_cpu(server) - cpu0, own_cpu() - own0
        client_cpu_used += workers_cpu  # the listeners' whole life: an upper bound
        threads = thread_times(server.proc.pid) - threads0
        rss_end = server_rss(server)
    finally:
        stop_sampling.set()
        if sampler is not None:
            await asyncio.gather(sampler, return_exceptions=True)
        await listeners.close()
        await write_session.close()
    early_answers = [t for _, _, _, _, t in collected if t is not None and t < started]
    if early_answers:
        raise BenchError(f"{server.name}: {len(early_answers)} listeners answered before any write")
    expected = delivered = 0
    latencies: list[float] = []
    from_sent: list[float] = []
    for db, seen, _, _, _ in collected:
        wanted = by_db.get(db, [])
        expected += len(wanted)
        for doc_id in wanted:
            woke = seen.get(doc_id)
            if woke is not None:
                delivered += 1
                latencies.append(woke - acked[doc_id][1])
                from_sent.append(woke - acked[doc_id][2])
    return Result(
        writes_acked=len(acked),
        writes_failed=failed,
        write_seconds=write_seconds,
        expected=expected,
        delivered=delivered,
        latencies=latencies,
        from_sent=from_sent,
        rss_idle=rss_idle,
        rss_listening=rss_listening,
        rss_peak=max([*rss_samples, rss_end]),
        rss_end=rss_end,
        server_cpu=server_cpu_used,
        client_cpu=client_cpu_used,
        threads=threads,
        polls=sum(polls for _, _, polls, _, _ in collected),
        errors=sum(errors for _, _, _, errors, _ in collected),
        write_latencies=write_latencies,
        behind_schedule=behind,
    )


def _summary(name: str, r: Result) -> str:
    early = sum(1 for x in r.latencies if x < 0)
    t = r.threads
    requests = max(r.polls + r.writes_acked, 1)
    return (
        f"  {name}: {r.writes_acked:,} writes acked ({r.writes_failed} failed) in "
        f"{r.write_seconds:.1f} s = {r.rate:,.0f}/s (writer {r.behind_schedule:.1f} s behind "
        f"schedule at the end); delivered {r.delivered:,}/{r.expected:,}; wake p50 "
        f"{r.ms(50):.1f} ms, p99 {r.ms(99):.1f} ms, max {r.ms(100):.1f} ms ({early:,} before "
        f"the ack); PUT sent -> wake p50 {percentile(r.from_sent, 50) * 1000:.1f} ms, p99 "
        f"{percentile(r.from_sent, 99) * 1000:.1f} ms; PUT p50 "
        f"{percentile(r.write_latencies, 50) * 1000:.1f} ms, p99 "
        f"{percentile(r.write_latencies, 99) * 1000:.1f} ms; polls {r.polls:,}, errors "
        f"{r.errors}; RSS idle/listening/peak {r.rss_idle / MB:.0f}/{r.rss_listening / MB:.0f}/"
        f"{r.rss_peak / MB:.0f} MB; CPU server {r.server_cpu:.1f} s, client {r.client_cpu:.1f} s"
        f"\n    server per request ({requests:,} polls and PUTs): main thread "
        f"{t.main_cpu / requests * 1e6:.0f} us + other threads {t.other_cpu / requests * 1e6:.0f} us"
        f" CPU; voluntary switches: main {t.main_switches / requests:.1f}, other threads "
        f"{t.other_switches / requests:.1f}; involuntary (preempted) {t.involuntary / requests:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dbs", type=int, default=100)
    parser.add_argument("--listeners-per-db", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200, help="writes per second")
    parser.add_argument("--seconds", type=float, default=25, help="how long the writer writes")
    parser.add_argument("--max-in-flight", type=int, default=200, help="writes in flight at most")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds, alternating the servers (median shown)"
    )
    add_server_options(parser, SERVERS)
    args = parser.parse_args(argv)
    require_py_spy(args.py_spy)
    listeners = args.dbs * args.listeners_per_db
    nofile = raise_nofile(2 * listeners + 1024)  # this process and the servers (inherited)
    wanted, variants = chosen_servers(args, SERVERS)
    if shutil.which("node") is None:
        raise BenchError("the listeners run in Node (bench/listeners.js): install Node.js")
    profiles = Profiles(args.py_spy)
    runs: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-load-") as tmp:
        targets: list[tuple[str, Any]] = [(v.label, v) for v in variants]
        if "pouchdb-server" in wanted:
            targets.append(("PouchDB Server 4.2", None))
        for r in range(1, args.rounds + 1):
            for label, variant in targets:
                workdir = Path(tmp) / f"{label}-{r}".replace("/", "_").replace(" ", "_")
                workdir.mkdir()
                server = variant.server(workdir) if variant else pouchdb_server(workdir)
                print(
                    f"{label}: round {r}, {listeners:,} listeners, {args.rate:.0f} writes/s ...",
                    flush=True,
                )
                with running(server):
                    tag = label if args.rounds == 1 else f"{label}-{r}"
                    runs.setdefault(label, []).append(
                        asyncio.run(_run(server, args, profiles, tag))
                    )
                print(_summary(label, runs[label][-1]), flush=True)
    # the round with the median wake p99 stands for each server
    results = {
        label: sorted(rs, key=lambda x: x.ms(99))[(len(rs) - 1) // 2] for label, rs in runs.items()
    }

    print()
    print(
        f"Longpoll listeners: {args.dbs} databases x {args.listeners_per_db} listeners = "
        f"{listeners:,} feeds re-polling from last_seq; writer: {args.rate:.0f} PUTs/s of ~1 KB "
        f"pack docs for {args.seconds:.0f} s, round-robin over the databases "
        f"(RLIMIT_NOFILE {nofile}); {args.rounds} round(s), the round with the median wake p99 "
        "shown"
    )
    print()
    rows = []
    for label, r in results.items():
        rows.append(
            [
                label,
                f"{r.rate:,.0f}",
                f"{r.delivered:,}/{r.expected:,}",
                f"{r.ms(50):.1f}",
                f"{r.ms(99):.1f}",
                f"{r.rss_idle / MB:.0f}",
                f"{r.rss_listening / MB:.0f}",
                f"{r.rss_peak / MB:.0f}",
                f"{r.server_cpu / max(r.write_seconds, 1e-9):.2f}",
            ]
        )
    print_table(
        [
            "",
            "writes/s",
            "delivered",
            "wake p50 ms",
            "wake p99 ms",
            "RSS idle MB",
            "listening MB",
            "peak MB",
            "server cores",
        ],
        rows,
        first=24,
    )
    print()
    checks = []
    for label, r in results.items():
        if label.startswith("PouchDB"):
            continue
        checks.append(
            [
                f"{label} deliveries",
                f"{r.delivered:,}/{r.expected:,}",
                "all",
                verdict(r.delivered == r.expected and r.expected > 0),
            ]
        )
        checks.append(
            [
                f"{label} writes/s",
                f"{r.rate:,.0f}",
                f"{args.rate:.0f}",
                verdict(r.rate >= 0.95 * args.rate and r.writes_failed == 0),
            ]
        )
        checks.append(
            [
                f"{label} ack -> wake p99",
                f"{r.ms(99):.1f} ms",
                f"< {WAKE_P99_TARGET_MS:.0f} ms",
                verdict(r.ms(99) < WAKE_P99_TARGET_MS),
            ]
        )
        checks.append(
            [
                f"{label} PUT sent -> wake p99",
                f"{percentile(r.from_sent, 99) * 1000:.1f} ms",
                "",
                "(informative: includes the PUT's own latency)",
            ]
        )
        checks.append(
            [
                f"{label} server RSS peak",
                f"{r.rss_peak / MB:.0f} MB",
                f"< {RSS_TARGET_MB:.0f} MB",
                verdict(r.rss_peak / MB < RSS_TARGET_MB),
            ]
        )
        pouch = results.get("PouchDB Server 4.2")
        if pouch is not None:
            checks.append(informative(f"{label} writes/s / PouchDB Server's", r.rate / pouch.rate))
    print_targets(checks)
    per_round = [
        (
            label,
            "wake p50/p99 ms, writes/s",
            [f"{x.ms(50):.0f}/{x.ms(99):.0f} {x.rate:.0f}" for x in rs],
        )
        for label, rs in runs.items()
    ]
    print_rounds(args.rounds, per_round)
    print_ending(profiles, variants[1:])
    return 0


if __name__ == "__main__":
    run_main(main, "bench/load.py")
