"""Installing a store pack into the caller's own database as a ``pack`` document.

A real syncd over HTTP; the caller is an anonymous account (Bearer token) that reads its own
database (``account.db``) through the CouchDB document API.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp.test_utils import TestClient
from conftest import Account, sign_up

PACKS = "/v1/store/packs"
ADMIN_PACKS = "/v1/admin/store/packs"
SKU = "com.example.premium"
PROMPTS = [{"id": "p1", "text": "Good morning"}, {"id": "p2", "text": "Good night"}]


def pack_body(slug: str, **fields: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "title": "Greetings",
        "description": "Hello and goodbye",
        "language": "en",
        "tags": ["basics"],
        "prompts": PROMPTS,
        **fields,
    }


async def create_pack(client: TestClient, **fields: Any) -> dict[str, Any]:
    resp = await client.post(ADMIN_PACKS, json=pack_body("pack-" + uuid.uuid4().hex[:10], **fields))
    assert resp.status == 201, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def update_pack(client: TestClient, pack: dict[str, Any], **fields: Any) -> dict[str, Any]:
    resp = await client.put(f"{ADMIN_PACKS}/{pack['id']}", json=pack_body(pack["slug"], **fields))
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def install(
    http: TestClient, account: Account, pack: dict[str, Any], key: str | None = None
) -> Any:
    headers = dict(account.headers, **({"Idempotency-Key": key} if key else {}))
    return await http.post(f"{PACKS}/{pack['id']}/install", headers=headers)


def doc_id(pack: dict[str, Any]) -> str:
    return f"pack:store-{pack['id']}"


async def read_doc(http: TestClient, account: Account, pack: dict[str, Any]) -> Any:
    return await http.get(f"/{account.db}/{doc_id(pack)}", headers=account.headers)


async def all_doc_ids(http: TestClient, account: Account) -> list[str]:
    resp = await http.get(f"/{account.db}/_all_docs", headers=account.headers)
    assert resp.status == 200, await resp.text()
    return [row["id"] for row in (await resp.json())["rows"]]


def generation(rev: str) -> int:
    return int(rev.split("-", 1)[0])


async def test_install_writes_the_pack_into_the_callers_database(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    pack = await create_pack(client)
    resp = await install(anon_client, account, pack)
    assert resp.status == 201, await resp.text()
    result = await resp.json()
    assert result == {"ok": True, "id": doc_id(pack), "rev": result["rev"], "status": "installed"}
    assert generation(result["rev"]) == 1

    resp = await read_doc(anon_client, account, pack)
    assert resp.status == 200
    doc = await resp.json()
    assert (doc["_id"], doc["_rev"]) == (doc_id(pack), result["rev"])
    assert doc["type"] == "pack"
    assert (doc["title"], doc["language"], doc["description"], doc["tags"]) == (
        "Greetings",
        "en",
        "Hello and goodbye",
        ["basics"],
    )
    assert doc["prompts"] == PROMPTS
    assert doc["source"] == {"kind": "store", "pack_id": pack["id"], "version": 1}
    assert await all_doc_ids(anon_client, account) == [doc_id(pack)]


async def test_install_touches_no_other_database(
    client: TestClient, anon_client: TestClient
) -> None:
    pack = await create_pack(client)
    installer, bystander = await sign_up(anon_client), await sign_up(anon_client)
    assert (await install(anon_client, installer, pack)).status == 201
    assert await all_doc_ids(anon_client, bystander) == []


async def test_install_again_is_unchanged(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    pack = await create_pack(client)
    first = await (await install(anon_client, account, pack)).json()
    resp = await install(anon_client, account, pack)
    assert resp.status == 200
    again = await resp.json()
    assert again == {"ok": True, "id": doc_id(pack), "rev": first["rev"], "status": "unchanged"}
    doc = await (await read_doc(anon_client, account, pack)).json()
    assert doc["_rev"] == first["rev"]


async def test_install_after_a_store_update_writes_a_new_revision(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    pack = await create_pack(client)
    first = await (await install(anon_client, account, pack)).json()
    new_prompts = [{"id": "p3", "text": "See you"}]
    updated = await update_pack(client, pack, title="Greetings 2", prompts=new_prompts)
    assert updated["version"] == 2

    resp = await install(anon_client, account, pack)
    assert resp.status == 201
    result = await resp.json()
    assert result["status"] == "updated"
    assert result["id"] == doc_id(pack)
    assert generation(result["rev"]) == 2
    assert result["rev"] != first["rev"]

    doc = await (await read_doc(anon_client, account, pack)).json()
    assert doc["_rev"] == result["rev"]
    assert (doc["title"], doc["prompts"]) == ("Greetings 2", new_prompts)
    assert doc["source"]["version"] == 2
    assert await all_doc_ids(anon_client, account) == [doc_id(pack)]
    resp = await anon_client.get(
        f"/{account.db}/{doc_id(pack)}", params={"revs_info": "true"}, headers=account.headers
    )
    revs = [r["rev"] for r in (await resp.json())["_revs_info"]]
    assert revs[:2] == [result["rev"], first["rev"]]  # the new revision follows the first


async def test_concurrent_installs_write_one_revision(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    pack = await create_pack(client)
    responses = await asyncio.gather(*(install(anon_client, account, pack) for _ in range(5)))
    results = [(r.status, await r.json()) for r in responses]
    assert sorted(status for status, _ in results) == [200, 200, 200, 200, 201]
    assert sorted(body["status"] for _, body in results) == ["installed"] + ["unchanged"] * 4
    assert len({body["rev"] for _, body in results}) == 1
    assert generation(results[0][1]["rev"]) == 1
    assert await all_doc_ids(anon_client, account) == [doc_id(pack)]


async def test_update_keeps_created_at(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    pack = await create_pack(client)
    await install(anon_client, account, pack)
    created = (await (await read_doc(anon_client, account, pack)).json())["created_at"]
    await update_pack(client, pack, title="Newer")
    await install(anon_client, account, pack)
    doc = await (await read_doc(anon_client, account, pack)).json()
    assert doc["created_at"] == created
    assert doc["updated_at"] >= created


async def test_premium_install_without_entitlement_is_403(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    pack = await create_pack(client, tier="premium", sku=SKU)
    resp = await install(anon_client, account, pack)
    assert resp.status == 403
    body = await resp.json()
    assert body["error"] == "entitlement_required"
    assert SKU in body["reason"]
    assert await all_doc_ids(anon_client, account) == []


async def test_premium_install_with_an_entitlement(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    pack = await create_pack(client, tier="premium", sku=SKU)
    resp = await client.post(
        "/v1/admin/store/entitlements", json={"account_id": account.id, "sku": SKU}
    )
    assert resp.status == 201
    resp = await install(anon_client, account, pack)
    assert resp.status == 201
    assert (await resp.json())["status"] == "installed"
    doc = await (await read_doc(anon_client, account, pack)).json()
    assert doc["prompts"] == PROMPTS


async def test_install_recreates_a_deleted_document(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    pack = await create_pack(client)
    first = await (await install(anon_client, account, pack)).json()
    resp = await anon_client.delete(
        f"/{account.db}/{doc_id(pack)}", params={"rev": first["rev"]}, headers=account.headers
    )
    assert resp.status == 200, await resp.text()
    assert (await read_doc(anon_client, account, pack)).status == 404

    resp = await install(anon_client, account, pack)
    assert resp.status == 201
    result = await resp.json()
    assert result["status"] == "installed"
    doc = await (await read_doc(anon_client, account, pack)).json()
    assert doc["_rev"] == result["rev"]
    assert doc["prompts"] == PROMPTS
    assert await all_doc_ids(anon_client, account) == [doc_id(pack)]


async def test_install_replays_with_an_idempotency_key(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    pack = await create_pack(client)
    first = await install(anon_client, account, pack, key="install-1")
    assert first.status == 201
    first_body = await first.read()
    await update_pack(client, pack, title="Changed meanwhile")  # a second effect would update

    again = await install(anon_client, account, pack, key="install-1")
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.read() == first_body
    doc = await (await read_doc(anon_client, account, pack)).json()
    assert (doc["title"], doc["source"]["version"]) == ("Greetings", 1)


async def test_install_of_an_unknown_pack_is_404(anon_client: TestClient, account: Account) -> None:
    resp = await anon_client.post(f"{PACKS}/nosuchpack/install", headers=account.headers)
    assert resp.status == 404


async def test_install_of_an_unpublished_pack_is_404(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    pack = await create_pack(client)
    assert (await client.delete(f"{ADMIN_PACKS}/{pack['id']}")).status == 200
    assert (await install(anon_client, account, pack)).status == 404


async def test_unpublishing_leaves_installed_copies(
    client: TestClient, anon_client: TestClient, account: Account
) -> None:
    pack = await create_pack(client)
    assert (await install(anon_client, account, pack)).status == 201
    assert (await client.delete(f"{ADMIN_PACKS}/{pack['id']}")).status == 200
    assert (await read_doc(anon_client, account, pack)).status == 200


async def test_the_server_admin_has_no_database_to_install_into(client: TestClient) -> None:
    pack = await create_pack(client)
    resp = await client.post(f"{PACKS}/{pack['id']}/install")
    assert resp.status == 400
