"""``syncd export`` and ``syncd import``, run as real processes on a data directory."""

from __future__ import annotations

import asyncio
import os
import pty
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from syncd.config import Settings
from syncd.replication.documents import parse_doc
from syncd.services.documents import DocumentService
from syncd.services.packs import validate_pack
from syncd.store.sqlite import open_database

DB = "packs"


def pack(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "pack",
        "title": "Road trip",
        "language": "en",
        "prompts": [{"id": "p1", "text": "Where to?"}],
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:00:00Z",
    }
    doc.update(overrides)
    return doc


def export_file(*packs: dict[str, Any], **overrides: Any) -> bytes:
    data: dict[str, Any] = {
        "format": "syncd.packs",
        "version": 1,
        "exported_at": "2024-05-03T00:00:00Z",
        "packs": list(packs),
    }
    data.update(overrides)
    return orjson.dumps(data)


async def seed(data_dir: Path, db: str, docs: list[dict[str, Any]]) -> None:
    """Create ``db`` holding ``docs``, straight on the store (no server), then close it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    async with open_database(data_dir / "syncd.sqlite3", readers=1) as (writer, readers):
        documents = DocumentService(writer, readers, 8 << 20, [validate_pack])
        await documents.create_db(db)
        results = await documents.write_docs(
            db, [documents.prepare(parse_doc(d)) for d in docs], new_edits=True
        )
        assert all(r.error is None for r in results)


async def update_seq(data_dir: Path, db: str) -> int:
    async with open_database(data_dir / "syncd.sqlite3", readers=1) as (writer, readers):
        info = await DocumentService(writer, readers, 8 << 20).db_info(db)
        return info.row.update_seq


@pytest.fixture
async def data_dir(tmp_path: Path) -> Path:
    """A data directory with database ``packs``: three packs and a note; no server runs."""
    path = tmp_path / "data"
    await seed(
        path,
        DB,
        [
            {"_id": "pack:b", **pack(title="B")},
            {"_id": "pack:a", **pack(title="A")},
            {"_id": "pack:c", **pack(title="C", prompts=[])},
            {"_id": "note", "type": "note"},
        ],
    )
    await seed(path, "empty", [])
    return path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}


async def syncd(
    data_dir: Path, *args: str, stdin: bytes | None = None, stderr: int | None = None
) -> tuple[int, bytes, bytes]:
    """Run ``python -m syncd ARGS --data-dir DATA_DIR``: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd",
        *args,
        "--data-dir",
        str(data_dir),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE if stderr is None else stderr,
        env=_env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 120)
    assert proc.returncode is not None
    return proc.returncode, out, err or b""


async def exported_packs(data_dir: Path, db: str) -> list[dict[str, Any]]:
    code, out, err = await syncd(data_dir, "export", "--db", db)
    assert code == 0, err
    packs: list[dict[str, Any]] = orjson.loads(out)["packs"]
    return packs


# export -----------------------------------------------------------------------------------


async def test_export_writes_the_file_to_stdout_and_nothing_to_stderr(data_dir: Path) -> None:
    code, out, err = await syncd(data_dir, "export", "--db", DB)
    assert code == 0
    assert err == b""
    data = orjson.loads(out)
    assert data["format"] == "syncd.packs"
    assert data["version"] == 1
    assert [p["id"] for p in data["packs"]] == ["pack:a", "pack:b", "pack:c"]
    assert data["packs"][0] == {"id": "pack:a", **pack(title="A")}


async def test_export_to_a_file(data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    code, out, err = await syncd(data_dir, "export", "--db", DB, "-o", str(target))
    assert (code, out, err) == (0, b"", b"")
    assert [p["id"] for p in orjson.loads(target.read_bytes())["packs"]] == [
        "pack:a",
        "pack:b",
        "pack:c",
    ]
    assert sorted(os.listdir(tmp_path)) == ["data", "out.json"]


async def test_export_of_one_pack(data_dir: Path) -> None:
    code, out, _ = await syncd(data_dir, "export", "--db", DB, "--pack", "pack:b")
    assert code == 0
    assert orjson.loads(out)["packs"] == [{"id": "pack:b", **pack(title="B")}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "nope"], b"Database does not exist."),
        (["--db", DB, "--pack", "note"], b"No pack with id 'note'."),
    ],
)
async def test_export_of_a_missing_database_or_pack_fails_without_output(
    data_dir: Path, tmp_path: Path, args: list[str], message: bytes
) -> None:
    target = tmp_path / "out.json"
    code, out, err = await syncd(data_dir, "export", *args, "-o", str(target))
    assert code == 1
    assert out == b""
    assert message in err
    assert sorted(os.listdir(tmp_path)) == ["data"]


async def test_export_without_a_database_file_fails_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    code, _, err = await syncd(missing, "export", "--db", DB)
    assert code == 1
    assert b"no database file" in err
    assert not missing.exists()


# import -----------------------------------------------------------------------------------


async def test_import_into_an_empty_database_prints_the_counts(
    data_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source.json"
    assert (await syncd(data_dir, "export", "--db", DB, "-o", str(source)))[0] == 0
    code, out, err = await syncd(data_dir, "import", "--db", "empty", str(source))
    assert code == 0
    assert err == b""
    assert out == b"created 3, updated 0, unchanged 0, rejected 0\n"
    assert await exported_packs(data_dir, "empty") == await exported_packs(data_dir, DB)


async def test_importing_the_same_file_again_changes_nothing(
    data_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source.json"
    assert (await syncd(data_dir, "export", "--db", DB, "-o", str(source)))[0] == 0
    seq = await update_seq(data_dir, DB)
    code, out, _ = await syncd(data_dir, "import", "--db", DB, str(source))
    assert code == 0
    assert out == b"created 0, updated 0, unchanged 3, rejected 0\n"
    assert await update_seq(data_dir, DB) == seq


async def test_import_reads_stdin_for_a_dash(data_dir: Path) -> None:
    file = export_file({"id": "pack:new", **pack()})
    code, out, _ = await syncd(data_dir, "import", "--db", "empty", "-", stdin=file)
    assert code == 0
    assert out == b"created 1, updated 0, unchanged 0, rejected 0\n"


async def test_import_with_rejected_packs_exits_3_and_names_them(
    data_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "mixed.json"
    source.write_bytes(
        export_file({"id": "pack:ok", **pack()}, {"id": "pack:bad", **pack(title="")})
    )
    code, out, err = await syncd(data_dir, "import", "--db", "empty", str(source))
    assert code == 3
    assert out == b"created 1, updated 0, unchanged 0, rejected 1\n"
    assert err == b"rejected pack:bad: title must be a string of 1 to 200 characters\n"
    assert [p["id"] for p in await exported_packs(data_dir, "empty")] == ["pack:ok"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", b"The import file is not valid JSON"),
        (export_file({"id": "pack:x", **pack()}, format="csv"), b"format must be 'syncd.packs'"),
        (export_file({"id": "pack:x", **pack()}, version=2), b"Version 2 of syncd.packs"),
        (export_file(packs="pack:x"), b"packs must be a list"),
    ],
)
async def test_a_bad_file_exits_non_zero_and_writes_nothing(
    data_dir: Path, tmp_path: Path, content: bytes, message: bytes
) -> None:
    source = tmp_path / "bad.json"
    source.write_bytes(content)
    seq = await update_seq(data_dir, DB)
    code, out, err = await syncd(data_dir, "import", "--db", DB, str(source))
    assert code == 1
    assert out == b""
    assert message in err
    assert b"Nothing was imported." in err
    assert await update_seq(data_dir, DB) == seq


async def test_import_of_a_missing_file_fails(data_dir: Path, tmp_path: Path) -> None:
    code, _, err = await syncd(data_dir, "import", "--db", DB, str(tmp_path / "nope.json"))
    assert code == 1
    assert b"cannot read" in err


async def test_import_into_a_missing_database_fails(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "source.json"
    source.write_bytes(export_file({"id": "pack:x", **pack()}))
    code, out, err = await syncd(data_dir, "import", "--db", "nope", str(source))
    assert code == 1
    assert out == b""
    assert b"Database does not exist." in err


# progress on a terminal -------------------------------------------------------------------


async def run_with_terminal_stderr(data_dir: Path, *args: str) -> tuple[int, bytes]:
    """Run syncd with stderr on a pseudo-terminal; (exit code, what the terminal showed)."""
    controller, terminal = pty.openpty()
    try:
        code, _, _ = await syncd(data_dir, *args, stderr=terminal)
    finally:
        os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the terminal has no writer left and is drained
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    return code, shown


async def test_export_shows_a_progress_bar_on_a_terminal(data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    code, shown = await run_with_terminal_stderr(data_dir, "export", "--db", DB, "-o", str(target))
    assert code == 0
    assert b"\rexporting [" in shown
    assert b"] 3/3 packs" in shown


async def test_import_shows_a_progress_bar_on_a_terminal(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "source.json"
    source.write_bytes(export_file({"id": "pack:1", **pack()}, {"id": "pack:2", **pack()}))
    code, shown = await run_with_terminal_stderr(data_dir, "import", "--db", "empty", str(source))
    assert code == 0
    assert b"\rimporting [" + b"#" * 30 + b"] 2/2 packs" in shown


# with a server running --------------------------------------------------------------------


async def test_import_while_the_server_runs_is_seen_by_the_server(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    assert (await client.put("/live")).status == 201
    source = tmp_path / "source.json"
    source.write_bytes(export_file({"id": "pack:cli", **pack(title="From the CLI")}))
    code, out, _ = await syncd(settings.data_dir, "import", "--db", "live", str(source))
    assert code == 0, out
    resp = await client.get("/live/pack:cli")
    assert resp.status == 200
    assert (await resp.json())["title"] == "From the CLI"
    code, out, _ = await syncd(settings.data_dir, "export", "--db", "live")
    assert code == 0
    assert [p["id"] for p in orjson.loads(out)["packs"]] == ["pack:cli"]
