"""Shared pieces of the load benchmarks (writes.py, load.py, changes.py).

The server harness (starting syncd and PouchDB Server on a free 127.0.0.1 port with a temp
data dir, ``npm ci`` of bench/package.json, the machine report, py-spy recording) is
bench/replication.py's, imported from there unchanged; this module adds what the load
benchmarks need on top: the same pack documents in Python, syncd variants for A/B runs (a
switch interval, another checkout), memory and CPU readings from /proc, percentiles, the
plain SQLite reference, and the report helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # syncd's own rev and tree functions make the plain rows

from replication import (  # noqa: E402  (bench/replication.py: the shared server harness)
    ADMIN_PASSWORD,
    ADMIN_USER,
    HOST,
    BenchError,
    Profiler,
    Server,
    cpu_seconds,
    ensure_node_modules,
    free_port,
    machine,
    pouchdb_server,
    running,
    syncd_server,
)

__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "HOST",
    "BenchError",
    "Profiler",
    "Server",
    "cpu_seconds",
    "ensure_node_modules",
    "free_port",
    "machine",
    "pouchdb_server",
    "running",
    "syncd_server",
]

SCHEMA = ROOT / "syncd" / "store" / "sql" / "schema.sql"


# --- the documents ---------------------------------------------------------------------------

# The words and the shape of bench/replicate.js's documents; Python's own PRNG (seeded) picks
# them (a port of replicate.js's mulberry32 takes 15 s for 20,000 documents on a busy machine).
# Same shape and size (mean about 1 KB), not the same documents.
WORDS = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "it",
    "you",
    "that",
    "he",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "his",
    "they",
    "be",
    "at",
    "one",
    "have",
    "this",
    "from",
    "or",
    "had",
    "by",
    "word",
    "but",
    "what",
    "some",
    "we",
    "can",
    "out",
    "other",
    "were",
    "all",
    "there",
    "when",
    "up",
    "use",
    "your",
    "how",
    "said",
    "an",
    "each",
    "she",
    "which",
    "do",
    "their",
    "time",
    "if",
    "will",
    "way",
    "about",
    "many",
    "then",
    "them",
    "write",
    "would",
    "like",
    "so",
    "these",
    "her",
    "long",
    "make",
    "thing",
    "see",
    "him",
    "two",
    "has",
    "look",
    "more",
    "day",
    "could",
    "go",
    "come",
    "did",
    "number",
    "sound",
    "no",
    "most",
    "people",
    "my",
    "over",
    "know",
    "water",
    "than",
    "call",
    "first",
    "who",
    "may",
    "down",
    "side",
    "been",
    "now",
    "find",
    "favourite",
    "remember",
    "childhood",
    "summer",
    "travel",
    "dream",
    "describe",
    "morning",
    "weekend",
    "friend",
    "family",
]


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    text = " ".join(rng.choices(WORDS, k=rng.randint(lo, hi)))
    return f"{text[0].upper()}{text[1:]}?"


def _hex(rng: random.Random, n: int) -> str:
    return format(rng.getrandbits(4 * n), f"0{n}x")


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def pack_docs(count: int, seed: int = 1) -> list[dict[str, Any]]:
    """``count`` pack documents of about 1 KB, the same for the same seed (replicate.js's shape)."""
    rng = random.Random(seed)
    rand = rng.random
    base = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
    docs = []
    for _ in range(count):
        created = base + int(rand() * 300 * 86400000)
        updated = created + int(rand() * 30 * 86400000)
        prompts = [
            {"id": f"p-{_hex(rng, 8)}", "text": _sentence(rng, 16, 28)}
            for _ in range(rng.randint(5, 7))
        ]
        docs.append(
            {
                "_id": f"pack:{_hex(rng, 32)}",
                "type": "pack",
                "title": _sentence(rng, 3, 7)[:-1],
                "language": "en",
                "prompts": prompts,
                "created_at": _iso(created),
                "updated_at": _iso(updated),
            }
        )
    return docs


def mean_size(docs: Sequence[dict[str, Any]]) -> float:
    return sum(len(orjson.dumps(d)) for d in docs) / max(len(docs), 1)


# --- syncd variants (A/B) ------------------------------------------------------------------------

# `python -c` that sets the GIL switch interval, then runs `python -m syncd` as usual.
_LAUNCH_WITH_SWITCH = (
    "import runpy, sys; sys.setswitchinterval(float(sys.argv.pop(1))); "
    "runpy.run_module('syncd', run_name='__main__', alter_sys=True)"
)


@dataclass(frozen=True)
class Variant:
    """One way of running syncd: its checkout, the GIL switch interval, extra environment."""

    label: str = "syncd"
    root: Path = ROOT
    switch_interval: float | None = None
    env: tuple[tuple[str, str], ...] = ()

    def server(self, workdir: Path) -> Server:
        server = syncd_server(workdir, dict(self.env), self.root)
        server.name = "syncd"
        if self.switch_interval is not None:
            # syncd_server's command is [python, -m, syncd, serve, ...]
            server.cmd = [
                sys.executable,
                "-c",
                _LAUNCH_WITH_SWITCH,
                repr(self.switch_interval),
                *server.cmd[3:],
            ]
        return server


def parse_variant(spec: str) -> Variant:
    """``switch=0.001``, ``root=DIR``, ``env=NAME=VALUE`` (comma-separated), ``label=TEXT``."""
    label = None
    root = ROOT
    switch = None
    env: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise BenchError(f"bad variant part {part!r}; use switch=S, root=DIR, env=K=V")
        if key == "switch":
            switch = float(value)
        elif key == "root":
            root = Path(value).resolve()
            if not (root / "syncd").is_dir():
                raise BenchError(f"{root} has no syncd package")
        elif key == "env":
            name, _, val = value.partition("=")
            env.append((name, val))
        elif key == "label":
            label = value
        else:
            raise BenchError(f"unknown variant key {key!r}")
    return Variant(label or f"syncd[{spec}]", root, switch, tuple(env))


# --- process readings ------------------------------------------------------------------------


def raise_nofile(wanted: int) -> int:
    """Raise this process's (and so its children's) open-file limit; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(max(wanted, soft), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < wanted:
        raise BenchError(f"RLIMIT_NOFILE is {soft} (hard {hard}); this run needs {wanted}")
    return soft


def vmrss_bytes(pid: int) -> int:
    """VmRSS of ``pid`` from /proc/PID/status (0 once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def session_pids(sid: int) -> list[int]:
    """Every process of session ``sid`` (a server started with start_new_session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:  # field 6 of stat: session id
                pids.append(int(entry.name))
    return pids


def server_rss(server: Server) -> int:
    """Resident memory of the server: VmRSS summed over its process session."""
    assert server.proc is not None
    return sum(vmrss_bytes(pid) for pid in session_pids(server.proc.pid) or [server.proc.pid])


def server_cpu(server: Server) -> float:
    """CPU seconds of the server so far, over its process session."""
    assert server.proc is not None
    total = 0.0
    for pid in session_pids(server.proc.pid) or [server.proc.pid]:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


@dataclass(frozen=True)
class ThreadTimes:
    """CPU seconds and context switches of one process: its main thread and all the others.

    In syncd the main thread runs the event loop; the others are aiosqlite's connection
    threads (the writer's and the readers'), where SQLite runs. A thread that waits for the GIL
    sleeps and counts a voluntary switch when it gets to run again, so switches per request
    show how often work hops between threads.
    """

    main_cpu: float = 0.0
    other_cpu: float = 0.0
    main_switches: int = 0
    other_switches: int = 0
    involuntary: int = 0  # preempted by the kernel (the machine is busy)

    def __sub__(self, other: ThreadTimes) -> ThreadTimes:
        return ThreadTimes(
            self.main_cpu - other.main_cpu,
            self.other_cpu - other.other_cpu,
            self.main_switches - other.main_switches,
            self.other_switches - other.other_switches,
            self.involuntary - other.involuntary,
        )


def thread_times(pid: int) -> ThreadTimes:
    """Per-thread CPU and switches of ``pid`` from /proc/PID/task (threads gone are lost)."""
    tick = os.sysconf("SC_CLK_TCK")
    main_cpu = other_cpu = 0.0
    main_sw = other_sw = invol = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / tick
                status = dict(
                    line.split(":", 1)
                    for line in (task / "status").read_text().splitlines()
                    if ":" in line
                )
                voluntary = int(status["voluntary_ctxt_switches"])
                invol += int(status["nonvoluntary_ctxt_switches"])
                if int(task.name) == pid:
                    main_cpu, main_sw = cpu, voluntary
                else:
                    other_cpu += cpu
                    other_sw += voluntary
    return ThreadTimes(main_cpu, other_cpu, main_sw, other_sw, invol)


def own_cpu() -> float:
    """CPU seconds of this (the client) process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- statistics --------------------------------------------------------------------------------


def client_session(server: Server, connections: int, timeout: float) -> aiohttp.ClientSession:
    """aiohttp keep-alive session to ``server`` (its admin credentials, if any)."""
    headers = {"Content-Type": "application/json"}
    if server.auth is not None:
        headers["Authorization"] = aiohttp.encode_basic_auth(*server.auth)
    return aiohttp.ClientSession(
        base_url=server.url,
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=timeout),
        headers=headers,
    )


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


# --- plain SQLite ----------------------------------------------------------------------------


def _ddl(names: Sequence[str]) -> list[str]:
    """``CREATE TABLE``/``CREATE ... INDEX`` of these tables, as syncd's schema has them."""
    sql = re.sub(r"--[^\n]*", "", SCHEMA.read_text())
    out = []
    for statement in (s.strip() for s in sql.split(";")):
        match = re.match(
            r"CREATE\s+(?:TABLE\s+(\w+)|(?:UNIQUE\s+)?INDEX\s+\w+\s+ON\s+(\w+))", statement
        )
        if match and (match.group(1) or match.group(2)) in names:
            out.append(statement)
    if len(out) < len(names):
        raise BenchError(f"{SCHEMA} lacks some of the tables {names}")
    return out


def plain_rows(docs: Sequence[dict[str, Any]]) -> list[tuple[str, str, bytes, bytes]]:
    """(doc_id, rev, tree JSON, body JSON) as syncd stores a new document (its own functions)."""
    from syncd.replication import revtree
    from syncd.replication.revs import canonical_body, new_rev

    rows = []
    for doc in docs:
        body = {k: v for k, v in doc.items() if not k.startswith("_")}
        rev = new_rev(None, False, canonical_body(body))
        tree, _ = revtree.merge_path({}, [rev], False)
        rows.append((doc["_id"], rev, orjson.dumps(revtree.to_json(tree)), orjson.dumps(body)))
    return rows


def plain_sqlite_insert(
    path: Path, rows: Sequence[tuple[str, str, bytes, bytes]], per_tx: int = 100
) -> float:
    """Insert the rows syncd keeps for new documents, ``per_tx`` documents per transaction.

    Tables ``dbs``, ``docs`` (with its seq index) and ``revs`` from syncd's schema, WAL,
    synchronous=FULL, foreign keys on (as syncd's connections); per transaction one
    ``executemany`` into docs, one into revs and the database's counters. Returns docs/s.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        for statement in _ddl(("dbs", "docs", "revs")):
            conn.execute(statement)
        conn.execute("INSERT INTO dbs (id, name, created_at) VALUES (1, 'plain', 'now')")
        seq = 0
        started = time.perf_counter()
        for start in range(0, len(rows), per_tx):
            chunk = rows[start : start + per_tx]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO docs (db_id, doc_id, rev, deleted, seq, tree) VALUES (1, ?, ?, 0, ?, ?)",
                [
                    (doc_id, rev, seq + i + 1, tree)
                    for i, (doc_id, rev, tree, _) in enumerate(chunk)
                ],
            )
            conn.executemany(
                "INSERT INTO revs (db_id, doc_id, rev, body, atts) VALUES (1, ?, ?, ?, NULL)",
                [(doc_id, rev, body) for doc_id, rev, _, body in chunk],
            )
            seq += len(chunk)
            conn.execute(
                "UPDATE dbs SET update_seq = ?, doc_count = doc_count + ? WHERE id = 1",
                (seq, len(chunk)),
            )
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        stored = conn.execute("SELECT count(*) FROM revs").fetchone()[0]
        if stored != len(rows):
            raise BenchError(f"plain SQLite holds {stored} rows, not {len(rows)}")
        return len(rows) / elapsed
    finally:
        conn.close()


# --- command line ------------------------------------------------------------------------------

VARIANT_HELP = "also measure syncd run another way (switch=S, root=DIR, env=K=V, label=TEXT)"


def add_server_options(
    parser: argparse.ArgumentParser, only: Sequence[str], variant_help: str = VARIANT_HELP
) -> None:
    """``--only`` (one of ``only``, repeatable), ``--variant SPEC`` and ``--py-spy DIR``."""
    parser.add_argument("--only", action="append", choices=tuple(only), help="subset")
    parser.add_argument("--variant", action="append", default=[], metavar="SPEC", help=variant_help)
    parser.add_argument("--py-spy", type=Path, metavar="DIR", help="record syncd with py-spy")


def chosen_servers(
    args: argparse.Namespace, only: Sequence[str], syncd_for: Sequence[str] = ("syncd",)
) -> tuple[list[str], list[Variant]]:
    """What ``--only`` asks for (all of ``only`` without it) and the syncd variants to run:
    this checkout's syncd first when one of ``syncd_for`` is asked for, then each
    ``--variant``. Installs PouchDB Server's npm packages when it is asked for."""
    wanted = args.only or list(only)
    variants = [Variant()] if any(name in wanted for name in syncd_for) else []
    variants += [parse_variant(spec) for spec in args.variant]
    if "pouchdb-server" in wanted:
        ensure_node_modules()
    return wanted, variants


# --- reporting ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], first: int = 34) -> None:
    """Left-aligned first column, right-aligned others, widths from the contents."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    widths[0] = max(widths[0], first)
    for row in [header, *rows]:
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(c).rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        print("  " + "  ".join(cells).rstrip())


def informative(name: str, ratio: float) -> list[str]:
    """A row of the targets table: a ratio with no target."""
    return [name, f"{ratio:.2f}x", "", "(informative)"]


def print_targets(rows: Sequence[Sequence[str]], first: int = 34) -> None:
    """The targets table: figure, target, verdict."""
    print_table(["", "figure", "target", ""], rows, first)


def print_rounds(rounds: int, lines: Iterable[tuple[str, str, Iterable[str]]]) -> None:
    """With more than one round, a line per ``(label, what the figures are, one per round)``."""
    if rounds > 1:
        print()
        for label, what, figures in lines:
            print(f"  rounds of {label} ({what}): " + ", ".join(figures))


def cpu_pressure() -> str:
    """/proc/pressure/cpu "some" (share of time runnable tasks waited for a CPU), if any."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0].split()
        fields = dict(part.split("=") for part in some[1:])
        return f"runnable tasks waited for a CPU {fields['avg10']}% of the last 10 s, {fields['avg60']}% of 60 s"
    return "unknown"


def print_machine(root: Path = ROOT) -> None:
    print("machine:")
    for key, value in machine(root).items():
        print(f"  {key:8} {value}")
    print(f"  {'pressure':8} {cpu_pressure()} (at end; the machine is shared)")


@dataclass
class Profiles:
    """py-spy recordings of syncd (``--py-spy DIR``): one collapsed-stack file per label."""

    out_dir: Path | None
    written: list[Path] = field(default_factory=list)

    @contextlib.contextmanager
    def record(self, server: Server, label: str) -> Iterator[None]:
        if self.out_dir is None or server.name != "syncd" or server.proc is None:
            yield
            return
        with Profiler(self.out_dir, server.proc.pid).record(label):
            yield
        self.written.append(self.out_dir / f"{label}.txt")

    def summarize(self) -> None:
        for path in self.written:
            print(f"py-spy profile {path}:")
            if not path.exists() or not path.stat().st_size:
                print("  (empty)")
                continue
            done = subprocess.run(
                [sys.executable, str(BENCH / "pyspy_top.py"), str(path), "--top", "12"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            print(done.stdout or done.stderr)


def print_ending(profiles: Profiles, variants: Sequence[Variant] = ()) -> None:
    """The end of a report: the settings of ``variants`` (syncd run other ways), the machine,
    the py-spy profiles."""
    for v in variants:
        print(f"  {v.label}: root {v.root}, switch interval {v.switch_interval}, env {dict(v.env)}")
    print()
    print_machine()
    profiles.summarize()


def run_main(main: Callable[[], int], script: str) -> NoReturn:
    """Exit with ``main()``'s code; on a BenchError, its message after ``script`` and 1."""
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"{script}: {exc}", file=sys.stderr)
        sys.exit(1)


def py_spy_available() -> bool:
    return bool(shutil.which("py-spy") or (Path(sys.executable).parent / "py-spy").exists())


def require_py_spy(out: Path | None) -> None:
    if out is not None and not py_spy_available():
        raise BenchError("--py-spy needs py-spy: .venv/bin/pip install py-spy")


def environment_note() -> str:
    """One line on the client: this Python process drives the load."""
    return f"client: one Python {sys.version.split()[0]} process (aiohttp), pid {os.getpid()}"
