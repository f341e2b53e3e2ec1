"""Crash stress: SIGKILL syncd under write load many times; print what was lost (nothing).

    .venv/bin/python stress/crash.py [--kills 200] [--seed N] [--no-pouchdb] [--keep DIR]

The scenario of tests/test_crash_safety.py (shared code: tests/crashlib.py) with as many
kills as asked: six asyncio clients write to a ``python -m syncd serve`` child process
(``_bulk_docs`` batches and single ``PUT``s), which is SIGKILLed after a seeded random number
of acknowledged writes and restarted on the same data directory; ``syncd check`` runs on every
crashed file. At the end every acknowledged revision is read back with ``GET /db/doc?rev=``.
Unless ``--no-pouchdb``, a PouchDB (Node, memory adapter) then pulls the database, syncd is
killed once more after new writes, and the second pull must read only the new documents.

Not a test: it prints the figures and exits 1 if any acknowledged write was lost, a winner
was wrong, ``update_seq`` went backwards or ``syncd check`` found a problem. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import crashlib  # noqa: E402  (lives in tests/, shared with the suite)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="SIGKILLs under load (200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill moments and writes")
    parser.add_argument("--clients", type=int, default=6, help="load clients, half bulk (6)")
    parser.add_argument(
        "--writes",
        type=int,
        nargs=2,
        default=(20, 250),
        metavar=("MIN", "MAX"),
        help="acknowledged writes between two kills, drawn uniformly (20 250)",
    )
    parser.add_argument("--no-pouchdb", action="store_true", help="skip the PouchDB resume step")
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (default: a temp dir)")
    return parser


async def _run(args: argparse.Namespace, workdir: Path) -> crashlib.Figures:
    proc = crashlib.SyncdProcess(
        workdir / "data", workdir / "syncd.log", env={"SYNCD_LOG_LEVEL": "warning"}
    )
    started = time.monotonic()
    try:
        figures = await crashlib.crash_scenario(
            proc,
            kills=args.kills,
            seed=args.seed,
            bulk_clients=(args.clients + 1) // 2,
            put_clients=args.clients // 2,
            writes_between_kills=tuple(args.writes),
            progress=lambda line: print(line, flush=True),
        )
        print(figures.summary(), flush=True)
        if not args.no_pouchdb:
            print("pouchdb: pull, write, kill, pull again", flush=True)
            crashlib.ensure_node_modules()
            try:
                result = await crashlib.pouchdb_resumes_after_kill(proc, "crash", figures)
            except AssertionError as exc:
                figures.check_failures.append(f"pouchdb step failed: {exc}")
            else:
                if (result["pull2_docs_read"], result["pull2_docs_written"]) != (25, 25):
                    figures.check_failures.append(f"pouchdb did not resume: {result}")
        figures.seconds = time.monotonic() - started
        return figures
    finally:
        proc.stop()


def main() -> int:
    args = _parser().parse_args()
    print(
        f"syncd crash stress: {args.kills} kills, seed {args.seed}, {args.clients} clients; "
        f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}",
        flush=True,
    )
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        figures = asyncio.run(_run(args, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="syncd-crash-") as tmp:
            figures = asyncio.run(_run(args, Path(tmp)))
    print(figures.summary())
    print("OK" if figures.ok else "FAILED")
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
