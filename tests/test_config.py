"""Settings from SYNCD_* variables and CLI flags, and the ``syncd`` command line itself."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.config import ConfigError, Settings, load_settings
from syncd.store.migrations import current_version, latest_version

# --- load_settings ---------------------------------------------------------------------------


def test_defaults_with_nothing_set() -> None:
    settings = load_settings(env={})
    assert (settings.host, settings.port) == ("127.0.0.1", 5984)
    assert settings.data_dir == Path("syncd-data")
    assert settings.log_level == "info"
    assert settings.database_path == Path("syncd-data") / "syncd.sqlite3"


def test_environment_variables_set_host_port_data_dir_and_log_level() -> None:
    settings = load_settings(
        env={
            "SYNCD_HOST": "0.0.0.0",
            "SYNCD_PORT": "8080",
            "SYNCD_DATA_DIR": "/srv/syncd",
            "SYNCD_LOG_LEVEL": "DEBUG",
        }
    )
    assert settings.host == "0.0.0.0"
    assert settings.port == 8080
    assert settings.data_dir == Path("/srv/syncd")
    assert settings.database_path == Path("/srv/syncd/syncd.sqlite3")
    assert settings.log_level == "debug"


def test_unrelated_environment_variables_are_ignored() -> None:
    settings = load_settings(env={"PORT": "1", "HOST": "example.org", "SYNCD_NOT_A_SETTING": "x"})
    assert (settings.host, settings.port) == (Settings.host, Settings.port)


def test_overrides_win_over_the_environment() -> None:
    settings = load_settings(
        env={"SYNCD_PORT": "8080", "SYNCD_HOST": "0.0.0.0"},
        overrides={"port": "9090", "data_dir": "/data", "host": None},
    )
    assert settings.port == 9090
    assert settings.data_dir == Path("/data")
    assert settings.host == "0.0.0.0"  # an override left unset keeps the environment's value


def test_size_limits_from_the_environment() -> None:
    settings = load_settings(
        env={"SYNCD_MAX_REQUEST_BYTES": "2048", "SYNCD_MAX_DOCUMENT_BYTES": "1024"}
    )
    assert (settings.max_request_bytes, settings.max_document_bytes) == (2048, 1024)


def test_document_limit_above_request_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match="SYNCD_MAX_DOCUMENT_BYTES"):
        load_settings(env={"SYNCD_MAX_REQUEST_BYTES": "1024", "SYNCD_MAX_DOCUMENT_BYTES": "2048"})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("SYNCD_PORT", "abc"),
        ("SYNCD_PORT", "0"),
        ("SYNCD_PORT", "-80"),
        ("SYNCD_PORT", "70000"),
        ("SYNCD_PORT", "80.5"),
        ("SYNCD_HOST", ""),
        ("SYNCD_HOST", "   "),
        ("SYNCD_DATA_DIR", ""),
        ("SYNCD_LOG_LEVEL", "verbose"),
        ("SYNCD_LOG_LEVEL", ""),
        ("SYNCD_LOG_FORMAT", "xml"),
        ("SYNCD_MAX_REQUEST_BYTES", "lots"),
        ("SYNCD_READER_CONNECTIONS", "0"),
        ("SYNCD_SQLITE_SYNCHRONOUS", "off"),
    ],
)
def test_bad_value_raises_config_error_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(env={name: raw})
    assert name in str(error.value)
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize(
    ("field", "raw", "flag"),
    [("port", "notanumber", "--port"), ("log_level", "loud", "--log-level")],
)
def test_bad_override_raises_config_error_naming_the_flag(field: str, raw: str, flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        load_settings(env={}, overrides={field: raw})


def test_settings_are_frozen() -> None:
    settings = load_settings(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_synchronous_is_normalized_for_the_pragma() -> None:
    assert load_settings(env={"SYNCD_SQLITE_SYNCHRONOUS": "normal"}).sqlite_synchronous == "NORMAL"


# --- the command line ------------------------------------------------------------------------


def run_syncd(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m syncd ARGS`` with no SYNCD_* variable from the outside world."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_with_a_non_numeric_port_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    done = run_syncd("serve", "--port", "notanumber", cwd=tmp_path)
    assert done.returncode == 2
    assert "--port" in done.stderr
    assert "notanumber" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "syncd-data").exists()  # it stopped before touching anything


def test_bad_environment_variable_exits_2_naming_it(tmp_path: Path) -> None:
    done = run_syncd("migrate", cwd=tmp_path, env={"SYNCD_PORT": "99999"})
    assert done.returncode == 2
    assert "SYNCD_PORT" in done.stderr
    assert "Traceback" not in done.stderr


def test_migrate_creates_and_migrates_the_database_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    done = run_syncd("migrate", "--data-dir", str(data_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"schema version {latest_version()}" in done.stdout
    assert "schema.sql" in done.stdout
    path = data_dir / "syncd.sqlite3"
    conn = sqlite3.connect(path)
    try:
        assert current_version(conn) == latest_version()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"dbs", "docs", "revs", "local_docs"} <= tables
    finally:
        conn.close()

    again = run_syncd("migrate", "--data-dir", str(data_dir), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout


def test_migrate_uses_syncd_data_dir_from_the_environment(tmp_path: Path) -> None:
    data_dir = tmp_path / "from-env"
    done = run_syncd("migrate", cwd=tmp_path, env={"SYNCD_DATA_DIR": str(data_dir)})
    assert done.returncode == 0, done.stderr
    assert (data_dir / "syncd.sqlite3").is_file()
    assert not (tmp_path / "syncd-data").exists()


def test_unknown_command_exits_2(tmp_path: Path) -> None:
    done = run_syncd("frobnicate", cwd=tmp_path)
    assert done.returncode == 2
    assert "invalid choice" in done.stderr
