"""Prometheus metrics: counters and histograms kept in memory, rendered as text format 0.0.4.

No client library: the few metric kinds syncd needs are a counter and a histogram with fixed
buckets, and the text format is a handful of lines.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
REPLICATION_ROUTES = {
    "bulk_docs": "_bulk_docs",
    "bulk_get": "_bulk_get",
    "revs_diff": "_revs_diff",
    "changes": "_changes",
    "changes_post": "_changes",
    "all_docs": "_all_docs",
    "all_docs_post": "_all_docs",
    "local_get": "_local",
    "local_put": "_local",
    "db_info": "db_info",
    "db_info_slash": "db_info",
    "att_get": "attachment",
    "doc_get": "doc",
}

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels
    )
    return "{" + inner + "}"


@dataclass
class Histogram:
    """Cumulative-bucket histogram per label set."""

    buckets: Sequence[float]
    counts: dict[Labels, list[int]] = field(default_factory=dict)
    sums: Counter[Labels] = field(default_factory=Counter)

    def observe(self, value: float, labels: Labels = ()) -> None:
        """Record one value."""
        row = self.counts.setdefault(labels, [0] * (len(self.buckets) + 1))
        row[bisect.bisect_left(self.buckets, value)] += 1
        self.sums[labels] += value  # type: ignore[assignment]

    def render(self, name: str, help_text: str) -> Iterable[str]:
        """Text-format lines."""
        yield f"# HELP {name} {help_text}"
        yield f"# TYPE {name} histogram"
        for labels, row in sorted(self.counts.items()):
            running = 0
            for bound, count in zip(self.buckets, row, strict=False):
                running += count
                yield f"{name}_bucket{_labels((*labels, ('le', repr(float(bound)))))} {running}"
            running += row[-1]
            yield f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {running}"
            yield f"{name}_sum{_labels(labels)} {self.sums[labels]:.6f}"
            yield f"{name}_count{_labels(labels)} {running}"


def render_counter(name: str, help_text: str, values: Counter[Labels]) -> Iterable[str]:
    """A counter's text-format lines."""
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} counter"
    for labels, value in sorted(values.items()):
        yield f"{name}{_labels(labels)} {value}"


def render_gauge(name: str, help_text: str, values: dict[Labels, float]) -> Iterable[str]:
    """A gauge's text-format lines."""
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} gauge"
    for labels, value in sorted(values.items()):
        yield f"{name}{_labels(labels)} {value:g}"


@dataclass
class Metrics:
    """What the server counts while it runs."""

    requests: Counter[Labels] = field(default_factory=Counter)
    errors: Counter[Labels] = field(default_factory=Counter)
    replication: Counter[Labels] = field(default_factory=Counter)
    latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    commit_batch: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    commit_seconds: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One finished request (route is the route's name, never a raw path)."""
        self.requests[(("route", route), ("method", method), ("status", str(status)))] += 1
        self.latency.observe(seconds, (("route", route),))
        if status >= 500:
            self.errors[(("route", route), ("status", str(status)))] += 1
        endpoint = REPLICATION_ROUTES.get(route)
        if endpoint is not None:
            self.replication[(("endpoint", endpoint),)] += 1

    def observe_commit(self, batch_size: int, seconds: float) -> None:
        """Writer commit observer."""
        self.commit_batch.observe(batch_size)
        self.commit_seconds.observe(seconds)

    def render(
        self,
        gauges: dict[str, tuple[str, dict[Labels, float]]],
        counters: dict[str, tuple[str, Counter[Labels]]] | None = None,
    ) -> str:
        """Everything in Prometheus text format; ``gauges`` and ``counters`` (kept by other
        parts of the server) are read at scrape time."""
        lines: list[str] = []
        lines += render_counter(
            "syncd_http_requests_total", "HTTP requests by route, method and status.", self.requests
        )
        lines += self.latency.render(
            "syncd_http_request_duration_seconds", "HTTP request latency by route."
        )
        lines += render_counter(
            "syncd_http_errors_total", "Responses with a 5xx status by route.", self.errors
        )
        lines += render_counter(
            "syncd_replication_requests_total",
            "Requests to replication endpoints.",
            self.replication,
        )
        lines += self.commit_batch.render(
            "syncd_writer_commit_batch_size", "Write operations committed together."
        )
        lines += self.commit_seconds.render(
            "syncd_writer_commit_duration_seconds", "Time to run and commit one batch."
        )
        for name, (help_text, counted) in sorted((counters or {}).items()):
            lines += render_counter(name, help_text, counted)
        for name, (help_text, values) in sorted(gauges.items()):
            lines += render_gauge(name, help_text, values)
        return "\n".join(lines) + "\n"
