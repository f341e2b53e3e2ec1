"""Replication benchmark: PouchDB pushing to and pulling from syncd, against two references.

    .venv/bin/python bench/replication.py [--docs N] [--rounds R] [--py-spy DIR]

Starts syncd (this checkout, default settings, fresh temp data dir) and PouchDB Server 4.2
(leveldb on disk, fresh temp dir), each on a free 127.0.0.1 port, and has an unmodified
PouchDB 9 in Node (memory adapter) push the same N pack documents of about 1 KB to each with
batch_size 100, then pull them into a fresh in-memory PouchDB. PouchDB replicating memory to
memory in one Node process is the client's own ceiling. Prints docs/s, the ratios to both
references next to the targets, and the machine. A benchmark, not a test: it fails only when
something breaks (a replication error, a server that does not start, a phase over its time).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
HOST = "127.0.0.1"  # the only address this benchmark ever talks to

ADMIN_USER = "bench"
ADMIN_PASSWORD = "bench-password-not-secret"

NPM_TIMEOUT = 900  # first install of the npm packages
START_TIMEOUT = 60  # a server answering GET /
PHASE_TIMEOUT = 600  # one push or one pull (the memory run gets both)

TARGETS = {"pouchdb-server": 2.5, "memory": 0.70}
LOAD_AT_START = os.getloadavg()[0]


class BenchError(RuntimeError):
    """Something the benchmark cannot go on without."""


# --- setup -------------------------------------------------------------------------------


def run(cmd: list[str], *, timeout: float, cwd: Path = BENCH) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` to completion within ``timeout``; raise with its output if it fails."""
    try:
        done = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(cmd)} took longer than {timeout:.0f} s") from None
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done


LEVELDOWN_CHECK = (
    "const r = require('module').createRequire(require.resolve('pouchdb-adapter-leveldb'));"
    "const db = r('leveldown')(process.argv[1]);"
    "db.open((err) => { if (err) throw err; db.close(() => console.log('leveldown ok')); });"
)


def ensure_node_modules() -> None:
    """``npm ci`` in bench/ when node_modules is missing; make sure leveldown's binding loads.

    npm 11 runs a dependency's install scripts only when package.json's ``allowScripts``
    approves them: leveldown is approved (its script, node-gyp-build, picks the prebuilt binding
    it ships, or compiles one when none fits), sqlite3 is denied (PouchDB Server only uses it
    with --sqlite). If the binding still does not load, rebuild it with its script shown.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise BenchError("node and npm must be on PATH")
    if not (BENCH / "node_modules").is_dir():
        print("installing bench/node_modules (npm ci) ...", flush=True)
        run(["npm", "ci", "--no-audit", "--no-fund"], timeout=NPM_TIMEOUT)
    with tempfile.TemporaryDirectory(prefix="syncd-bench-ldb-") as tmp:
        check = ["node", "-e", LEVELDOWN_CHECK, str(Path(tmp) / "db")]
        try:
            run(check, timeout=60)
        except BenchError:
            print("leveldown does not load; npm rebuild leveldown ...", flush=True)
            run(["npm", "rebuild", "leveldown", "--foreground-scripts"], timeout=NPM_TIMEOUT)
            run(check, timeout=60)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str, auth: tuple[str, str] | None = None) -> Any:
    """One JSON request to a local server."""
    request = urllib.request.Request(url, method=method)
    if auth is not None:
        import base64

        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@dataclass
class Server:
    """A server under test, running as a subprocess on 127.0.0.1."""

    name: str
    cmd: list[str]
    port: int
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def start(self) -> None:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.cwd or self.workdir,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited at start:\n{self.log_tail()}")
            try:
                http("GET", self.url + "/")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise BenchError(f"{self.name} did not answer within {START_TIMEOUT} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)

    def create_db(self, db: str) -> dict[str, Any]:
        http("PUT", f"{self.url}/{db}", self.auth)
        info: dict[str, Any] = http("GET", f"{self.url}/{db}", self.auth)
        return info


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        server.start()
        yield server
    finally:
        server.stop()


def syncd_server(workdir: Path, extra_env: dict[str, str], root: Path = ROOT) -> Server:
    port = free_port()
    return Server(
        name="syncd",
        cmd=[
            sys.executable,
            "-m",
            "syncd",
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--data-dir",
            str(workdir / "data"),
        ],
        port=port,
        workdir=workdir,
        cwd=root,  # python -m syncd imports the syncd package of this directory
        # Admin credentials for a build with authentication; a build without ignores both.
        env={
            "SYNCD_ADMIN_USER": ADMIN_USER,
            "SYNCD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            **extra_env,
        },
        auth=(ADMIN_USER, ADMIN_PASSWORD),
    )


def pouchdb_server(workdir: Path) -> Server:
    port = free_port()
    return Server(
        name="pouchdb-server",
        cmd=[
            str(BENCH / "node_modules" / ".bin" / "pouchdb-server"),
            "--host",
            HOST,
            "--port",
            str(port),
            "--dir",
            str(workdir),
            "--config",
            str(workdir / "config.json"),
            "--no-stdout-logs",
        ],
        port=port,
        workdir=workdir,
    )


# --- measuring ---------------------------------------------------------------------------


class Profiler:
    """py-spy recording the syncd process during one phase (``--py-spy DIR``)."""

    def __init__(self, out_dir: Path | None, pid: int | None) -> None:
        self.out_dir = out_dir
        self.pid = pid

    @contextlib.contextmanager
    def record(self, label: str) -> Iterator[None]:
        if self.out_dir is None or self.pid is None:
            yield
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        out = self.out_dir / f"{label}.txt"
        # raw = collapsed stacks, one "frame;frame;... count" line each (bench/pyspy_top.py)
        cmd = [py_spy, "record", "--pid", str(self.pid), "--rate", "200", "--nonblocking"]
        proc = subprocess.Popen(
            [*cmd, "--format", "raw", "--output", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # let py-spy attach before the phase starts
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def node(mode: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run ``replicate.js MODE PARAMS``; its one JSON result line."""
    done = run(["node", "replicate.js", mode, json.dumps(params)], timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise BenchError(f"replicate.js {mode} printed no result:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_server(
    server: Server, db: str, base: dict[str, Any], profiler: Profiler
) -> dict[str, float]:
    """Push the documents into a new database of ``server``, then pull them out.

    Besides docs/s, the server's own CPU time per document in each phase: on a busy machine
    it moves far less than wall-clock throughput does.
    """
    info = server.create_db(db)
    if server.name == "pouchdb-server" and info.get("adapter") != "leveldb":
        raise BenchError(f"pouchdb-server is not on leveldb: {info}")
    params = {**base, "url": f"{server.url}/{db}"}
    if server.auth is not None:
        params.update(username=server.auth[0], password=server.auth[1])
    assert server.proc is not None
    out: dict[str, float] = {}
    for phase in ("push", "pull"):
        with profiler.record(f"{db}-{phase}"):
            cpu = cpu_seconds(server.proc.pid)
            result = node(phase, params, PHASE_TIMEOUT)[phase]
            cpu = cpu_seconds(server.proc.pid) - cpu
        out[phase] = result["docs_per_s"]
        out[f"{phase}_cpu_us"] = cpu / result["docs"] * 1e6
        out[f"{phase}_client_cpu_us"] = result["client_cpu_us"]
    return out


# --- report ------------------------------------------------------------------------------


def machine(root: Path = ROOT) -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    node_version = run(["node", "--version"], timeout=30).stdout.strip()
    commit = "unknown"
    with contextlib.suppress(BenchError):
        commit = run(["git", "rev-parse", "--short", "HEAD"], timeout=30, cwd=root).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--", "syncd"], timeout=30, cwd=root).stdout
        if dirty.strip():
            commit += " (syncd/ has uncommitted changes)"
    import sqlite3

    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "memory": _memory(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "node": node_version,
        "syncd": commit,
        "load": f"1-min load average {LOAD_AT_START:.2f} at start, {os.getloadavg()[0]:.2f} at end",
    }


def _memory() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def report(
    results: dict[str, list[dict[str, float]]], sample: dict[str, Any], args: argparse.Namespace
) -> None:
    med = {
        name: {phase: statistics.median(r[phase] for r in runs) for phase in ("push", "pull")}
        for name, runs in results.items()
    }
    rounds = len(results["syncd"])
    print()
    print(
        f"Replication of {args.docs:,} pack documents (mean {sample['mean_bytes']:.0f} B, "
        f"{sample['min_bytes']}-{sample['max_bytes']} B), PouchDB 9 memory adapter client, "
        f"batch_size {args.batch_size}, "
        + (f"median of {rounds} rounds" if rounds > 1 else "1 round")
    )
    print()
    labels = {
        "syncd": "syncd",
        "pouchdb-server": "PouchDB Server 4.2 (leveldb)",
        "memory": "PouchDB memory->memory",
    }
    print(
        f"{'':30}{'push docs/s':>12}{'pull docs/s':>12}"
        f"{'server CPU/doc':>17}{'client CPU/doc':>17}   (push/pull)"
    )

    def cpu(name: str, who: str) -> str:
        runs = results[name]
        if f"push_{who}" not in runs[0]:
            return ""
        push = statistics.median(r[f"push_{who}"] for r in runs)
        pull = statistics.median(r[f"pull_{who}"] for r in runs)
        return f"{push:.0f}/{pull:.0f} us"

    for name in ("syncd", "pouchdb-server", "memory"):
        row = med[name]
        print(
            f"{labels[name]:30}{row['push']:>12,.0f}{row['pull']:>12,.0f}"
            f"{cpu(name, 'cpu_us'):>17}{cpu(name, 'client_cpu_us'):>17}"
        )
    if rounds > 1:
        print()
        for name in ("syncd", "pouchdb-server", "memory"):
            spread = ", ".join(f"{r['push']:,.0f}/{r['pull']:,.0f}" for r in results[name])
            print(f"  rounds of {labels[name]} (push/pull docs/s): {spread}")
    print()
    print(f"{'':34}{'push':>14}{'pull':>14}{'target':>14}")
    for ref, label, fmt in (
        ("pouchdb-server", "syncd / PouchDB Server", "x"),
        ("memory", "syncd / memory ceiling", "%"),
    ):
        target = TARGETS[ref]
        cells = []
        for phase in ("push", "pull"):
            ratio = med["syncd"][phase] / med[ref][phase]
            ok = "ok" if ratio >= target else "MISS"
            text = f"{ratio:.2f}x" if fmt == "x" else f"{ratio:.0%}"
            cells.append(f"{text} {ok}")
        goal = f">= {target}x" if fmt == "x" else f">= {target:.0%}"
        print(f"{label:34}{cells[0]:>14}{cells[1]:>14}{goal:>14}")
    cells = []
    for phase in ("push", "pull"):
        theirs = statistics.median(r[f"{phase}_cpu_us"] for r in results["pouchdb-server"])
        ours = statistics.median(r[f"{phase}_cpu_us"] for r in results["syncd"])
        cells.append(f"{theirs / ours:.2f}x")
    label = "server CPU/doc, PouchDB Server / syncd"
    print(f"{label:38}{cells[0]:>10}{cells[1]:>14}   (informative: the server's own efficiency)")
    if args.syncd_env:
        print(f"  syncd environment: {' '.join(args.syncd_env)}")
    print()
    for key, value in machine(args.syncd_root).items():
        print(f"  {key:8} {value}")
    print()


# --- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000, help="documents (default 10000)")
    parser.add_argument("--batch-size", type=int, default=100, help="PouchDB batch_size")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; medians are reported")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated documents")
    parser.add_argument(
        "--only",
        choices=("syncd", "pouchdb-server", "memory"),
        action="append",
        help="measure only these (repeatable); the table needs all three",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="record syncd with py-spy during each push and pull into DIR (collapsed stacks)",
    )
    parser.add_argument(
        "--syncd-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for syncd, e.g. SYNCD_SQLITE_SYNCHRONOUS=normal (repeatable)",
    )
    parser.add_argument(
        "--syncd-root",
        type=Path,
        default=ROOT,
        metavar="DIR",
        help="run the syncd package of another checkout (e.g. a git worktree), for A/B runs",
    )
    args = parser.parse_args(argv)
    extra_env = dict(item.split("=", 1) for item in args.syncd_env)

    ensure_node_modules()
    base = {"count": args.docs, "seed": args.seed, "batch_size": args.batch_size}
    sample = node("sample", base, 120)
    wanted = args.only or ["syncd", "pouchdb-server", "memory"]
    results: dict[str, list[dict[str, float]]] = {name: [] for name in wanted}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        root = Path(tmp)
        for name in ("syncd", "pouchdb-server"):
            if name not in wanted:
                continue
            workdir = root / name
            workdir.mkdir()
            server = (
                syncd_server(workdir, extra_env, args.syncd_root)
                if name == "syncd"
                else pouchdb_server(workdir)
            )
            with running(server):
                pid = server.proc.pid if server.proc and name == "syncd" else None
                profiler = Profiler(args.py_spy, pid)
                for r in range(args.rounds):
                    print(f"{name}: round {r + 1} ...", flush=True)
                    results[name].append(measure_server(server, f"bench-{r + 1}", base, profiler))
                    last = results[name][-1]
                    print(
                        f"  push {last['push']:,.0f} docs/s, pull {last['pull']:,.0f} docs/s;"
                        f" CPU per doc, server: push {last['push_cpu_us']:.0f} us,"
                        f" pull {last['pull_cpu_us']:.0f} us; client: push"
                        f" {last['push_client_cpu_us']:.0f} us, pull {last['pull_client_cpu_us']:.0f} us"
                    )
        if "memory" in wanted:
            for r in range(args.rounds):
                print(f"memory: round {r + 1} ...", flush=True)
                out = node("memory", base, 2 * PHASE_TIMEOUT)
                results["memory"].append(
                    {
                        "push": out["push"]["docs_per_s"],
                        "pull": out["pull"]["docs_per_s"],
                        "push_client_cpu_us": out["push"]["client_cpu_us"],
                        "pull_client_cpu_us": out["pull"]["client_cpu_us"],
                    }
                )
                last = results["memory"][-1]
                print(f"  push {last['push']:,.0f} docs/s, pull {last['pull']:,.0f} docs/s")
    if len(wanted) == 3:
        report(results, sample, args)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench/replication.py: {exc}", file=sys.stderr)
        sys.exit(1)
