"""Analytics ingestion benchmark: syncd taking event batches over HTTP, against plain SQLite.

    .venv/bin/python bench/analytics.py [--events N] [--clients C] [--rounds R] [--py-spy DIR]
                                        [--syncd-root DIR]

Starts syncd (this checkout, default settings, fresh temp data dir) on a free 127.0.0.1 port
and has C concurrent aiohttp clients (default 20) send N valid events (default 100,000) in
batches of 100 to ``POST /v1/analytics/events``; every batch must come back with all 100
accepted, and the file must hold N events afterwards. Then, in the same temp dir, plain
SQLite (Python's sqlite3, WAL, synchronous=FULL) inserts the same rows (made by syncd's own
validator) into a table of the same shape as ``analytics_events`` (its DDL read from the
migration), 100 rows per transaction. R rounds (default 3) of both, alternating so that a
change in the machine's load hits both; prints the medians in events/s, their ratio next to
the target (syncd >= 0.5 x plain SQLite), syncd's CPU time per event (and how much of it the
event loop thread took, and the other threads: SQLite's), its voluntary context switches per
batch, this process's (the clients') CPU per event, and the machine.

A benchmark, not a test: it fails only when something breaks (a refused batch, a server that
does not start, a phase over its time limit). ``--py-spy DIR`` records syncd during the first
ingestion and prints where the samples went (bench/pyspy_top.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # the syncd package of this checkout (for the same rows)

from common import ThreadTimes, own_cpu, thread_times  # noqa: E402  (bench/common.py)

from syncd.services.analytics import (  # noqa: E402
    DEFAULT_EVENTS,
    DEFAULT_PROPS,
    PLATFORMS,
    AnalyticsRules,
    check_event,
)

HOST = "127.0.0.1"  # the only address this benchmark talks to
BATCH = 100
TARGET = 0.5
START_TIMEOUT = 60  # syncd answering GET /_up
INGEST_TIMEOUT = 300  # the whole HTTP phase
REQUEST_TIMEOUT = 60  # one batch
SQLITE_TIMEOUT = 300  # the plain SQLite phase
MIGRATION = ROOT / "syncd" / "store" / "sql" / "migrations" / "004_sharing_moderation_analytics.sql"


class BenchError(RuntimeError):
    """Something the benchmark cannot go on without."""


# --- the events ------------------------------------------------------------------------------


def make_events(count: int, seed: int = 20261122) -> list[dict[str, Any]]:
    """``count`` valid events: the default names and props, times within the last two days."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    installs = [f"install-{n:06d}-{rng.getrandbits(32):08x}" for n in range(5000)]
    versions = ["1.0.0", "1.1.0", "1.2.0", "2.0.0-beta.1"]
    events = []
    for _ in range(count):
        props: dict[str, Any] = {"screen": rng.choice(["home", "pack", "store", "settings"])}
        if rng.random() < 0.5:
            props["pack_id"] = f"pack:{rng.randrange(500)}"
            props["language"] = rng.choice(["en", "de", "pt-BR"])
        if rng.random() < 0.3:
            props["duration_ms"] = rng.randrange(20, 60_000)
        moment = now - timedelta(seconds=rng.randrange(0, 2 * 86400))
        events.append(
            {
                "name": rng.choice(DEFAULT_EVENTS),
                "ts": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "install_id": rng.choice(installs),
                "app_version": rng.choice(versions),
                "platform": rng.choice(PLATFORMS),
                "props": props,
            }
        )
    return events


def stored_rows(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows syncd stores for these events (its own validator makes them)."""
    rules = AnalyticsRules(frozenset(DEFAULT_EVENTS), frozenset(DEFAULT_PROPS))
    now = time.time()
    rows = []
    for raw in events:
        e = check_event(raw, rules, now)
        rows.append(
            (e.name, e.ts, e.day, e.install_id, e.app_version, e.platform, e.props, e.received_at)
        )
    return rows


# --- syncd -----------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def syncd(workdir: Path, root: Path = ROOT) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """syncd (the package in ``root``) serving a fresh data dir in ``workdir``: (URL, process)."""
    port = free_port()
    log_path = workdir / "syncd.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "serve", "--host", HOST, "--port", str(port)],
            cwd=root,  # python -m syncd imports the syncd package of this directory
            env={
                **os.environ,
                "SYNCD_DATA_DIR": str(workdir / "data"),
                # one address sends every batch: the per-address limit stays on, out of reach
                "SYNCD_ANALYTICS_RATE_LIMIT": "1000000/minute",
            },
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise BenchError(f"syncd exited at start:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"syncd did not listen within {START_TIMEOUT} s")
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


async def send_all(url: str, bodies: list[bytes], clients: int) -> float:
    """POST every batch from ``clients`` concurrent sessions; wall-clock seconds."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    headers = {"Content-Type": "application/json"}

    async def client() -> None:
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            while not queue.empty():
                body = queue.get_nowait()
                async with session.post(url + "/v1/analytics/events", data=body) as resp:
                    answer = await resp.read()
                    if resp.status != 200:
                        raise BenchError(f"batch refused: {resp.status} {answer[:300]!r}")
                    if orjson.loads(answer)["accepted"] != BATCH:
                        raise BenchError(f"events refused: {answer[:300]!r}")

    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(client() for _ in range(clients))), timeout=INGEST_TIMEOUT
    )
    return time.perf_counter() - started


@contextlib.contextmanager
def py_spy(out: Path | None, pid: int) -> Iterator[None]:
    """Record ``pid`` with py-spy (collapsed stacks in ``out``) while the block runs."""
    if out is None:
        yield
        return
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            *(exe, "record", "--pid", str(pid), "--rate", "200", "--nonblocking"),
            *("--format", "raw", "--output", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy has no ready signal; give it a moment to attach
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- plain SQLite ----------------------------------------------------------------------------


def events_ddl() -> list[str]:
    """``CREATE TABLE analytics_events`` and its indexes, as the migration has them."""
    sql = MIGRATION.read_text()
    statements = [s.strip() for s in re.split(r";\s*$", sql, flags=re.MULTILINE)]
    wanted = [
        s
        for s in statements
        if re.search(r"CREATE (TABLE|INDEX \w+ ON) analytics_events\b", s, flags=re.IGNORECASE)
    ]
    if not any("CREATE TABLE" in s for s in wanted):
        raise BenchError(f"no analytics_events table in {MIGRATION}")
    return [re.sub(r"^\s*--.*$", "", s, flags=re.MULTILINE).strip() for s in wanted]


def plain_sqlite(path: Path, rows: list[tuple[Any, ...]]) -> float:
    """Insert ``rows`` 100 per transaction (WAL, synchronous=FULL); seconds."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        for statement in events_ddl():
            conn.execute(statement)
        insert = (
            "INSERT INTO analytics_events (name, ts, day, install_id, app_version, platform, "
            "props, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        started = time.perf_counter()
        for start in range(0, len(rows), BATCH):
            conn.execute("BEGIN")
            conn.executemany(insert, rows[start : start + BATCH])
            conn.execute("COMMIT")
            if time.perf_counter() - started > SQLITE_TIMEOUT:
                raise BenchError(f"plain SQLite took longer than {SQLITE_TIMEOUT} s")
        elapsed = time.perf_counter() - started
        stored = conn.execute("SELECT count(*) FROM analytics_events").fetchone()[0]
        if stored != len(rows):
            raise BenchError(f"plain SQLite holds {stored} rows, not {len(rows)}")
        return elapsed
    finally:
        conn.close()


# --- report ----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load": f"1-min load average {os.getloadavg()[0]:.2f}",
    }


def summarize_profile(profile: Path) -> None:
    top = BENCH / "pyspy_top.py"
    if not profile.exists():
        print(f"py-spy wrote no profile at {profile}")
        return
    done = subprocess.run(
        [sys.executable, str(top), str(profile), "--top", "15", "--prefix", "syncd/"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    print(done.stdout or done.stderr)


@dataclass(frozen=True)
class IngestRun:
    """One HTTP ingestion: wall-clock seconds, syncd's CPU (all threads), the client's CPU."""

    seconds: float
    cpu: float
    threads: ThreadTimes
    client_cpu: float


def ingest_round(
    workdir: Path, bodies: list[bytes], clients: int, profile: Path | None, root: Path
) -> IngestRun:
    """A fresh syncd takes every batch."""
    with syncd(workdir, root) as (url, proc):
        with py_spy(profile, proc.pid):
            cpu = cpu_seconds(proc.pid)
            threads = thread_times(proc.pid)
            client = own_cpu()
            seconds = asyncio.run(send_all(url, bodies, clients))
            client = own_cpu() - client
            threads = thread_times(proc.pid) - threads
            cpu = cpu_seconds(proc.pid) - cpu
        db = workdir / "data" / "syncd.sqlite3"
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            stored = conn.execute("SELECT count(*) FROM analytics_events").fetchone()[0]
    expected = len(bodies) * BATCH
    if stored != expected:
        raise BenchError(f"syncd holds {stored} events, not {expected}")
    return IngestRun(seconds, cpu, threads, client)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to send (x100)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent HTTP clients")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both phases (median)")
    parser.add_argument("--py-spy", type=Path, default=None, help="record syncd into DIR")
    parser.add_argument(
        "--syncd-root",
        type=Path,
        default=ROOT,
        help="run the syncd package of this directory (A/B runs; default: this checkout)",
    )
    args = parser.parse_args(argv)
    if args.events <= 0 or args.events % BATCH:
        parser.error(f"--events must be a positive multiple of {BATCH}")
    if args.rounds <= 0:
        parser.error("--rounds must be positive")

    events = make_events(args.events)
    bodies = [orjson.dumps({"events": events[i : i + BATCH]}) for i in range(0, len(events), BATCH)]
    rows = stored_rows(events)
    profile = args.py_spy / "analytics-ingest.txt" if args.py_spy else None

    syncd_runs: list[IngestRun] = []
    plain_runs: list[float] = []
    for n in range(args.rounds):  # alternating, so a change in the machine's load hits both
        with tempfile.TemporaryDirectory(prefix="syncd-bench-analytics-") as tmp:
            workdir = Path(tmp)
            syncd_runs.append(
                ingest_round(
                    workdir, bodies, args.clients, profile if n == 0 else None, args.syncd_root
                )
            )
            plain_runs.append(plain_sqlite(workdir / "plain.sqlite3", rows))

    seconds = statistics.median(r.seconds for r in syncd_runs)
    cpu = statistics.median(r.cpu for r in syncd_runs)
    plain = statistics.median(plain_runs)
    syncd_rate = args.events / seconds
    plain_rate = args.events / plain
    ratio = syncd_rate / plain_rate

    def rates(runs: list[float]) -> str:
        return ", ".join(f"{args.events / s:,.0f}" for s in runs)

    print(
        f"analytics ingestion: {args.events:,} events in batches of {BATCH}, median of {args.rounds}"
    )
    label = f"syncd over HTTP, {args.clients} clients:"
    print(
        f"  {label:<38}{syncd_rate:>9,.0f} events/s  (runs: {rates([r.seconds for r in syncd_runs])})"
    )
    label = "plain SQLite, 100 rows/transaction:"
    print(f"  {label:<38}{plain_rate:>9,.0f} events/s  (runs: {rates(plain_runs)})")
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"  ratio syncd / plain SQLite: {ratio:.2f} ({verdict} the target of {TARGET})")
    print(f"  syncd CPU: {cpu / args.events * 1e6:.1f} us per event")

    def per_event(values: Iterator[float]) -> str:
        return f"{statistics.median(values) / args.events * 1e6:.1f}"

    batches = args.events // BATCH
    switches = statistics.median(
        (r.threads.main_switches + r.threads.other_switches) / batches for r in syncd_runs
    )
    print(
        f"    event loop thread {per_event(r.threads.main_cpu for r in syncd_runs)} us, "
        f"other threads (SQLite) {per_event(r.threads.other_cpu for r in syncd_runs)} us; "
        f"{switches:.1f} voluntary context switches per batch"
    )
    print(
        f"  client CPU (this process): {per_event(r.client_cpu for r in syncd_runs)} us per event"
    )
    if args.syncd_root.resolve() != ROOT:
        print(f"  syncd package from: {args.syncd_root}")
    print("machine:")
    for key, value in machine().items():
        print(f"  {key}: {value}")
    if profile is not None:
        print(f"py-spy profile of syncd during the first ingestion: {profile}")
        summarize_profile(profile)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)
