"""Schemathesis against a live syncd, driven by the OpenAPI description the server itself serves.

The in-process ``server`` fixture listens on a real socket and the spec comes from its own
``GET /openapi.json``. Schemathesis is synchronous (``requests``), so it runs in a worker thread
while the event loop keeps serving. For every operation it sends, as the server admin (HTTP
Basic), first the deterministic cases of its coverage phase (boundary values, wrong types,
missing and unexpected parameters, undocumented methods), then a bounded number of random
schema-valid and schema-violating cases; ``db`` is pinned to an existing database (and
``docid``/``attname``/``ddoc``/``localid`` to existing rows in one pass) so requests get past the
404s. Every response must:

- not be a 5xx (``not_a_server_error``), nor hang (a request timeout fails the case);
- carry a documented status code and content type;
- match the documented schema: the 2xx body, or CouchDB's ``{"error", "reason"}`` otherwise.

One deliberate limit: the fuzzed ``DELETE /{db}`` and ``DELETE /{db}/`` get fuzzed names, never
the pinned database (dropping it would turn everything after into 404s).
"""

from __future__ import annotations

import asyncio
import copy
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import requests
import schemathesis
from aiohttp.test_utils import TestClient, TestServer
from conftest import ADMIN, basic_auth
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
# Random cases per operation, generation mode and pinning; raise it for a deeper local run.
FUZZ_EXAMPLES = int(os.environ.get("SYNCD_FUZZ_EXAMPLES", "6"))
REQUEST_TIMEOUT = 10  # seconds; a hung request fails its case instead of stalling the run

# Existing rows (made by the test), so that fuzzed requests reach real documents.
PINNED = {"docid": "fuzz-doc", "attname": "note.txt", "ddoc": "fuzz", "localid": "fuzz-local"}


def constrain(spec: dict[str, Any]) -> dict[str, Any]:
    """The served spec with the parameters of ``_changes`` that cannot work under fuzzing bounded.

    ``feed=longpoll|eventsource`` waits for the next commit until ``timeout`` (60 s by default;
    for ever with a ``heartbeat`` and no ``timeout``): here ``timeout`` is always sent and at most
    200 ms, and ``heartbeat`` at most 100 ms. ``feed=continuous`` is left out: it streams one
    JSON object per line under ``application/json`` (as CouchDB does), which no OpenAPI response
    schema can describe, so the schema check would fail on every answer with two changes; the
    continuous feed has its own tests (test_changes.py, test_feed_churn.py, test_lifecycle.py).
    """
    spec = copy.deepcopy(spec)
    for operation in spec["paths"]["/{db}/_changes"].values():
        for param in operation["parameters"]:
            if param["name"] == "feed":
                param["schema"] = {"enum": ["normal", "longpoll", "eventsource"]}
            elif param["name"] == "timeout":
                param["required"] = True
                param["schema"] = {"type": "integer", "minimum": 0, "maximum": 200}
            elif param["name"] == "heartbeat":
                param["schema"] = {"type": "integer", "minimum": 0, "maximum": 100}
    return spec


def _path_names(operation: schemathesis.APIOperation) -> set[str]:
    return {p["name"] for p in operation.definition.raw.get("parameters", []) if p["in"] == "path"}


def _pins(operation: schemathesis.APIOperation, db: str) -> list[dict[str, str]]:
    """The path parameters to fix: ``db`` alone, then also the other known names."""
    names = _path_names(operation)
    if operation.method.upper() == "DELETE" and operation.path in ("/{db}", "/{db}/"):
        return [{}]  # never drop the pinned database
    base = {"db": db} if "db" in names else {}
    rows = {k: v for k, v in PINNED.items() if k in names}
    return [base, {**base, **rows}] if rows else [base]


class Fuzzer:
    """Sends cases to one base URL and collects what failed."""

    def __init__(self, spec: dict[str, Any], base_url: str, db: str) -> None:
        self.schema = schemathesis.openapi.from_dict(spec)
        self.base_url = base_url
        self.db = db
        self.session = requests.Session()
        self.headers = {"Authorization": basic_auth(*ADMIN)}
        self.failures: list[str] = []
        self.sent: Counter[str] = Counter()  # "2xx", "4xx", ...

    def operations(self) -> Iterator[schemathesis.APIOperation]:
        for result in self.schema.get_all_operations():
            yield result.ok()

    def send(self, case: schemathesis.Case) -> None:
        try:
            response = case.call_and_validate(
                base_url=self.base_url,
                session=self.session,
                headers=self.headers,
                checks=CHECKS,
                timeout=REQUEST_TIMEOUT,
            )
        except requests.RequestException as exc:
            # Schemathesis reports its own checks with a curl line; a timeout it does not.
            raise AssertionError(f"{exc}\n{case.as_curl_command()}") from exc
        self.sent[f"{response.status_code // 100}xx"] += 1

    def coverage(self, operation: schemathesis.APIOperation) -> None:
        """Schemathesis's coverage phase: deterministic edge cases of every parameter."""
        pins = _pins(operation, self.db)[-1]
        config = self.schema.config.generation_for(operation=operation, phase="coverage")
        for case in self.schema.iter_coverage_cases(
            operation, generation_modes=MODES, generation_config=config
        ):
            if case.method.upper() == operation.method.upper() and case.path_parameters:
                case.path_parameters.update(pins)
            try:
                self.send(case)
            except (Exception, BaseExceptionGroup) as exc:
                self.failures.append(f"{operation.label} [coverage]: {exc}")

    def fuzz(self, operation: schemathesis.APIOperation) -> None:
        """Random cases, schema-valid and schema-violating."""
        for mode in MODES:
            for pins in _pins(operation, self.db):
                strategy = operation.as_strategy(mode, path_parameters=pins or None)

                @settings(
                    max_examples=FUZZ_EXAMPLES,
                    deadline=None,
                    database=None,
                    phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=strategy)
                def run(case: schemathesis.Case) -> None:
                    self.send(case)

                try:
                    run()
                except Unsatisfiable:
                    pass  # nothing to violate: no parameters, or only free-form strings
                except (Exception, BaseExceptionGroup) as exc:
                    self.failures.append(f"{operation.label} [{mode.value}]: {exc}")

    def run(self) -> None:
        for operation in self.operations():
            self.coverage(operation)
            self.fuzz(operation)


async def _make_rows(client: TestClient, db: str) -> None:
    """The rows ``PINNED`` names: a document with an attachment, a design doc, a _local doc."""
    resp = await client.put(f"/{db}/fuzz-doc", json={"kind": "fuzz"})
    assert resp.status == 201, await resp.text()
    rev = (await resp.json())["rev"]
    resp = await client.put(
        f"/{db}/fuzz-doc/note.txt?rev={rev}", data=b"hello", headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 201, await resp.text()
    resp = await client.put(f"/{db}/_design/fuzz", json={"views": {}})
    assert resp.status == 201, await resp.text()
    resp = await client.put(f"/{db}/_local/fuzz-local", json={"x": 1})
    assert resp.status == 201, await resp.text()


async def test_every_operation_answers_as_documented(
    server: TestServer, client: TestClient, db: str
) -> None:
    await _make_rows(client, db)
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    spec = constrain(await resp.json())

    fuzzer = Fuzzer(spec, str(server.make_url("")).rstrip("/"), db)
    started = time.monotonic()
    await asyncio.to_thread(fuzzer.run)
    elapsed = time.monotonic() - started
    assert not fuzzer.failures, "\n\n".join(fuzzer.failures)
    # It did exercise the server: many requests, and both successes and refusals.
    assert sum(fuzzer.sent.values()) > 1000, fuzzer.sent
    assert fuzzer.sent["2xx"] > 100 and fuzzer.sent["4xx"] > 100, fuzzer.sent

    # The server still answers, and the pinned database is still there.
    assert (await client.get("/_up")).status == 200
    assert (await client.get(f"/{db}")).status == 200
    print(f"schemathesis: {dict(fuzzer.sent)} in {elapsed:.1f} s")
