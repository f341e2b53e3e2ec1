"""Summarize py-spy's raw (collapsed-stack) output: where the samples went.

    .venv/bin/python bench/pyspy_top.py PROFILE.txt [--top N] [--prefix syncd/]

Each line of ``py-spy record --format raw`` is ``frame;frame;...;frame COUNT`` (outermost
first). Prints the functions with the most samples on top of the stack ("self") and the most
samples anywhere on the stack ("total"), as shares of all samples, and how the samples split between the
event loop's thread and SQLite's worker threads. py-spy samples busy threads only. ``--prefix`` keeps the "total" table to frames whose file path
contains it (e.g. ``syncd/``), so the server's own functions stand out from the libraries.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
IDLE = ("select (selectors.py", "poll (selectors.py")


def short(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``, merging a function's lines."""
    match = FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--rate", type=int, default=200, help="py-spy's sampling rate (Hz)")
    parser.add_argument("--prefix", default="", help="only frames whose path contains this")
    args = parser.parse_args()

    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    idle = samples = 0
    for raw in args.profile.read_text().splitlines():
        stack, _, count_text = raw.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        if "_connection_worker_thread" in stack:
            threads["SQLite worker threads (aiosqlite)"] += count
        elif frames[0].startswith("_run_module_as_main"):
            threads["event loop (main thread)"] += count
        else:
            threads["other"] += count
        leaf = short(frames[-1])
        if any(marker in frames[-1] for marker in IDLE):
            idle += count
        own[leaf] += count
        for name in {short(f) for f in frames}:
            total[name] += count
    if samples == 0:
        print("no samples")
        return
    print(
        f"{samples} samples of busy threads ({samples / args.rate:.1f} s at {args.rate} Hz); "
        f"in the selector: {idle / samples:.0%}"
    )
    for name, count in threads.most_common():
        print(f"  {count / samples:6.1%}  {name} ({count / args.rate:.1f} s)")
    print(f"\nself (top of stack), top {args.top}:")
    for name, count in own.most_common(args.top):
        print(f"  {count / samples:6.1%}  {name}")
    print(f"\ntotal (anywhere on the stack){' in ' + args.prefix if args.prefix else ''}:")
    shown = 0
    for name, count in total.most_common():
        if args.prefix and args.prefix not in name:
            continue
        print(f"  {count / samples:6.1%}  {name}")
        shown += 1
        if shown >= args.top:
            break


if __name__ == "__main__":
    main()
