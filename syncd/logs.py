"""Logging: one JSON (or text) line per event, with the request id when there is one.

Only fields that are put on a record explicitly (``extra=``) are written, so a document body
or a credential can only reach the log if some code hands it over on purpose: none does.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

_FIELDS = (
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "bytes",
    "error",
    "path",
    "account",
)


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "msg", ...known extras}`` on one line."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def _time(self, created: float) -> str:
        # One line per request: format the date and time once per second, not per line.
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._stamp}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """A human-readable line with the same extras."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{n}={record.__dict__[n]}" for n in _FIELDS if n in record.__dict__)
        line = (
            f"{record.levelname.lower():7} {record.name}: {record.getMessage()} {extras}".rstrip()
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str, fmt: str) -> None:
    """Send syncd's logs to stderr in ``fmt`` at ``level``; silence aiohttp's own access log."""
    # No record carries the caller's file and line, thread or process (the formatters do not
    # print them): the logging HOWTO's "Optimization" switches skip collecting them, which
    # halves the cost of the access log's line per request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
