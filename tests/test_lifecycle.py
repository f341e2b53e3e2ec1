"""Process lifecycle: clean shutdown on SIGTERM/SIGINT, health, online backup and restore, and
``syncd check`` on a damaged file. Every test runs ``python -m syncd serve`` as a child
process (tests/crashlib.py) and the CLI as the operator would.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from crashlib import ADMIN_HEADERS, SyncdProcess, arun_cli, get_json, run_cli

EXIT_BOUND = 15.0  # seconds from the signal to the exit


def logged_errors(proc: SyncdProcess) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in proc.log.read_bytes().splitlines() if line.strip()]
    return [line for line in lines if line.get("level") == "error"]


async def put_docs(
    session: aiohttp.ClientSession, url: str, ids: list[str], acked: dict[str, str]
) -> None:
    """PUT each id (sequentially), recording the acknowledged revs."""
    for doc_id in ids:
        async with session.put(f"{url}/{doc_id}", json={"v": doc_id}) as resp:
            assert resp.status == 201, await resp.text()
            acked[doc_id] = (await resp.json())["rev"]


async def missing_revs(
    session: aiohttp.ClientSession, url: str, acked: dict[str, str]
) -> dict[str, int]:
    """The acknowledged (id, rev) pairs that ``GET ?rev=`` cannot read: id -> status."""
    missing = {}
    for doc_id, rev in acked.items():
        async with session.get(f"{url}/{doc_id}", params={"rev": rev}) as resp:
            if resp.status != 200:
                missing[doc_id] = resp.status
    return missing


# --- SIGTERM / SIGINT ----------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_ends_feeds_with_last_seq_commits_queued_writes_and_exits_0(
    syncd: SyncdProcess, sig: signal.Signals
) -> None:
    await syncd.astart()
    url = syncd.url
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(
        headers=ADMIN_HEADERS, timeout=timeout, connector=connector
    ) as session:
        async with session.get(f"{url}/_up") as resp:
            assert (resp.status, (await resp.json())["status"]) == (200, "ok")
        for db in ("feeds", "queue"):
            async with session.put(f"{url}/{db}") as resp:
                assert resp.status == 201
        await put_docs(session, f"{url}/feeds", ["a", "b", "c"], {})

        continuous = await session.get(
            f"{url}/feeds/_changes", params={"feed": "continuous", "since": "0"}
        )
        assert continuous.status == 200
        rows = [orjson.loads(await continuous.content.readline()) for _ in range(3)]
        assert [r["id"] for r in rows] == ["a", "b", "c"]

        async def longpoll() -> tuple[int, Any]:
            async with session.get(
                f"{url}/feeds/_changes", params={"feed": "longpoll", "since": "now"}
            ) as resp:
                return resp.status, await resp.json()

        waiting = asyncio.create_task(longpoll())
        deadline = asyncio.get_running_loop().time() + 10
        while (
            "syncd_changes_feeds_waiting 2"
            not in await (await session.get(f"{url}/metrics")).text()
        ):
            assert asyncio.get_running_loop().time() < deadline, "the feeds are not waiting"
            await asyncio.sleep(0.02)  # polling another process, with a deadline

        # Writes in flight when the signal comes: those answered 201 must survive.
        acked: dict[str, str] = {}
        first_ack = asyncio.Event()

        async def put(i: int) -> None:
            try:
                async with session.put(f"{url}/queue/q{i:03d}", json={"i": i}) as resp:
                    if resp.status == 201:
                        acked[f"q{i:03d}"] = (await resp.json())["rev"]
                        first_ack.set()
                    else:
                        raise AssertionError(f"{resp.status} {await resp.text()}")
            except aiohttp.ClientConnectionError:
                pass  # refused or cut: not acknowledged, nothing promised

        writes = [asyncio.create_task(put(i)) for i in range(60)]
        await first_ack.wait()
        syncd.send_signal(sig)
        acked_before_signal = len(acked)

        tail = [orjson.loads(line) for line in (await continuous.content.read()).splitlines()]
        assert tail[-1] == {"last_seq": 3, "pending": 0}, tail
        assert all("last_seq" not in row for row in tail[:-1])
        status, body = await asyncio.wait_for(waiting, EXIT_BOUND)
        assert (status, body) == (200, {"results": [], "last_seq": 3, "pending": 0})
        await asyncio.gather(*writes)
        assert await syncd.wait_exit(EXIT_BOUND) == 0
        assert acked, "no write was acknowledged"

    assert logged_errors(syncd) == []
    code, out = await arun_cli("check", "--data-dir", str(syncd.data_dir))
    assert (code, out.strip()) == (0, "ok")
    await syncd.astart()
    async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as session:
        assert await missing_revs(session, f"{url}/queue", acked) == {}
        info = await get_json(session, f"{url}/queue")
        assert info["doc_count"] >= len(acked)
    print(
        f"\n{len(acked)} of 60 writes acknowledged, {len(acked) - acked_before_signal} of them "
        f"after {sig.name}; all present after the restart"
    )


# --- online backup, restore, check ---------------------------------------------------------


async def test_backup_while_writing_holds_every_earlier_write_and_restore_serves_it(
    syncd: SyncdProcess, tmp_path: Path
) -> None:
    await syncd.astart()
    db_url = f"{syncd.url}/bk"
    dest = tmp_path / "backups" / "syncd-backup.sqlite3"
    acked: dict[str, str] = {}
    milestones: list[tuple[int, asyncio.Event]] = []
    stop = asyncio.Event()

    async def acked_count(count: int) -> None:
        """Until the writers have ``count`` acknowledged writes."""
        reached = asyncio.Event()
        milestones.append((count, reached))
        if len(acked) >= count:
            reached.set()
        await asyncio.wait_for(reached.wait(), 60)

    async def writer(session: aiohttp.ClientSession, index: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            await put_docs(session, db_url, [f"w{index}-{n:05d}"], acked)
            for count, reached in milestones:
                if len(acked) >= count:
                    reached.set()

    async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as session:
        async with session.get(f"{syncd.url}/_up") as resp:
            assert resp.status == 200
        async with session.put(db_url) as resp:
            assert resp.status == 201
        writers = [asyncio.create_task(writer(session, i)) for i in range(3)]
        try:
            await acked_count(200)
            before_backup = dict(acked)
            code, out = await arun_cli("backup", str(dest), "--data-dir", str(syncd.data_dir))
            assert code == 0, out
            assert out.startswith(f"backed up {syncd.data_dir / 'syncd.sqlite3'} to {dest}")
            during = len(acked) - len(before_backup)
            after_backup = set(acked)
            await acked_count(len(acked) + 30)  # writes after the backup: the restore drops them
        finally:
            stop.set()
            await asyncio.gather(*writers)
        later = {d: r for d, r in acked.items() if d not in after_backup}
    assert during > 0, "the writers stood still during the backup"
    assert syncd.stop() == 0

    code, out = run_cli("restore", str(dest), "--data-dir", str(syncd.data_dir))
    assert code == 0, out
    assert f"restored {dest} to {syncd.data_dir / 'syncd.sqlite3'}" in out
    assert "the previous database was kept as" in out

    await syncd.astart()
    async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as session:
        assert await missing_revs(session, db_url, before_backup) == {}
        absent = await missing_revs(session, db_url, later)
        assert absent == dict.fromkeys(later, 404), "the restore did not replace the file"
        info = await get_json(session, db_url)
        assert len(before_backup) <= info["doc_count"] <= len(after_backup)
    print(f"\nbackup: {len(before_backup)} writes before, {during} during, {len(later)} after")


def test_check_reports_a_winning_revision_without_body_and_exits_1(tmp_path: Path) -> None:
    """A real database (written through a server), then one revs row deleted with sqlite3."""
    data = tmp_path / "data"
    proc = SyncdProcess(data, tmp_path / "syncd.log", env={"SYNCD_LOG_LEVEL": "warning"})
    proc.start()
    try:
        asyncio.run(_write_some(proc.url))
    finally:
        assert proc.stop() == 0
    code, out = run_cli("check", "--data-dir", str(data))
    assert (code, out.strip()) == (0, "ok")

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    shutil.copy(data / "syncd.sqlite3", damaged / "syncd.sqlite3")
    conn = sqlite3.connect(damaged / "syncd.sqlite3")
    with conn:
        conn.execute(
            "DELETE FROM revs WHERE (db_id, doc_id, rev) = "
            "(SELECT db_id, doc_id, rev FROM docs WHERE doc_id = 'doc-2')"
        )
    conn.close()

    code, out = run_cli("check", "--data-dir", str(damaged))
    assert code == 1, out
    assert out.splitlines() == [
        "missing_body: checked/doc-2: the winning revision has no body",
        "1 problem(s) found",
    ]
    # restore refuses the damaged file and leaves the database as it was
    code, out = run_cli("restore", str(damaged / "syncd.sqlite3"), "--data-dir", str(data))
    assert code == 1
    assert "not a sound syncd database: missing_body" in out
    code, out = run_cli("check", "--data-dir", str(data))
    assert (code, out.strip()) == (0, "ok")


async def _write_some(url: str) -> None:
    async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as session:
        async with session.put(f"{url}/checked") as resp:
            assert resp.status == 201
        docs = [{"_id": f"doc-{i}", "i": i} for i in range(5)]
        async with session.post(f"{url}/checked/_bulk_docs", json={"docs": docs}) as resp:
            assert resp.status == 201
