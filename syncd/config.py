"""Settings: one frozen object, from ``SYNCD_*`` environment variables and CLI flags.

Every setting has a safe default, so ``syncd serve`` with nothing set runs on 127.0.0.1:5984
with its data in ``./syncd-data``. Values are validated once, at start; a bad one stops the
server with a message naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "text")
MIB = 1024 * 1024


class ConfigError(ValueError):
    """A setting has a value syncd cannot use."""


@dataclass(frozen=True)
class Secret:
    """A secret value whose repr never shows it, so it cannot leak into a log by accident."""

    value: str

    def __repr__(self) -> str:
        return "'**********'"

    __str__ = __repr__


@dataclass(frozen=True)
class Settings:
    """Everything syncd can be configured with. See the README's configuration table."""

    host: str = "127.0.0.1"
    port: int = 5984
    data_dir: Path = Path("syncd-data")
    log_level: str = "info"
    log_format: str = "json"
    max_request_bytes: int = 64 * MIB
    max_document_bytes: int = 8 * MIB
    reader_connections: int = 4
    sqlite_synchronous: str = "FULL"
    admin_user: str | None = None
    admin_password: Secret | None = None
    secret_key: Secret | None = None  # None: generated into the data dir on first start
    previous_secret_keys: tuple[Secret, ...] = ()
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    session_timeout: int = 600
    cookie_secure: bool = False
    auth_rate_limit: str = "30/minute"
    auth_user_rate_limit: str = "10/minute"
    trust_proxy: bool = False
    share_rate_limit: str = "120/minute"
    report_rate_limit: str = "20/hour"
    analytics_rate_limit: str = "600/minute"
    public_url: str | None = None  # base URL in share links; default http://HOST:PORT
    analytics_events: tuple[str, ...] = ()  # allowed event names; empty: the built-in list
    analytics_props: tuple[str, ...] = ()  # allowed property keys; empty: the built-in list
    analytics_retention_days: int = 90
    max_database_bytes: int | None = None  # cap on the SQLite file; writes past it get 507
    metrics_token: Secret | None = None  # a bearer token that may read /metrics (besides admins)

    @property
    def database_path(self) -> Path:
        """The one SQLite file."""
        return self.data_dir / "syncd.sqlite3"


# setting name -> (environment variable, parser)
def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def _port(name: str, raw: str) -> int:
    value = _positive_int(name, raw)
    if value > 65535:
        raise ConfigError(f"{name} must be a port number (1-65535), got {raw!r}")
    return value


def _choice(options: tuple[str, ...]) -> Any:
    def parse(name: str, raw: str) -> str:
        value = raw.lower()
        if value not in options:
            raise ConfigError(f"{name} must be one of {', '.join(options)}; got {raw!r}")
        return value

    return parse


def _text(name: str, raw: str) -> str:
    if not raw.strip():
        raise ConfigError(f"{name} must not be empty")
    return raw


def _path(name: str, raw: str) -> Path:
    return Path(_text(name, raw))


def _secret(name: str, raw: str) -> Secret:
    if len(raw) < 16:
        raise ConfigError(f"{name} must be at least 16 characters")
    return Secret(raw)


def _password(name: str, raw: str) -> Secret:
    if len(raw) < 8:
        raise ConfigError(f"{name} must be at least 8 characters")
    return Secret(raw)


def _secrets(name: str, raw: str) -> tuple[Secret, ...]:
    return tuple(_secret(name, part) for part in raw.split(",") if part.strip())


def _bool(name: str, raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _url(name: str, raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must start with http:// or https://, got {raw!r}")
    return raw.rstrip("/")


def _names(name: str, raw: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not all(re.fullmatch(r"[a-z][a-z0-9_]{0,63}", n) for n in names):
        raise ConfigError(f"{name} must be a comma-separated list of snake_case names")
    return names


def _rate(name: str, raw: str) -> str:
    from limits import parse

    try:
        parse(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a rate such as '10/minute', got {raw!r}") from None
    return raw


_PARSERS: dict[str, Any] = {
    "host": _text,
    "port": _port,
    "data_dir": _path,
    "log_level": _choice(LOG_LEVELS),
    "log_format": _choice(LOG_FORMATS),
    "max_request_bytes": _positive_int,
    "max_document_bytes": _positive_int,
    "reader_connections": _positive_int,
    "sqlite_synchronous": _choice(("full", "normal")),
    "admin_user": _text,
    "admin_password": _password,
    "secret_key": _secret,
    "previous_secret_keys": _secrets,
    "access_token_ttl": _positive_int,
    "refresh_token_ttl": _positive_int,
    "session_timeout": _positive_int,
    "cookie_secure": _bool,
    "auth_rate_limit": _rate,
    "auth_user_rate_limit": _rate,
    "trust_proxy": _bool,
    "share_rate_limit": _rate,
    "report_rate_limit": _rate,
    "analytics_rate_limit": _rate,
    "public_url": _url,
    "analytics_events": _names,
    "analytics_props": _names,
    "analytics_retention_days": _positive_int,
    "max_database_bytes": _positive_int,
    "metrics_token": _secret,
}


def env_name(field: str) -> str:
    """The environment variable for a setting: ``SYNCD_<FIELD>``."""
    return f"SYNCD_{field.upper()}"


def load_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, str | None] | None = None
) -> Settings:
    """Build Settings from the environment, then CLI overrides (given as raw strings)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for field in dataclasses.fields(Settings):
        parse = _PARSERS[field.name]
        raw = env.get(env_name(field.name))
        if raw is not None:
            values[field.name] = parse(env_name(field.name), raw)
        flag = (overrides or {}).get(field.name)
        if flag is not None:
            values[field.name] = parse("--" + field.name.replace("_", "-"), flag)
    if "sqlite_synchronous" in values:
        values["sqlite_synchronous"] = values["sqlite_synchronous"].upper()
    settings = Settings(**values)
    if (settings.admin_user is None) != (settings.admin_password is None):
        raise ConfigError("SYNCD_ADMIN_USER and SYNCD_ADMIN_PASSWORD must be set together")
    if settings.max_document_bytes > settings.max_request_bytes:
        raise ConfigError("SYNCD_MAX_DOCUMENT_BYTES must not exceed SYNCD_MAX_REQUEST_BYTES")
    return settings
