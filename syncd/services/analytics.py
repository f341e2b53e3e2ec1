"""Anonymous, privacy-safe usage analytics.

The app sends batches of events without an account. Each event is checked on its own against
an allowlist of event names and property keys (scalar values only); accepted ones are stored
with no IP address, user agent or account, and rolled up into daily counts per event name,
platform and app version as they arrive. Raw events are deleted after the retention window by
the periodic housekeeping task (``syncd.services.housekeeping``); the daily counts stay.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from syncd.errors import CouchError, bad_request
from syncd.store import analytics as store
from syncd.store.sqlite import ReaderPool, Writer, WriteTx

MAX_EVENTS = 100
MAX_BATCH_BYTES = 64 * 1024
PLATFORMS = ("ios", "android", "web", "desktop", "other")
_INSTALL_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_APP_VERSION = re.compile(r"^[A-Za-z0-9.+_-]{1,32}$")
MAX_PROPS = 20
MAX_PROP_TEXT = 200
PAST_DAYS = 30
FUTURE_SECONDS = 24 * 3600
DEFAULT_EVENTS = (
    "app_open",
    "session_end",
    "pack_opened",
    "pack_created",
    "pack_installed",
    "pack_shared",
    "prompt_shown",
    "prompt_skipped",
    "purchase_started",
    "purchase_completed",
    "sync_completed",
)
DEFAULT_PROPS = (
    "pack_id",
    "language",
    "source",
    "screen",
    "result",
    "count",
    "duration_ms",
    "tier",
)


class EventError(ValueError):
    """Why one event was refused."""


@dataclass(frozen=True)
class AnalyticsRules:
    """What may be sent: event names, property keys, and how long raw events are kept."""

    event_names: frozenset[str]
    prop_keys: frozenset[str]
    retention_days: int = 90


def _timestamp(value: object, now: float) -> datetime:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise EventError("ts must be an ISO-8601 time or epoch milliseconds")
    try:
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        else:
            moment = datetime.fromtimestamp(value / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        raise EventError("ts must be an ISO-8601 time or epoch milliseconds") from None
    seconds = moment.timestamp()
    if seconds < now - PAST_DAYS * 86400 or seconds > now + FUTURE_SECONDS:
        raise EventError(f"ts must be within the last {PAST_DAYS} days")
    return moment.astimezone(UTC)


def check_event(raw: object, rules: AnalyticsRules, now: float) -> store.EventRow:
    """One event, validated and stripped to what is stored (EventError says why not)."""
    if not isinstance(raw, dict):
        raise EventError("an event must be an object")
    allowed = {"name", "ts", "install_id", "app_version", "platform", "props"}
    extra = set(raw) - allowed
    if extra:
        raise EventError(f"unknown fields: {', '.join(sorted(extra))}")
    name = raw.get("name")
    if not isinstance(name, str) or name not in rules.event_names:  # a list is unhashable
        raise EventError("name is not an allowed event name")
    moment = _timestamp(raw.get("ts"), now)
    install_id = raw.get("install_id")
    if not isinstance(install_id, str) or not _INSTALL_ID.match(install_id):
        raise EventError("install_id must be 8-64 letters, digits, '-' or '_'")
    app_version = raw.get("app_version")
    if not isinstance(app_version, str) or not _APP_VERSION.match(app_version):
        raise EventError("app_version must be 1-32 characters of a version string")
    platform = raw.get("platform")
    if platform not in PLATFORMS:
        raise EventError(f"platform must be one of {', '.join(PLATFORMS)}")
    props = raw.get("props", {})
    if not isinstance(props, dict) or len(props) > MAX_PROPS:
        raise EventError(f"props must be an object of at most {MAX_PROPS} keys")
    for key, value in props.items():
        if key not in rules.prop_keys:
            raise EventError(f"props.{key} is not an allowed property")
        if isinstance(value, (dict, list)):
            raise EventError(f"props.{key} must be a string, number, boolean or null")
        if isinstance(value, str) and len(value) > MAX_PROP_TEXT:
            raise EventError(f"props.{key} must be at most {MAX_PROP_TEXT} characters")
    return store.EventRow(
        str(name),
        moment.isoformat(timespec="milliseconds"),
        moment.date().isoformat(),
        install_id,
        app_version,
        str(platform),
        orjson.dumps(props, option=orjson.OPT_SORT_KEYS).decode(),
        # Only the hour of arrival is kept: enough for retention, too coarse to match a
        # proxy's access log to a person.
        now - now % 3600,
    )


def _day(value: str | None, name: str, default: date) -> str:
    if value is None:
        return default.isoformat()
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise bad_request(f"{name} must be a date such as 2026-11-22") from None


@dataclass
class AnalyticsService:
    """Ingestion, daily summaries and retention."""

    writer: Writer
    readers: ReaderPool
    rules: AnalyticsRules

    async def ingest(self, body: object) -> dict[str, Any]:
        """Accept or reject each event of a batch on its own; store the accepted ones."""
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            raise bad_request('A batch is {"events": [...]}')
        events = body["events"]
        if len(events) > MAX_EVENTS:
            raise CouchError(413, "too_large", f"A batch holds at most {MAX_EVENTS} events")
        now = time.time()
        accepted: list[store.EventRow] = []
        results: list[dict[str, Any]] = []
        for index, raw in enumerate(events):
            try:
                accepted.append(check_event(raw, self.rules, now))
                results.append({"index": index, "ok": True})
            except EventError as exc:
                results.append({"index": index, "error": "invalid_event", "reason": str(exc)})
        if accepted:
            await self.writer.submit(lambda tx: store.insert_events(tx.conn, accepted))
        return {
            "accepted": len(accepted),
            "rejected": len(events) - len(accepted),
            "results": results,
        }

    async def summary(
        self, first: str | None, last: str | None, name: str | None
    ) -> dict[str, Any]:
        """Daily counts between two days (default: the last 30 days)."""
        today = datetime.now(UTC).date()
        first_day = _day(first, "from", today - timedelta(days=29))
        last_day = _day(last, "to", today)
        if first_day > last_day:
            raise bad_request("from must not be after to")
        rows = await self.readers.run(store.daily_counts, first_day, last_day, name)
        return {
            "from": first_day,
            "to": last_day,
            "items": [
                {"day": d, "name": n, "platform": p, "app_version": v, "count": c}
                for d, n, p, v, c in rows
            ],
        }

    async def purge(self, now: float | None = None) -> int:
        """Delete raw events older than the retention window; return how many went."""
        cutoff = (now or time.time()) - self.rules.retention_days * 86400
        total = 0
        while True:

            def op(tx: WriteTx) -> int:
                return store.delete_older_than(tx.conn, cutoff)

            removed = await self.writer.submit(op)
            total += removed
            if removed == 0:
                return total
