"""The ``syncd`` command line: ``serve`` and ``migrate``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence

from aiohttp import web

from syncd import __version__
from syncd.config import ConfigError, Settings, load_settings
from syncd.logs import setup_logging

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
    return cmd_migrate(settings)
