"""Anonymous, privacy-safe usage analytics.

The app sends batches of events without an account. Each event is checked on its own against
an allowlist of event names and property keys (scalar values only); accepted ones are stored
with no IP address, user agent or account, and rolled up into daily counts per event name,
platform and app version as they arrive. Raw events are deleted after the retention window by
the periodic housekeeping task (``syncd.services.housekeeping``); the daily counts stay.
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from syncd.errors import CouchError, bad_request
from syncd.store import analytics as store
from syncd.store.sqlite import ReaderPool, Writer, WriteTx

MAX_EVENTS = 100
MAX_BATCH_BYTES = 64 * 1024
PLATFORMS = ("ios", "android", "web", "desktop", "other")
# Matched whole (fullmatch): ``$`` would also let a trailing newline through.
_INSTALL_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_APP_VERSION = re.compile(r"[A-Za-z0-9.+_-]{1,32}")
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


_FIELDS = frozenset({"name", "ts", "install_id", "app_version", "platform", "props"})
_TS_ERROR = "ts must be an ISO-8601 time or epoch milliseconds"
_EMPTY_PROPS: dict[str, Any] = {}
_REMEMBERED = 4096  # valid install ids (and app versions) kept to skip their pattern
# The time of day of a ``ts`` in the form apps send (``2026-11-22T02:27:01.123Z``), from its
# ``T`` on; the day before it is checked against the days in range (_Window).
_TS_TIME = re.compile(r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z")


def _timestamp(value: object, now: float) -> datetime:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise EventError(_TS_ERROR)
    try:
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        else:
            moment = datetime.fromtimestamp(value / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        raise EventError(_TS_ERROR) from None
    seconds = moment.timestamp()
    if seconds < now - PAST_DAYS * 86400 or seconds > now + FUTURE_SECONDS:
        raise EventError(f"ts must be within the last {PAST_DAYS} days")
    return moment.astimezone(UTC)


def _ms_text(seconds: int) -> str:
    """A whole second as apps write it: ``2026-11-22T02:27:01.000Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class _Window:
    """The ``ts`` range of events checked within one second, as text, for the fast path.

    For every ``now`` in ``[second, second + 1)``, a ``ts`` of the canonical form strictly
    between ``low`` and ``high`` is inside ``[now - PAST_DAYS, now + FUTURE_SECONDS]``: such
    text compares in time order, so one string comparison replaces parsing the time. Any
    other ``ts`` (another form, epoch milliseconds, near or past the edges) takes the full
    check (``_timestamp``), which decides exactly as before.
    """

    __slots__ = ("days", "high", "low", "second")

    def __init__(self, second: int) -> None:
        self.second = second
        low = second + 1 - PAST_DAYS * 86400
        high = second + FUTURE_SECONDS
        self.low = _ms_text(low)
        self.high = _ms_text(high)
        first = datetime.fromtimestamp(low, UTC).date()
        last = datetime.fromtimestamp(high, UTC).date()
        self.days = frozenset(
            (first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)
        )


def _remember(seen: set[str], value: str, valid: bool) -> bool:
    if valid:
        if len(seen) >= _REMEMBERED:
            seen.clear()
        seen.add(value)
    return valid


class EventChecker:
    """Checks the events of batches against the rules; one ``now`` per batch."""

    def __init__(self, rules: AnalyticsRules) -> None:
        self.rules = rules
        self._window = _Window(0)
        # Install ids and app versions seen valid lately: an app sends many events with the
        # same ones, and a set lookup is cheaper than the pattern.
        self._install_ids: set[str] = set()
        self._app_versions: set[str] = set()

    def _valid_install_id(self, value: str) -> bool:
        return _remember(self._install_ids, value, _INSTALL_ID.fullmatch(value) is not None)

    def _valid_app_version(self, value: str) -> bool:
        return _remember(self._app_versions, value, _APP_VERSION.fullmatch(value) is not None)

    def window(self, now: float) -> _Window:
        second = int(now)
        if self._window.second != second:
            self._window = _Window(second)
        return self._window

    def check(self, events: list[Any], now: float) -> tuple[list[Any], list[tuple[int, str]]]:
        """The values stored for the valid events (one after the other, in the order of
        store.EVENT_COLUMNS) and (index, reason) for the others.

        Each event's checks run in a fixed order and the first that fails gives the reason.
        One loop over the batch with what it needs in locals: this runs for every event.
        """
        window = self.window(now)
        low, high, days = window.low, window.high, window.days
        names = self.rules.event_names
        prop_keys = self.rules.prop_keys
        install_ids = self._install_ids
        app_versions = self._app_versions
        received_at = received_hour(now)
        values: list[Any] = []
        errors: list[tuple[int, str]] = []
        for index, raw in enumerate(events):
            try:
                if not isinstance(raw, dict):
                    raise EventError("an event must be an object")
                if not raw.keys() <= _FIELDS:
                    extra = set(raw) - _FIELDS
                    raise EventError(f"unknown fields: {', '.join(sorted(extra))}")
                get = raw.get
                name = get("name")
                if not isinstance(name, str) or name not in names:  # a list is unhashable
                    raise EventError("name is not an allowed event name")
                ts = get("ts")
                if (
                    type(ts) is str
                    and len(ts) == 24
                    and low < ts < high
                    and ts[:10] in days
                    and _TS_TIME.fullmatch(ts, 10)
                ):
                    day = ts[:10]
                    ts = ts[:23] + "+00:00"
                else:
                    ts = _timestamp(ts, now).isoformat(timespec="milliseconds")
                    day = ts[:10]
                install_id = get("install_id")
                if not isinstance(install_id, str) or (
                    install_id not in install_ids and not self._valid_install_id(install_id)
                ):
                    raise EventError("install_id must be 8-64 letters, digits, '-' or '_'")
                app_version = get("app_version")
                if not isinstance(app_version, str) or (
                    app_version not in app_versions and not self._valid_app_version(app_version)
                ):
                    raise EventError("app_version must be 1-32 characters of a version string")
                platform = get("platform")
                if platform not in PLATFORMS:
                    raise EventError(f"platform must be one of {', '.join(PLATFORMS)}")
                props = get("props", _EMPTY_PROPS)
                if not isinstance(props, dict) or len(props) > MAX_PROPS:
                    raise EventError(f"props must be an object of at most {MAX_PROPS} keys")
                if props:
                    for key, value in props.items():
                        if key not in prop_keys:
                            raise EventError(f"props.{key} is not an allowed property")
                        if isinstance(value, str):
                            if len(value) > MAX_PROP_TEXT:
                                raise EventError(
                                    f"props.{key} must be at most {MAX_PROP_TEXT} characters"
                                )
                        elif isinstance(value, (dict, list)):
                            raise EventError(
                                f"props.{key} must be a string, number, boolean or null"
                            )
                    text = orjson.dumps(props, option=orjson.OPT_SORT_KEYS).decode()
                else:
                    text = "{}"
            except EventError as exc:
                errors.append((index, str(exc)))
            else:
                values += (name, ts, day, install_id, app_version, platform, text, received_at)
        return values, errors


def received_hour(now: float) -> float:
    """When an event arrived, as stored: only the hour (rounded down).

    Enough for retention, too coarse to match a proxy's access log to a person.
    """
    return now - now % 3600


@functools.lru_cache(maxsize=8)
def _checker(rules: AnalyticsRules) -> EventChecker:
    return EventChecker(rules)


def check_event(raw: object, rules: AnalyticsRules, now: float) -> store.EventRow:
    """One event, validated and stripped to what is stored (EventError says why not)."""
    values, errors = _checker(rules).check([raw], now)
    if errors:
        raise EventError(errors[0][1])
    return store.EventRow(*values)


def _day(value: str | None, name: str, default: date) -> str:
    if value is None:
        return default.isoformat()
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise bad_request(f"{name} must be a date such as 2026-11-22") from None


# Every ``{"index": i, "ok": true}`` of a results list (never changed: serialised as they are).
_OK: tuple[dict[str, Any], ...] = tuple({"index": index, "ok": True} for index in range(MAX_EVENTS))
# At most this many events go to the writer in one op (see _Pending).
MAX_PENDING = 20 * MAX_EVENTS


class _Pending:
    """Accepted events of several batches, stored by one writer op.

    Batches that arrive while the op waits for the writer add their events to it, so one
    insert and one roll-up serve them all (fewer statements, fewer daily-count updates per
    event, fewer hops between the event loop and the writer thread). The op closes the list
    when it starts, in the writer thread; the lock makes "add unless closed" and "close"
    exclusive. Every batch's answer waits for the one commit.
    """

    __slots__ = ("closed", "count", "done", "lock", "values")

    def __init__(self, values: list[Any], count: int) -> None:
        self.values = values
        self.count = count
        self.closed = False
        self.lock = threading.Lock()
        self.done: asyncio.Future[None] | None = None

    def add(self, values: list[Any], count: int) -> bool:
        """Add events unless the op has started (or would grow too big); False if not."""
        with self.lock:
            if self.closed or self.count + count > MAX_PENDING:
                return False
            self.values += values
            self.count += count
            return True

    def run(self, tx: WriteTx) -> None:
        """The writer op (in the writer thread)."""
        with self.lock:
            self.closed = True
        store.insert_events(tx.conn, self.values)

    def finished(self, task: asyncio.Future[None]) -> None:
        """Close the list also when the op never ran (the writer refused or failed it)."""
        with self.lock:
            self.closed = True
        # Every caller may have gone away (shield): keep asyncio from logging an unseen error.
        if not task.cancelled():
            task.exception()


@dataclass
class AnalyticsService:
    """Ingestion, daily summaries and retention."""

    writer: Writer
    readers: ReaderPool
    rules: AnalyticsRules
    _checker: EventChecker = field(init=False, repr=False)
    _pending: _Pending | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._checker = EventChecker(self.rules)

    async def ingest(self, body: object) -> dict[str, Any]:
        """Accept or reject each event of a batch on its own; store the accepted ones.

        The caller should hold no reference to ``body`` while this runs: the parsed events are
        let go before the wait for the commit, so the cyclic GC does not walk them meanwhile.
        """
        values, answer = self._check_batch(body)
        del body
        if values:
            await self._store(values, answer["accepted"])
        return answer

    def _check_batch(self, body: object) -> tuple[list[Any], dict[str, Any]]:
        """The accepted events' values (one after the other, in column order) and the answer."""
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            raise bad_request('A batch is {"events": [...]}')
        events = body["events"]
        if len(events) > MAX_EVENTS:
            raise CouchError(413, "too_large", f"A batch holds at most {MAX_EVENTS} events")
        values, errors = self._checker.check(events, time.time())
        results: list[dict[str, Any]] = list(_OK[: len(events)])
        for index, reason in errors:
            results[index] = {"index": index, "error": "invalid_event", "reason": reason}
        count = len(values) // len(store.EVENT_COLUMNS)
        return values, {
            "accepted": count,
            "rejected": len(events) - count,
            "results": results,
        }

    async def _store(self, values: list[Any], count: int) -> None:
        """Store the events (their values in column order); return once committed."""
        pending = self._pending
        if pending is None or not pending.add(values, count):
            pending = self._pending = _Pending(values, count)
            pending.done = asyncio.ensure_future(self.writer.submit(pending.run))
            pending.done.add_done_callback(pending.finished)
        assert pending.done is not None
        # A caller that goes away (its client disconnected) must not cancel the others' write.
        await asyncio.shield(pending.done)

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
