"""Shared fixtures: a real syncd on a real socket with a real SQLite file in a temp dir."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from crashlib import SyncdProcess

from syncd.app import create_app
from syncd.config import Secret, Settings

ADMIN = ("admin", "admin-password")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Defaults, with the data directory in the test's temp dir and a configured admin.

    Rate limits are raised so that tests signing in often are not throttled (the limits have
    tests of their own).
    """
    return Settings(
        data_dir=tmp_path / "data",
        admin_user=ADMIN[0],
        admin_password=Secret(ADMIN[1]),
        auth_rate_limit="10000/minute",
        auth_user_rate_limit="10000/minute",
    )


@pytest.fixture
async def app(settings: Settings) -> web.Application:
    return create_app(settings)


@pytest.fixture
async def server(aiohttp_server: Any, app: web.Application) -> TestServer:
    """syncd listening on 127.0.0.1 on a free port."""
    return await aiohttp_server(app)  # TestServer cancels handlers of clients that hang up


@pytest.fixture
async def client(aiohttp_client: Any, server: TestServer) -> TestClient:
    """An HTTP client for ``server`` signed in as the server admin (HTTP Basic)."""
    return await aiohttp_client(server, headers={"Authorization": basic_auth(*ADMIN)})


def basic_auth(name: str, password: str) -> str:
    """An ``Authorization`` header value for HTTP Basic."""
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


@pytest.fixture
async def anon_client(aiohttp_client: Any, server: TestServer) -> TestClient:
    """An HTTP client for ``server`` with no credentials."""
    return await aiohttp_client(server)


@pytest.fixture
async def db(client: TestClient) -> AsyncIterator[str]:
    """A fresh, empty database; its name."""
    name = "db-" + uuid.uuid4().hex[:12]
    resp = await client.put(f"/{name}")
    assert resp.status == 201, await resp.text()
    yield name


# --- anonymous accounts ------------------------------------------------------------------


@dataclass
class Account:
    """An anonymous account (``POST /v1/auth/anonymous``): its id, its database, its token."""

    id: str
    db: str
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer " + self.access_token}


async def sign_up(http: TestClient) -> Account:
    """A new anonymous account, signed up through ``http``."""
    resp = await http.post("/v1/auth/anonymous")
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return Account(body["account"]["id"], body["account"]["db"], body["access_token"])


@pytest.fixture
async def account(anon_client: TestClient) -> Account:
    """A new anonymous account."""
    return await sign_up(anon_client)


# --- syncd as a child process (tests/crashlib.py) ----------------------------------------


@pytest.fixture
def syncd(tmp_path: Path) -> Iterator[SyncdProcess]:
    """A syncd process (not started yet) with a quiet log: warnings and errors only; stopped at
    the end of the test. Tests that need other settings define a ``syncd`` of their own."""
    proc = SyncdProcess(
        tmp_path / "data", tmp_path / "syncd.log", env={"SYNCD_LOG_LEVEL": "warning"}
    )
    try:
        yield proc
    finally:
        proc.stop()


# --- Node and the npm packages of tests/interop ------------------------------------------

INTEROP_DIR = Path(__file__).parent / "interop"


def _missing_node(reason: str) -> None:
    # In CI a missing Node or npm package is a failure, never a skip.
    if os.environ.get("CI"):
        pytest.fail(f"interop tests need Node.js and npm: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """``tests/interop/node_modules``, installed with ``npm ci`` when missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _missing_node("node or npm is not on PATH")
    modules = INTEROP_DIR / "node_modules"
    lock = INTEROP_DIR / "package-lock.json"
    stamp = modules / ".syncd-lock-copy.json"
    if not stamp.exists() or stamp.read_bytes() != lock.read_bytes():
        done = subprocess.run(
            [str(npm), "ci", "--no-audit", "--no-fund"],
            cwd=INTEROP_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            _missing_node(f"npm ci failed: {done.stderr[-2000:]}")
        stamp.write_bytes(lock.read_bytes())
    return modules


async def run_node(
    script: str, *args: str, stdin: bytes | None = None, timeout: float = 120
) -> Any:
    """Run ``tests/interop/<script>`` with Node; return its stdout parsed as JSON.

    Async so that a syncd served by the same event loop keeps answering while Node runs.
    """
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(INTEROP_DIR / script),
        *args,
        cwd=INTEROP_DIR,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise AssertionError(f"node {script} failed ({proc.returncode}):\n{err.decode()[-4000:]}")
    return json.loads(out)
