"""Crash safety: syncd killed with SIGKILL under write load loses no acknowledged write.

A real ``python -m syncd serve`` process (tests/crashlib.py) takes ``_bulk_docs`` batches and
single ``PUT``s from six asyncio clients and is SIGKILLed after a seeded random number of
acknowledged writes, 20 times, restarting on the same data directory each time. After every
kill ``syncd check`` (the CLI: integrity_check and syncd's consistency rules) runs on the
crashed file and ``update_seq`` must not have gone backwards; at the end every acknowledged
revision is read back with ``GET /db/doc?rev=`` and must carry the body that was written.
``stress/crash.py`` runs the same scenario with 200 kills.

A PouchDB (Node, memory adapter) pulling from syncd resumes from its checkpoint after a kill:
the second replication reads only the documents written since.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from crashlib import SyncdProcess, crash_scenario, pouchdb_resumes_after_kill

KILLS = 20
SEED = 20260101


async def test_sigkill_under_load_loses_no_acknowledged_write(syncd: SyncdProcess) -> None:
    async with asyncio.timeout(150):
        figures = await crash_scenario(syncd, kills=KILLS, seed=SEED)
    print("\n" + figures.summary())
    assert figures.kills == KILLS
    assert figures.acked_revisions >= 20 * KILLS
    assert figures.in_doubt_writes > 0, "no kill ever caught a write in flight"
    assert figures.lost == []
    assert figures.wrong_winner == []
    assert figures.seq_regressions == []
    assert figures.check_failures == []
    assert figures.final_update_seq >= figures.acked_revisions
    assert figures.update_seqs == sorted(figures.update_seqs)


async def test_pouchdb_pull_resumes_from_its_checkpoint_after_a_kill(
    node_modules: Path, syncd: SyncdProcess
) -> None:
    async with asyncio.timeout(120):
        figures = await crash_scenario(
            syncd, kills=2, seed=SEED + 1, writes_between_kills=(100, 200)
        )
        result = await pouchdb_resumes_after_kill(syncd, "crash", figures, new_docs=25)
    print("\n" + figures.summary())
    assert result["pull1_docs_read"] > 100
    assert (result["pull2_docs_read"], result["pull2_docs_written"]) == (25, 25), result
    assert result["pull2_last_seq"] == result["update_seq"]
    assert result["local_docs"] == result["pull1_docs_read"] + 25
    assert figures.ok, figures.summary()
