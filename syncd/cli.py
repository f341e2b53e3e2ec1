"""The ``syncd`` command line: ``serve``, ``migrate``, ``admin``, ``export`` and ``import``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from aiohttp import web

from syncd import __version__
from syncd.config import ConfigError, Settings, load_settings
from syncd.logs import setup_logging

if TYPE_CHECKING:
    from syncd.services.transfer import ImportReport, TransferService

log = logging.getLogger("syncd")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncd", description="CouchDB-compatible sync server")
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--data-dir", help="directory of the SQLite file (SYNCD_DATA_DIR)")
        sub.add_argument("--log-level", help="debug, info, warning, error (SYNCD_LOG_LEVEL)")

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (SYNCD_HOST)")
    serve.add_argument("--port", help="port to listen on (SYNCD_PORT)")
    common(serve)
    migrate = commands.add_parser("migrate", help="bring the database file to the current schema")
    common(migrate)
    admin = commands.add_parser("admin", help="account administration")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_commands.add_parser(
        "create", help="create a server admin account (password from SYNCD_NEW_PASSWORD or stdin)"
    )
    create.add_argument("--username", required=True)
    create.add_argument(
        "--role", action="append", default=None, help="role to grant (default: _admin)"
    )
    common(create)
    export = commands.add_parser(
        "export", help="write the packs of a database as JSON (docs/export-format.md)"
    )
    export.add_argument("--db", required=True, help="database name")
    export.add_argument("--pack", help="export only this pack (its document id)")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    common(export)
    import_ = commands.add_parser(
        "import",
        help="import an export file into a database (exit 1: bad file or database, "
        "nothing written; 3: some packs rejected)",
    )
    import_.add_argument("--db", required=True, help="database name")
    import_.add_argument("file", help="the export file ('-' for stdin)")
    common(import_)
    backup = commands.add_parser("backup", help="copy the database online to DEST")
    backup.add_argument("dest")
    common(backup)
    restore = commands.add_parser(
        "restore", help="replace the database with a backup (stop the server first)"
    )
    restore.add_argument("source")
    common(restore)
    check = commands.add_parser("check", help="integrity and consistency checks")
    common(check)
    store_cmd = commands.add_parser("store", help="the curated pack store")
    store_commands = store_cmd.add_subparsers(dest="store_command", required=True)
    store_import = store_commands.add_parser(
        "import", help="create or update packs from a catalog file"
    )
    store_import.add_argument("file")
    common(store_import)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        name: getattr(args, name, None) for name in ("host", "port", "data_dir", "log_level")
    }
    return load_settings(overrides=overrides)


def cmd_serve(settings: Settings) -> int:
    """Run the HTTP server until interrupted."""
    from syncd.app import create_app

    log.info(
        "starting",
        extra={"path": str(settings.database_path)},
    )
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=lambda text: log.info(text.strip()),
        shutdown_timeout=10,
        handler_cancellation=True,  # a client that hangs up frees its waiting feed at once
    )
    return 0


def cmd_migrate(settings: Settings) -> int:
    """Apply pending migrations and say which."""
    from syncd.store.migrations import current_version, migrate

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(settings.database_path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=10000")  # a running server may be writing
    try:
        applied = migrate(conn)
        version = current_version(conn)
    finally:
        conn.close()
    print(
        f"schema version {version}"
        + (f"; applied {', '.join(applied)}" if applied else "; up to date")
    )
    return 0


def _read_new_password() -> str:
    password = os.environ.get("SYNCD_NEW_PASSWORD")
    if password is not None:
        return password
    if sys.stdin.isatty():
        return getpass.getpass("Password for the new account: ")
    return sys.stdin.readline().rstrip("\n")


def cmd_admin_create(settings: Settings, username: str, roles: list[str]) -> int:
    """Create a named account with admin (or the given) roles."""
    from syncd.app import signing_keys
    from syncd.errors import CouchError
    from syncd.services.accounts import AccountService, TokenSettings
    from syncd.store.sqlite import open_database

    password = _read_new_password()

    async def create() -> str:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        async with open_database(settings.database_path, readers=1) as (writer, readers):
            accounts = AccountService(
                writer=writer, readers=readers, tokens=TokenSettings(signing_keys(settings))
            )
            account = await accounts.create_named(username, password, roles)
            return account.id

    try:
        account_id = asyncio.run(create())
    except CouchError as exc:
        print(f"syncd: {exc.reason}", file=sys.stderr)
        return 1
    print(f"created account {username} ({account_id}) with roles {', '.join(roles)}")
    return 0


class ProgressBar:
    """A one-line ``\r`` bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, total: int, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.label, self.total, self.done = label, total, 0
        self._drawn_at = 0.0

    def advance(self, count: int) -> None:
        """Count ``count`` more items done; redraw at most ten times a second."""
        self.done += count
        now = time.monotonic()
        if self.enabled and (now - self._drawn_at >= 0.1 or self.done >= self.total):
            self._drawn_at = now
            filled = 30 * min(self.done, self.total) // max(self.total, 1)
            bar = "#" * filled + "-" * (30 - filled)
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} packs")
            self.stream.flush()

    def finish(self) -> None:
        """End the bar's line."""
        if self.enabled and self._drawn_at:
            self.stream.write("\n")
            self.stream.flush()


@contextlib.asynccontextmanager
async def _transfer_service(settings: Settings) -> AsyncIterator[TransferService]:
    """Open the store and yield a ``TransferService`` over it (server running or not)."""
    from syncd.services.documents import DocumentService
    from syncd.services.packs import validate_pack
    from syncd.services.transfer import TransferService
    from syncd.store.sqlite import open_database

    async with open_database(settings.database_path, readers=1) as (writer, readers):
        documents = DocumentService(
            writer=writer,
            readers=readers,
            max_doc_bytes=settings.max_document_bytes,
            validators=[validate_pack],
        )
        yield TransferService(documents)


def cmd_export(settings: Settings, db: str, pack: str | None, output: str | None) -> int:
    """Write the packs of ``db`` to ``output`` (stdout when None)."""
    from syncd.errors import CouchError

    if not settings.database_path.exists():
        print(f"syncd: no database file at {settings.database_path}", file=sys.stderr)
        return 1
    partial = f"{output}.partial" if output else None

    async def export() -> None:
        async with _transfer_service(settings) as transfer:
            packs = await transfer.start_export(db, pack)  # 404s before any output
            bar = ProgressBar("exporting", 1 if pack else await transfer.count_packs(db))
            with contextlib.ExitStack() as stack:
                out = stack.enter_context(open(partial, "wb")) if partial else sys.stdout.buffer
                async for chunk in packs.chunks():
                    out.write(chunk)
                    bar.advance(packs.exported - bar.done)
                out.flush()
            bar.finish()

    try:
        asyncio.run(export())
        if partial and output:
            os.replace(partial, output)  # the file appears whole or not at all
    except CouchError as exc:
        print(f"syncd: {exc.reason}", file=sys.stderr)
        return 1
    finally:
        if partial and os.path.exists(partial):
            os.remove(partial)
    return 0


def cmd_import(settings: Settings, db: str, path: str) -> int:
    """Import an export file into ``db``; print the counts."""
    from syncd.errors import CouchError
    from syncd.services.transfer import parse_file

    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        packs = parse_file(raw)
    except OSError as exc:
        print(f"syncd: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 1
    except CouchError as exc:
        print(f"syncd: {exc.reason} Nothing was imported.", file=sys.stderr)
        return 1
    if not settings.database_path.exists():
        print(f"syncd: no database file at {settings.database_path}", file=sys.stderr)
        return 1

    async def run() -> ImportReport:
        async with _transfer_service(settings) as transfer:
            bar = ProgressBar("importing", len(packs))
            report = await transfer.import_packs(db, packs, bar.advance)
            bar.finish()
            return report

    try:
        report = asyncio.run(run())
    except CouchError as exc:
        print(f"syncd: {exc.reason}", file=sys.stderr)
        return 1
    for outcome in report.results:
        if outcome.status == "rejected":
            print(f"rejected {outcome.id}: {outcome.reason}", file=sys.stderr)
    counts = report.counts()
    print(", ".join(f"{status} {count}" for status, count in counts.items()))
    return 3 if counts["rejected"] else 0


def cmd_backup(settings: Settings, dest: str) -> int:
    """Online backup of the database file."""
    from syncd.store.maintenance import backup

    if not settings.database_path.exists():
        print(f"syncd: no database at {settings.database_path}", file=sys.stderr)
        return 1
    try:
        size = backup(settings.database_path, Path(dest))
    except (OSError, sqlite3.Error) as exc:
        print(f"syncd: backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {settings.database_path} to {dest} ({size} bytes)")
    return 0


def cmd_restore(settings: Settings, source: str) -> int:
    """Put a backup in place of the database file (the server must be stopped)."""
    from syncd.store.maintenance import restore

    try:
        kept = restore(Path(source), settings.database_path)
    except (OSError, sqlite3.Error, ValueError) as exc:
        print(f"syncd: restore failed: {exc}", file=sys.stderr)
        return 1
    print(f"restored {source} to {settings.database_path}")
    if kept is not None:
        print(f"the previous database was kept as {kept}")
    return cmd_migrate(settings)


def cmd_check(settings: Settings) -> int:
    """Report integrity and consistency problems; exit 1 if there are any."""
    from syncd.store.maintenance import check

    if not settings.database_path.exists():
        print(f"syncd: no database at {settings.database_path}", file=sys.stderr)
        return 1
    problems = [str(p) for p in check(settings.database_path)]
    for problem in problems:
        print(problem)
    print("ok" if not problems else f"{len(problems)} problem(s) found")
    return 1 if problems else 0


def cmd_store_import(settings: Settings, path: str) -> int:
    """Create or update curated packs (by slug) from a catalog file."""
    import orjson

    from syncd.errors import CouchError
    from syncd.services.catalog import CatalogService
    from syncd.services.documents import DocumentService
    from syncd.store.sqlite import open_database

    try:
        data = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"syncd: cannot read {path}: {exc}", file=sys.stderr)
        return 1

    async def run() -> dict[str, int]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        async with open_database(settings.database_path, readers=1) as (writer, readers):
            documents = DocumentService(writer, readers, settings.max_document_bytes)
            return await CatalogService(writer, readers, documents).import_catalog(data)

    try:
        counts = asyncio.run(run())
    except CouchError as exc:
        print(f"syncd: {exc.reason}", file=sys.stderr)
        return 1
    print(f"created {counts['created']}, updated {counts['updated']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``syncd`` console script."""
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"syncd: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    if args.command == "serve":
        return cmd_serve(settings)
    if args.command == "admin":
        return cmd_admin_create(settings, args.username, args.role or ["_admin"])
    if args.command == "backup":
        return cmd_backup(settings, args.dest)
    if args.command == "restore":
        return cmd_restore(settings, args.source)
    if args.command == "check":
        return cmd_check(settings)
    if args.command == "store":
        return cmd_store_import(settings, args.file)
    if args.command == "export":
        return cmd_export(settings, args.db, args.pack, args.output)
    if args.command == "import":
        return cmd_import(settings, args.db, args.file)
    return cmd_migrate(settings)
