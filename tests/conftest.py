"""Shared fixtures: a real syncd on a real socket with a real SQLite file in a temp dir."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from syncd.app import create_app
from syncd.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Defaults, with the data directory in the test's temp dir."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
async def app(settings: Settings) -> web.Application:
    return create_app(settings)


@pytest.fixture
async def server(aiohttp_server: Any, app: web.Application) -> TestServer:
    """syncd listening on 127.0.0.1 on a free port."""
    return await aiohttp_server(app)


@pytest.fixture
async def client(aiohttp_client: Any, server: TestServer) -> TestClient:
    """An HTTP client for ``server``."""
    return await aiohttp_client(server)


@pytest.fixture
async def db(client: TestClient) -> AsyncIterator[str]:
    """A fresh, empty database; its name."""
    name = "db-" + uuid.uuid4().hex[:12]
    resp = await client.put(f"/{name}")
    assert resp.status == 201, await resp.text()
    yield name
