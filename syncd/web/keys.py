"""Typed keys for what hangs on the aiohttp Application."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from syncd.config import Settings
from syncd.services.accounts import AccountService
from syncd.services.authz import Authorizer
from syncd.services.changes import ChangesService
from syncd.services.documents import DocumentService


@dataclass
class Services:
    """Everything handlers may call, built by ``syncd.app.create_app``."""

    documents: DocumentService
    changes: ChangesService
    accounts: AccountService
    authz: Authorizer
    server_uuid: str


SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    """The services of the app serving ``request``."""
    return request.app[SERVICES]
