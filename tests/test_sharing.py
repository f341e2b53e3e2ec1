"""Shared packs: publish, read by code, withdraw, install, and the per-address read limit.

One behaviour per test, against a real syncd on a real socket. Accounts are anonymous ones
(``POST /v1/auth/anonymous``): each has its own database, where it writes its pack documents.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from syncd.app import create_app
from syncd.config import Settings

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
PROMPTS = [{"id": "p1", "text": "What made you laugh today?"}, {"id": "p2", "text": "Why?"}]

# --- helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """An anonymous account: its id, database and credentials."""

    id: str
    db: str
    token: str
    username: str
    password: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_up(http: TestClient) -> Account:
    resp = await http.post("/v1/auth/anonymous")
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return Account(
        body["account"]["id"],
        body["account"]["db"],
        body["access_token"],
        body["credentials"]["username"],
        body["credentials"]["password"],
    )


async def save_doc(http: TestClient, who: Account, doc_id: str, body: dict[str, Any]) -> str:
    """Create or update a document in ``who``'s database; its new rev."""
    current = await http.get(f"/{who.db}/{doc_id}", headers=who.auth)
    doc = dict(body)
    if current.status == 200:
        doc["_rev"] = (await current.json())["_rev"]
    resp = await http.put(f"/{who.db}/{doc_id}", json=doc, headers=who.auth)
    assert resp.status == 201, await resp.text()
    rev: str = (await resp.json())["rev"]
    return rev


def pack(title: str = "Icebreakers", prompts: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "type": "pack",
        "title": title,
        "language": "en",
        "prompts": PROMPTS if prompts is None else prompts,
    }


async def save_pack(http: TestClient, who: Account, doc_id: str = "pack:1", **fields: Any) -> str:
    return await save_doc(http, who, doc_id, pack(**fields))


async def publish(http: TestClient, who: Account, doc_id: str = "pack:1") -> Any:
    return await http.post("/v1/shares", json={"doc_id": doc_id}, headers=who.auth)


async def share(http: TestClient, who: Account, doc_id: str = "pack:1", **fields: Any) -> str:
    """Save a pack and publish it; its share code."""
    await save_pack(http, who, doc_id, **fields)
    resp = await publish(http, who, doc_id)
    assert resp.status in (200, 201), await resp.text()
    code: str = (await resp.json())["code"]
    return code


async def install(http: TestClient, who: Account, code: str) -> Any:
    return await http.post(f"/v1/shares/{code}/install", headers=who.auth)


async def status_of(resp: Any) -> int:
    await resp.read()
    status: int = resp.status
    return status


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[TestClient]:
    """A syncd of its own on ``settings`` for the duration of the block."""
    async with TestClient(TestServer(create_app(settings))) as http:
        yield http


# --- publishing ---------------------------------------------------------------------------


async def test_publish_answers_201_with_a_ten_character_crockford_code_and_its_url(
    anon_client: TestClient,
) -> None:
    owner = await sign_up(anon_client)
    await save_pack(anon_client, owner)
    resp = await publish(anon_client, owner)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    code = body["code"]
    assert len(code) == 10
    assert set(code) <= CROCKFORD
    assert body["doc_id"] == "pack:1"
    assert body["url"].endswith(f"/v1/shares/{code}")


async def test_share_urls_start_with_the_configured_public_url(settings: Settings) -> None:
    configured = dataclasses.replace(settings, public_url="https://packs.example.org")
    async with running(configured) as http:
        owner = await sign_up(http)
        await save_pack(http, owner)
        body = await (await publish(http, owner)).json()
    assert body["url"] == f"https://packs.example.org/v1/shares/{body['code']}"


async def test_publishing_again_updates_the_snapshot_and_keeps_the_code(
    anon_client: TestClient,
) -> None:
    owner = await sign_up(anon_client)
    code = await share(anon_client, owner, title="First title")
    await save_pack(anon_client, owner, title="Second title")
    resp = await publish(anon_client, owner)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["code"] == code
    shown = await (await anon_client.get(f"/v1/shares/{code}")).json()
    assert shown["pack"]["title"] == "Second title"


async def test_anyone_reads_a_share_without_an_account(anon_client: TestClient) -> None:
    owner = await sign_up(anon_client)
    code = await share(anon_client, owner, title="Road trip")
    resp = await anon_client.get(f"/v1/shares/{code}")  # no credentials
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["code"] == code
    assert body["pack"] == pack(title="Road trip")  # the pack's content, no _id, _rev or owner
    assert owner.id not in await resp.text()


async def test_a_code_typed_in_lowercase_finds_the_share(anon_client: TestClient) -> None:
    owner = await sign_up(anon_client)
    code = await share(anon_client, owner)
    resp = await anon_client.get(f"/v1/shares/{code.lower()}")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["code"] == code


async def test_a_code_typed_in_two_groups_finds_the_share(anon_client: TestClient) -> None:
    owner = await sign_up(anon_client)
    code = await share(anon_client, owner)
    resp = await anon_client.get(f"/v1/shares/{code[:5]}-{code[5:]}")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["code"] == code


async def _code_containing(http: TestClient, owner: Account, digit: str) -> str:
    """Publish packs until a code holds ``digit`` (about 1 in 4 codes holds a given digit)."""
    for n in range(80):
        code = await share(http, owner, doc_id=f"pack:{digit}-{n}")
        if digit in code:
            return code
    raise AssertionError(f"80 codes without a {digit!r}")


@pytest.mark.parametrize(("digit", "typed"), [("0", "O"), ("0", "o"), ("1", "I"), ("1", "l")])
async def test_letters_mistaken_for_digits_are_read_as_the_digits(
    anon_client: TestClient, digit: str, typed: str
) -> None:
    owner = await sign_up(anon_client)
    code = await _code_containing(anon_client, owner, digit)
    resp = await anon_client.get(f"/v1/shares/{code.replace(digit, typed)}")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["code"] == code


@pytest.mark.parametrize(
    "code",
    ["ZZZZZZZZZZ", "0000000000", "ABC", "ABCDEFGHJKM", "UUUUUUUUUU", "ABCDE!GHJK"],
    ids=["unused", "unused-digits", "too-short", "too-long", "letter-U", "punctuation"],
)
async def test_an_unknown_or_impossible_code_is_404(anon_client: TestClient, code: str) -> None:
    resp = await anon_client.get(f"/v1/shares/{code}")
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


async def test_only_pack_documents_can_be_shared(anon_client: TestClient) -> None:
    owner = await sign_up(anon_client)
    await save_doc(anon_client, owner, "note:1", {"type": "note", "text": "not a pack"})
    resp = await publish(anon_client, owner, "note:1")
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"


async def test_another_accounts_document_cannot_be_shared(anon_client: TestClient) -> None:
    owner, other = await sign_up(anon_client), await sign_up(anon_client)
    await save_pack(anon_client, owner, "pack:mine")
    resp = await publish(anon_client, other, "pack:mine")  # looks only in other's database
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


# --- withdrawing --------------------------------------------------------------------------


async def test_a_share_withdrawn_by_its_owner_answers_410_to_reads_and_installs(
    anon_client: TestClient,
) -> None:
    owner, reader = await sign_up(anon_client), await sign_up(anon_client)
    code = await share(anon_client, owner)
    resp = await anon_client.delete(f"/v1/shares/{code}", headers=owner.auth)
    assert resp.status == 200, await resp.text()
    read = await anon_client.get(f"/v1/shares/{code}")
    assert read.status == 410
    assert (await read.json())["error"] == "gone"
    assert await status_of(await install(anon_client, reader, code)) == 410


async def test_a_withdrawn_code_stays_gone_and_publishing_again_draws_a_new_code(
    anon_client: TestClient,
) -> None:
    owner = await sign_up(anon_client)
    old = await share(anon_client, owner)
    assert await status_of(await anon_client.delete(f"/v1/shares/{old}", headers=owner.auth)) == 200
    resp = await publish(anon_client, owner)
    assert resp.status == 201, await resp.text()
    new = (await resp.json())["code"]
    assert new != old
    assert await status_of(await anon_client.get(f"/v1/shares/{new}")) == 200
    assert await status_of(await anon_client.get(f"/v1/shares/{old}")) == 410
    again = await anon_client.delete(f"/v1/shares/{old}", headers=owner.auth)
    assert await status_of(again) == 410


async def test_another_account_cannot_withdraw_a_share(anon_client: TestClient) -> None:
    owner, other = await sign_up(anon_client), await sign_up(anon_client)
    code = await share(anon_client, owner)
    resp = await anon_client.delete(f"/v1/shares/{code}", headers=other.auth)
    assert resp.status == 404
    assert await status_of(await anon_client.get(f"/v1/shares/{code}")) == 200


async def test_the_server_admin_can_withdraw_any_share(
    anon_client: TestClient, client: TestClient
) -> None:
    code = await share(anon_client, await sign_up(anon_client))
    assert await status_of(await client.delete(f"/v1/shares/{code}")) == 200
    assert await status_of(await anon_client.get(f"/v1/shares/{code}")) == 410


async def test_deleting_the_owners_account_withdraws_its_shares(anon_client: TestClient) -> None:
    owner = await sign_up(anon_client)
    first = await share(anon_client, owner, "pack:1")
    second = await share(anon_client, owner, "pack:2")
    assert await status_of(await anon_client.delete("/v1/auth/me", headers=owner.auth)) == 200
    assert await status_of(await anon_client.get(f"/v1/shares/{first}")) == 410
    assert await status_of(await anon_client.get(f"/v1/shares/{second}")) == 410


# --- installing ---------------------------------------------------------------------------


async def test_install_copies_the_pack_into_the_callers_database(anon_client: TestClient) -> None:
    owner, reader = await sign_up(anon_client), await sign_up(anon_client)
    code = await share(anon_client, owner, title="Deep questions")
    resp = await install(anon_client, reader, code)
    assert resp.status == 201, await resp.text()
    result = await resp.json()
    assert result["status"] == "installed"
    assert result["id"] == f"pack:share-{code}"
    doc = await (
        await anon_client.get(f"/{reader.db}/pack:share-{code}", headers=reader.auth)
    ).json()
    assert doc["_rev"] == result["rev"]
    assert doc["title"] == "Deep questions"
    assert doc["prompts"] == PROMPTS
    assert doc["source"] == {"kind": "share", "code": code}


async def test_installing_again_is_200_unchanged(anon_client: TestClient) -> None:
    owner, reader = await sign_up(anon_client), await sign_up(anon_client)
    code = await share(anon_client, owner)
    first = await (await install(anon_client, reader, code)).json()
    resp = await install(anon_client, reader, code.lower())
    assert resp.status == 200, await resp.text()
    again = await resp.json()
    assert again["status"] == "unchanged"
    assert (again["id"], again["rev"]) == (first["id"], first["rev"])


async def test_installing_after_the_owner_publishes_an_update_updates_the_copy(
    anon_client: TestClient,
) -> None:
    owner, reader = await sign_up(anon_client), await sign_up(anon_client)
    code = await share(anon_client, owner, title="Version one")
    await install(anon_client, reader, code)
    await share(anon_client, owner, title="Version two")  # same code, new snapshot
    resp = await install(anon_client, reader, code)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["status"] == "updated"
    doc = await (
        await anon_client.get(f"/{reader.db}/pack:share-{code}", headers=reader.auth)
    ).json()
    assert doc["title"] == "Version two"
    assert doc["_rev"].startswith("2-")


async def test_installing_again_after_deleting_the_copy_brings_it_back(
    anon_client: TestClient,
) -> None:
    owner, reader = await sign_up(anon_client), await sign_up(anon_client)
    code = await share(anon_client, owner)
    first = await (await install(anon_client, reader, code)).json()
    path = f"/{reader.db}/pack:share-{code}"
    deleted = await anon_client.delete(f"{path}?rev={first['rev']}", headers=reader.auth)
    assert await status_of(deleted) == 200
    resp = await install(anon_client, reader, code)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["status"] == "installed"
    assert await status_of(await anon_client.get(path, headers=reader.auth)) == 200


# --- the read limit -----------------------------------------------------------------------


async def test_share_reads_are_rate_limited_per_address(settings: Settings) -> None:
    async with running(dataclasses.replace(settings, share_rate_limit="3/minute")) as http:
        owner = await sign_up(http)
        code = await share(http, owner)
        for _ in range(3):
            assert await status_of(await http.get(f"/v1/shares/{code}")) == 200
        resp = await http.get(f"/v1/shares/{code}")
        assert resp.status == 429
        assert (await resp.json())["error"] == "too_many_requests"
        assert 0 < int(resp.headers["Retry-After"]) <= 60  # within the limit's window


async def test_the_share_read_limit_counts_each_address_on_its_own(settings: Settings) -> None:
    limited = dataclasses.replace(settings, share_rate_limit="3/minute", trust_proxy=True)
    async with running(limited) as http:
        owner = await sign_up(http)
        code = await share(http, owner)
        first = {"X-Forwarded-For": "198.51.100.7"}
        for _ in range(3):
            assert await status_of(await http.get(f"/v1/shares/{code}", headers=first)) == 200
        assert await status_of(await http.get(f"/v1/shares/{code}", headers=first)) == 429
        second = {"X-Forwarded-For": "198.51.100.8"}
        assert await status_of(await http.get(f"/v1/shares/{code}", headers=second)) == 200
