"""Premium gating, purchases with the built-in signed receipts, admin grants, Idempotency-Key.

A real syncd over HTTP; accounts are anonymous accounts (``POST /v1/auth/anonymous``) using
their Bearer token; the server admin uses HTTP Basic (the ``client`` fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import Account, sign_up

from syncd.config import Settings

PACKS = "/v1/store/packs"
PURCHASES = "/v1/store/purchases"
ENTITLEMENTS = "/v1/store/entitlements"
RECEIPTS = "/v1/admin/store/receipts"
GRANTS = "/v1/admin/store/entitlements"
SKU = "com.example.premium"


async def create_pack(client: TestClient, **fields: Any) -> dict[str, Any]:
    body = {
        "slug": "pack-" + uuid.uuid4().hex[:10],
        "title": "A pack",
        "language": "en",
        "prompts": [{"id": "p1", "text": "Hello"}],
        **fields,
    }
    resp = await client.post("/v1/admin/store/packs", json=body)
    assert resp.status == 201, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def premium_pack(client: TestClient, sku: str = SKU) -> dict[str, Any]:
    return await create_pack(client, tier="premium", sku=sku)


async def mint(client: TestClient, sku: str = SKU) -> str:
    resp = await client.post(RECEIPTS, json={"sku": sku})
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert (body["platform"], body["sku"]) == ("syncd", sku)
    return body["receipt"]  # type: ignore[no-any-return]


@pytest.fixture
async def premium(client: TestClient) -> dict[str, Any]:
    """A premium pack on sale as ``SKU``."""
    return await premium_pack(client)


@pytest.fixture
async def receipt(client: TestClient) -> str:
    """A receipt for ``SKU`` minted by the server admin."""
    return await mint(client)


def purchase_body(receipt: str, sku: str = SKU, platform: str = "syncd") -> dict[str, str]:
    return {"sku": sku, "platform": platform, "receipt": receipt}


async def buy(
    http: TestClient, account: Account, receipt: str, sku: str = SKU, **headers: str
) -> Any:
    return await http.post(
        PURCHASES,
        json=purchase_body(receipt, sku),
        headers={**account.headers, **headers},
    )


async def skus(http: TestClient, account: Account) -> list[str]:
    resp = await http.get(ENTITLEMENTS, headers=account.headers)
    assert resp.status == 200, await resp.text()
    return [e["sku"] for e in (await resp.json())["items"]]


async def grant(client: TestClient, account: Account, sku: str = SKU) -> None:
    resp = await client.post(GRANTS, json={"account_id": account.id, "sku": sku})
    assert resp.status == 201, await resp.text()


async def revoke(client: TestClient, account: Account, sku: str = SKU) -> None:
    resp = await client.delete(f"{GRANTS}/{account.id}/{sku}")
    assert resp.status == 200, await resp.text()


def purchases_of(settings: Settings, account: Account) -> int:
    """How many purchase rows the account has (read straight from the SQLite file)."""
    with contextlib.closing(sqlite3.connect(settings.database_path)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM purchases WHERE account_id = ?", (account.id,)
        ).fetchone()
    return int(row[0])


async def content_status(http: TestClient, pack: dict[str, Any], headers: Any = None) -> int:
    resp = await http.get(f"{PACKS}/{pack['id']}/content", headers=headers or {})
    return resp.status


# content gating -----------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["nobody", "account", "admin"])
async def test_free_content_is_open_to_anyone(
    client: TestClient, anon_client: TestClient, caller: str
) -> None:
    pack = await create_pack(client)
    http = client if caller == "admin" else anon_client
    headers = (await sign_up(anon_client)).headers if caller == "account" else {}
    resp = await http.get(f"{PACKS}/{pack['id']}/content", headers=headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["prompts"] == [{"id": "p1", "text": "Hello"}]


async def test_premium_metadata_is_public(anon_client: TestClient, premium: dict[str, Any]) -> None:
    resp = await anon_client.get(f"{PACKS}/{premium['id']}")
    assert resp.status == 200
    assert (await resp.json())["sku"] == SKU


async def test_premium_content_without_credentials_names_the_sku(
    anon_client: TestClient, premium: dict[str, Any]
) -> None:
    resp = await anon_client.get(f"{PACKS}/{premium['id']}/content")
    assert resp.status == 403
    body = await resp.json()
    assert body["error"] == "entitlement_required"
    assert SKU in body["reason"]


async def test_premium_content_for_an_account_without_entitlement_is_403(
    anon_client: TestClient, premium: dict[str, Any], account: Account
) -> None:
    resp = await anon_client.get(f"{PACKS}/{premium['id']}/content", headers=account.headers)
    assert resp.status == 403
    body = await resp.json()
    assert body["error"] == "entitlement_required"
    assert SKU in body["reason"]


async def test_premium_content_after_a_purchase(
    client: TestClient, anon_client: TestClient, premium: dict[str, Any], account: Account
) -> None:
    assert (await buy(anon_client, account, await mint(client))).status == 201
    resp = await anon_client.get(f"{PACKS}/{premium['id']}/content", headers=account.headers)
    assert resp.status == 200
    assert (await resp.json())["prompts"] == [{"id": "p1", "text": "Hello"}]


async def test_premium_content_after_an_admin_grant(
    client: TestClient, anon_client: TestClient, premium: dict[str, Any], account: Account
) -> None:
    await grant(client, account)
    assert await content_status(anon_client, premium, account.headers) == 200


async def test_premium_content_after_a_revoke_is_403(
    client: TestClient, anon_client: TestClient, premium: dict[str, Any], account: Account
) -> None:
    await grant(client, account)
    assert await content_status(anon_client, premium, account.headers) == 200
    await revoke(client, account)
    assert await content_status(anon_client, premium, account.headers) == 403


async def test_revoking_a_purchased_entitlement_gates_again(
    client: TestClient, anon_client: TestClient, premium: dict[str, Any], account: Account
) -> None:
    assert (await buy(anon_client, account, await mint(client))).status == 201
    await revoke(client, account)
    assert await content_status(anon_client, premium, account.headers) == 403
    assert await skus(anon_client, account) == []


async def test_premium_content_for_the_admin(client: TestClient, premium: dict[str, Any]) -> None:
    assert await content_status(client, premium) == 200


async def test_entitlement_is_per_sku(client: TestClient, anon_client: TestClient) -> None:
    pack = await premium_pack(client, sku="other.sku")
    account = await sign_up(anon_client)
    await grant(client, account, SKU)
    assert await content_status(anon_client, pack, account.headers) == 403


async def test_entitlement_is_per_account(
    client: TestClient, anon_client: TestClient, premium: dict[str, Any]
) -> None:
    owner, other = await sign_up(anon_client), await sign_up(anon_client)
    await grant(client, owner)
    assert await content_status(anon_client, premium, other.headers) == 403


async def test_content_changing_to_premium_is_gated(
    client: TestClient, anon_client: TestClient
) -> None:
    pack = await create_pack(client, slug="goes-premium")
    assert await content_status(anon_client, pack) == 200
    resp = await client.put(
        f"/v1/admin/store/packs/{pack['id']}",
        json={
            "slug": "goes-premium",
            "title": "A pack",
            "language": "en",
            "prompts": [{"id": "p1", "text": "Hello"}],
            "tier": "premium",
            "sku": SKU,
        },
    )
    assert resp.status == 200
    assert await content_status(anon_client, pack) == 403


# purchases ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("premium")
async def test_purchase_grants_the_entitlement(
    client: TestClient, anon_client: TestClient, settings: Settings, account: Account
) -> None:
    resp = await buy(anon_client, account, await mint(client))
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["ok"] is True
    assert (body["purchase"]["sku"], body["purchase"]["platform"]) == (SKU, "syncd")
    assert isinstance(body["purchase"]["id"], str) and body["purchase"]["id"]
    assert body["entitlement"] == {"sku": SKU}
    resp = await anon_client.get(ENTITLEMENTS, headers=account.headers)
    listed = await resp.json()
    assert listed["next_cursor"] is None
    [item] = listed["items"]
    assert (item["sku"], item["source"]) == (SKU, "purchase")
    assert item["granted_at"]
    assert purchases_of(settings, account) == 1


async def test_new_account_has_no_entitlements(anon_client: TestClient, account: Account) -> None:
    assert await skus(anon_client, account) == []


async def test_admin_grant_is_listed_as_a_grant(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    resp = await client.post(GRANTS, json={"account_id": account.id, "sku": SKU})
    assert resp.status == 201
    assert await resp.json() == {"ok": True, "account_id": account.id, "sku": SKU}
    resp = await anon_client.get(ENTITLEMENTS, headers=account.headers)
    [item] = (await resp.json())["items"]
    assert (item["sku"], item["source"]) == (SKU, "grant")


async def test_grant_to_an_unknown_account_is_404(client: TestClient) -> None:
    resp = await client.post(GRANTS, json={"account_id": "no-such-account", "sku": SKU})
    assert resp.status == 404


@pytest.mark.parametrize("body", [{}, {"account_id": "x"}, {"sku": SKU}, {"account_id": 1}])
async def test_grant_needs_account_and_sku(client: TestClient, body: dict[str, Any]) -> None:
    resp = await client.post(GRANTS, json=body)
    assert resp.status == 400


async def test_revoke_of_a_missing_entitlement_is_404(client: TestClient, account: Account) -> None:
    resp = await client.delete(f"{GRANTS}/{account.id}/{SKU}")
    assert resp.status == 404


async def test_mint_needs_a_sku(client: TestClient) -> None:
    resp = await client.post(RECEIPTS, json={})
    assert resp.status == 400


@pytest.mark.usefixtures("premium")
async def test_bad_receipt_is_invalid_receipt(
    anon_client: TestClient, settings: Settings, account: Account, receipt: str
) -> None:
    for bad in ("not-a-receipt", receipt[:-2] + ("AA" if receipt[-2:] != "AA" else "BB")):
        resp = await buy(anon_client, account, bad)
        assert resp.status == 400, bad
        assert (await resp.json())["error"] == "invalid_receipt"
    assert await skus(anon_client, account) == []
    assert purchases_of(settings, account) == 0


@pytest.mark.usefixtures("premium")
async def test_receipt_for_another_sku_is_invalid(
    client: TestClient, anon_client: TestClient
) -> None:
    await premium_pack(client, sku="cheaper.sku")
    account = await sign_up(anon_client)
    receipt = await mint(client, "cheaper.sku")
    resp = await buy(anon_client, account, receipt, sku=SKU)
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_receipt"
    assert await skus(anon_client, account) == []


@pytest.mark.usefixtures("premium")
async def test_unknown_platform_is_400(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    resp = await anon_client.post(
        PURCHASES,
        json=purchase_body(await mint(client), platform="ios"),
        headers=account.headers,
    )
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "bad_request"
    assert "ios" in body["reason"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"sku": SKU, "platform": "syncd"},
        {"sku": SKU, "platform": "syncd", "receipt": ""},
        {"sku": 5, "platform": "syncd", "receipt": "r"},
    ],
)
async def test_purchase_needs_sku_platform_and_receipt(
    anon_client: TestClient, body: dict[str, Any], account: Account
) -> None:
    resp = await anon_client.post(PURCHASES, json=body, headers=account.headers)
    assert resp.status == 400


async def test_unknown_sku_is_404(
    client: TestClient, anon_client: TestClient, settings: Settings, account: Account
) -> None:
    resp = await buy(
        anon_client, account, await mint(client, "nothing.sells.this"), "nothing.sells.this"
    )
    assert resp.status == 404
    assert await skus(anon_client, account) == []
    assert purchases_of(settings, account) == 0


@pytest.mark.usefixtures("premium")
async def test_receipt_used_by_another_account_is_a_conflict(
    client: TestClient, anon_client: TestClient, settings: Settings
) -> None:
    first, second = await sign_up(anon_client), await sign_up(anon_client)
    receipt = await mint(client)
    assert (await buy(anon_client, first, receipt)).status == 201
    resp = await buy(anon_client, second, receipt)
    assert resp.status == 409
    assert (await resp.json())["error"] == "conflict"
    assert await skus(anon_client, second) == []
    assert purchases_of(settings, second) == 0


@pytest.mark.usefixtures("premium")
async def test_same_receipt_again_by_the_same_account_is_one_purchase(
    anon_client: TestClient, settings: Settings, account: Account, receipt: str
) -> None:
    first = await buy(anon_client, account, receipt)
    again = await buy(anon_client, account, receipt)
    assert (first.status, again.status) == (201, 201)
    assert (await again.json())["purchase"]["id"] == (await first.json())["purchase"]["id"]
    assert "Idempotent-Replayed" not in again.headers
    assert await skus(anon_client, account) == [SKU]
    assert purchases_of(settings, account) == 1


@pytest.mark.usefixtures("premium")
async def test_two_receipts_are_two_purchases(
    client: TestClient, anon_client: TestClient, settings: Settings, account: Account
) -> None:
    first = await buy(anon_client, account, await mint(client))
    second = await buy(anon_client, account, await mint(client))
    assert (await first.json())["purchase"]["id"] != (await second.json())["purchase"]["id"]
    assert purchases_of(settings, account) == 2
    assert await skus(anon_client, account) == [SKU]


@pytest.mark.usefixtures("premium")
async def test_the_server_admin_cannot_purchase(client: TestClient) -> None:
    resp = await client.post(PURCHASES, json=purchase_body(await mint(client)))
    assert resp.status == 400


# Idempotency-Key ----------------------------------------------------------------------------


@pytest.mark.usefixtures("premium")
async def test_same_key_and_body_replays_the_first_response(
    client: TestClient, anon_client: TestClient, settings: Settings, account: Account, receipt: str
) -> None:
    first = await buy(anon_client, account, receipt, **{"Idempotency-Key": "buy-1"})
    assert first.status == 201
    assert "Idempotent-Replayed" not in first.headers
    first_body = await first.read()
    await revoke(client, account)  # a second effect would grant it again

    again = await buy(anon_client, account, receipt, **{"Idempotency-Key": "buy-1"})
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.read() == first_body
    assert await skus(anon_client, account) == []
    assert purchases_of(settings, account) == 1


@pytest.mark.usefixtures("premium")
async def test_same_key_with_reordered_json_keys_replays(
    anon_client: TestClient, account: Account, receipt: str
) -> None:
    headers = {**account.headers, "Idempotency-Key": "k", "Content-Type": "application/json"}
    first = await anon_client.post(
        PURCHASES,
        data=f'{{"sku": "{SKU}", "platform": "syncd", "receipt": "{receipt}"}}',
        headers=headers,
    )
    again = await anon_client.post(
        PURCHASES,
        data=f'{{"receipt":"{receipt}","platform":"syncd","sku":"{SKU}"}}',
        headers=headers,
    )
    assert (first.status, again.status) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.usefixtures("premium")
async def test_same_key_with_another_body_is_422(
    client: TestClient, anon_client: TestClient, settings: Settings, account: Account
) -> None:
    key = {"Idempotency-Key": "buy-2"}
    assert (await buy(anon_client, account, await mint(client), **key)).status == 201
    resp = await buy(anon_client, account, await mint(client), **key)
    assert resp.status == 422
    assert (await resp.json())["error"] == "idempotency_key_reused"
    assert purchases_of(settings, account) == 1


@pytest.mark.usefixtures("premium")
async def test_same_key_on_another_route_is_422(
    client: TestClient, anon_client: TestClient
) -> None:
    free = await create_pack(client)
    account = await sign_up(anon_client)
    key = {"Idempotency-Key": "one-key"}
    assert (await buy(anon_client, account, await mint(client), **key)).status == 201
    resp = await anon_client.post(
        f"{PACKS}/{free['id']}/install", headers={**account.headers, **key}
    )
    assert resp.status == 422
    assert (await resp.json())["error"] == "idempotency_key_reused"


@pytest.mark.usefixtures("premium")
async def test_key_older_than_a_day_no_longer_replays(
    client: TestClient, anon_client: TestClient, settings: Settings, account: Account, receipt: str
) -> None:
    key = {"Idempotency-Key": "old-key"}
    assert (await buy(anon_client, account, receipt, **key)).status == 201
    await revoke(client, account)
    with contextlib.closing(sqlite3.connect(settings.database_path, timeout=10)) as conn:
        aged = conn.execute(
            "UPDATE idempotency_keys SET created_at = created_at - 86400 - 60 WHERE key = ?",
            ("old-key",),
        ).rowcount
        conn.commit()
    assert aged == 1

    again = await buy(anon_client, account, receipt, **key)
    # it ran again (a replay would be the stored 201): the revoked purchase is refused
    assert again.status == 409
    assert "Idempotent-Replayed" not in again.headers
    assert await skus(anon_client, account) == []


@pytest.mark.usefixtures("premium")
async def test_a_revoked_purchase_cannot_be_replayed_to_restore_the_entitlement(
    client: TestClient, anon_client: TestClient, account: Account, receipt: str
) -> None:
    assert (await buy(anon_client, account, receipt)).status == 201
    await revoke(client, account)
    again = await buy(anon_client, account, receipt)
    assert again.status == 409
    assert (await again.json())["reason"] == "This purchase was revoked."
    assert await skus(anon_client, account) == []


@pytest.mark.usefixtures("premium")
async def test_expired_key_may_be_used_for_another_request(
    client: TestClient, anon_client: TestClient, settings: Settings, account: Account
) -> None:
    key = {"Idempotency-Key": "reused-after-a-day"}
    assert (await buy(anon_client, account, await mint(client), **key)).status == 201
    with contextlib.closing(sqlite3.connect(settings.database_path, timeout=10)) as conn:
        conn.execute("UPDATE idempotency_keys SET created_at = created_at - 86400 - 60")
        conn.commit()
    resp = await buy(anon_client, account, await mint(client), **key)
    assert resp.status == 201
    assert "Idempotent-Replayed" not in resp.headers
    assert purchases_of(settings, account) == 2
    replay = await buy(anon_client, account, "ignored", **key)  # the key now means this one
    assert replay.status == 422


@pytest.mark.usefixtures("premium")
async def test_keys_are_per_account(
    client: TestClient, anon_client: TestClient, settings: Settings
) -> None:
    first, second = await sign_up(anon_client), await sign_up(anon_client)
    key = {"Idempotency-Key": "shared-key"}
    one = await buy(anon_client, first, await mint(client), **key)
    two = await buy(anon_client, second, await mint(client), **key)
    assert (one.status, two.status) == (201, 201)
    assert "Idempotent-Replayed" not in two.headers
    assert await skus(anon_client, first) == await skus(anon_client, second) == [SKU]
    assert purchases_of(settings, first) == purchases_of(settings, second) == 1


@pytest.mark.usefixtures("premium")
async def test_concurrent_requests_with_one_key_have_one_effect(
    anon_client: TestClient, settings: Settings, account: Account, receipt: str
) -> None:
    async def attempt() -> tuple[int, bytes, bool]:
        resp = await buy(anon_client, account, receipt, **{"Idempotency-Key": "racing"})
        return resp.status, await resp.read(), "Idempotent-Replayed" in resp.headers

    results = await asyncio.gather(*(attempt() for _ in range(5)))
    assert {status for status, _, _ in results} == {201}
    assert len({body for _, body, _ in results}) == 1
    assert sorted(replayed for _, _, replayed in results) == [False, True, True, True, True]
    assert purchases_of(settings, account) == 1


async def test_a_refused_request_leaves_the_key_unused(
    client: TestClient, anon_client: TestClient, account: Account, receipt: str
) -> None:
    key = {"Idempotency-Key": "too-early"}
    assert (await buy(anon_client, account, receipt, **key)).status == 404  # not on sale yet
    await premium_pack(client)
    resp = await buy(anon_client, account, receipt, **key)
    assert resp.status == 201
    assert "Idempotent-Replayed" not in resp.headers


async def test_admin_writes_replay_too(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    key = {"Idempotency-Key": "grant-once"}
    body = {"account_id": account.id, "sku": SKU}
    first = await client.post(GRANTS, json=body, headers=key)
    await revoke(client, account)
    again = await client.post(GRANTS, json=body, headers=key)
    assert (first.status, again.status) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await skus(anon_client, account) == []


@pytest.mark.parametrize("key", ["", "k" * 256])
@pytest.mark.usefixtures("premium")
async def test_invalid_key_is_400(
    client: TestClient, anon_client: TestClient, key: str, account: Account
) -> None:
    resp = await buy(anon_client, account, await mint(client), **{"Idempotency-Key": key})
    assert resp.status == 400
    assert await skus(anon_client, account) == []
