"""The curated pack store's catalog: publishing, browsing, paging, caching and importing.

Everything goes through a real syncd over HTTP except ``import_catalog`` (which has no route
or command yet) and the single-flight cache's own unit tests.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from syncd.errors import CouchError
from syncd.services.catalog import ListParams, SingleFlightCache
from syncd.web.keys import SERVICES

PACKS = "/v1/store/packs"
ADMIN_PACKS = "/v1/admin/store/packs"
_slugs = itertools.count()


def pack_body(**fields: Any) -> dict[str, Any]:
    """A valid admin pack; ``fields`` override or add."""
    body: dict[str, Any] = {
        "slug": f"pack-{next(_slugs)}",
        "title": "A pack",
        "description": "",
        "language": "en",
        "tags": [],
        "tier": "free",
        "prompts": [{"id": "p1", "text": "Say hello."}],
    }
    body.update(fields)
    return body


async def create_pack(client: TestClient, **fields: Any) -> dict[str, Any]:
    resp = await client.post(ADMIN_PACKS, json=pack_body(**fields))
    assert resp.status == 201, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def update_pack(client: TestClient, pack: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = pack_body(
        slug=pack["slug"],
        title=pack["title"],
        description=pack["description"],
        language=pack["language"],
        tags=pack["tags"],
    )
    body.update(fields)
    resp = await client.put(f"{ADMIN_PACKS}/{pack['id']}", json=body)
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def listing(client: TestClient, **query: Any) -> dict[str, Any]:
    resp = await client.get(PACKS, params={k: str(v) for k, v in query.items()})
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def listed_ids(client: TestClient, **query: Any) -> list[str]:
    return [p["id"] for p in (await listing(client, limit=100, **query))["items"]]


def cursor_of(data: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


# publishing ---------------------------------------------------------------------------------


async def test_admin_creates_a_pack(client: TestClient) -> None:
    body = pack_body(
        slug="daily-english",
        title="Daily English",
        description="Everyday phrases",
        language="en-GB",
        tags=["travel", "basics", "travel"],
        prompts=[{"id": "a", "text": "Good morning"}, {"id": "b", "text": "Thank you"}],
    )
    resp = await client.post(ADMIN_PACKS, json=body)
    assert resp.status == 201, await resp.text()
    pack = await resp.json()
    assert isinstance(pack["id"], str) and pack["id"]
    assert pack == {
        "id": pack["id"],
        "slug": "daily-english",
        "title": "Daily English",
        "description": "Everyday phrases",
        "language": "en-GB",
        "tags": ["basics", "travel"],
        "tier": "free",
        "sku": None,
        "version": 1,
        "prompt_count": 2,
        "created_at": pack["created_at"],
        "updated_at": pack["created_at"],
    }
    resp = await client.get(f"{PACKS}/{pack['id']}")
    assert resp.status == 200
    assert await resp.json() == pack


async def test_created_pack_content_has_its_prompts_in_order(client: TestClient) -> None:
    prompts = [{"id": "z", "text": "last id, first place"}, {"id": "a", "text": "second"}]
    pack = await create_pack(client, prompts=prompts)
    resp = await client.get(f"{PACKS}/{pack['id']}/content")
    assert resp.status == 200
    assert await resp.json() == {"id": pack["id"], "version": 1, "prompts": prompts}


async def test_premium_pack_keeps_its_sku(client: TestClient) -> None:
    pack = await create_pack(client, tier="premium", sku="com.example.pro")
    assert (pack["tier"], pack["sku"]) == ("premium", "com.example.pro")


async def test_free_pack_drops_a_sku(client: TestClient) -> None:
    pack = await create_pack(client, tier="free", sku="ignored")
    assert pack["sku"] is None


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"slug": "Bad Slug"}, id="slug-uppercase-space"),
        pytest.param({"slug": ""}, id="slug-empty"),
        pytest.param({"slug": "-leading-dash"}, id="slug-leading-dash"),
        pytest.param({"slug": "x" * 101}, id="slug-too-long"),
        pytest.param({"slug": 7}, id="slug-not-string"),
        pytest.param({"slug": None}, id="slug-missing"),
        pytest.param({"title": ""}, id="title-empty"),
        pytest.param({"title": "t" * 201}, id="title-too-long"),
        pytest.param({"title": None}, id="title-missing"),
        pytest.param({"language": "english"}, id="language-not-bcp47"),
        pytest.param({"language": None}, id="language-missing"),
        pytest.param({"prompts": "hello"}, id="prompts-not-list"),
        pytest.param({"prompts": ["hello"]}, id="prompt-not-object"),
        pytest.param({"prompts": [{"id": "a", "text": ""}]}, id="prompt-empty-text"),
        pytest.param({"prompts": [{"text": "no id"}]}, id="prompt-without-id"),
        pytest.param(
            {"prompts": [{"id": "a", "text": "one"}, {"id": "a", "text": "two"}]},
            id="prompt-ids-not-unique",
        ),
        pytest.param({"tier": "premium"}, id="premium-without-sku"),
        pytest.param({"tier": "premium", "sku": "has space"}, id="premium-bad-sku"),
        pytest.param({"tier": "gold"}, id="unknown-tier"),
        pytest.param({"tags": ["Upper"]}, id="tag-uppercase"),
        pytest.param({"tags": "travel"}, id="tags-not-list"),
        pytest.param({"description": 5}, id="description-not-string"),
        pytest.param({"description": "d" * 2001}, id="description-too-long"),
    ],
)
async def test_create_refuses_an_invalid_pack(client: TestClient, fields: dict[str, Any]) -> None:
    body = pack_body(**fields)
    for name, value in fields.items():
        if value is None:
            del body[name]
    resp = await client.post(ADMIN_PACKS, json=body)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"] == "bad_request"
    assert await listed_ids(client) == []


async def test_create_refuses_a_body_that_is_not_an_object(client: TestClient) -> None:
    resp = await client.post(ADMIN_PACKS, json=[pack_body()])
    assert resp.status == 400


async def test_duplicate_slug_is_a_conflict(client: TestClient) -> None:
    first = await create_pack(client, slug="same-slug")
    resp = await client.post(ADMIN_PACKS, json=pack_body(slug="same-slug", title="Other"))
    assert resp.status == 409
    assert (await resp.json())["error"] == "conflict"
    assert await listed_ids(client) == [first["id"]]


async def test_update_to_another_packs_slug_is_a_conflict(client: TestClient) -> None:
    await create_pack(client, slug="taken")
    pack = await create_pack(client, slug="mine")
    resp = await client.put(f"{ADMIN_PACKS}/{pack['id']}", json=pack_body(slug="taken"))
    assert resp.status == 409


async def test_update_bumps_the_version_and_replaces_content(client: TestClient) -> None:
    pack = await create_pack(client, title="Old title")
    updated = await update_pack(
        client, pack, title="New title", prompts=[{"id": "n", "text": "New prompt"}]
    )
    assert updated["id"] == pack["id"]
    assert updated["version"] == 2
    assert updated["title"] == "New title"
    assert updated["created_at"] == pack["created_at"]
    assert (await (await client.get(f"{PACKS}/{pack['id']}")).json())["version"] == 2
    content = await (await client.get(f"{PACKS}/{pack['id']}/content")).json()
    assert content == {
        "id": pack["id"],
        "version": 2,
        "prompts": [{"id": "n", "text": "New prompt"}],
    }
    again = await update_pack(client, updated, title="Third")
    assert again["version"] == 3


async def test_update_of_an_unknown_pack_is_404(client: TestClient) -> None:
    resp = await client.put(f"{ADMIN_PACKS}/nosuchpack", json=pack_body())
    assert resp.status == 404


async def test_unpublish_hides_the_pack(client: TestClient, anon_client: TestClient) -> None:
    kept = await create_pack(client)
    gone = await create_pack(client)
    resp = await client.delete(f"{ADMIN_PACKS}/{gone['id']}")
    assert resp.status == 200
    assert await resp.json() == {"ok": True, "id": gone["id"], "published": False}
    assert await listed_ids(anon_client) == [kept["id"]]
    for path in (f"{PACKS}/{gone['id']}", f"{PACKS}/{gone['id']}/content"):
        resp = await anon_client.get(path)
        assert resp.status == 404, path


async def test_unpublish_of_an_unknown_pack_is_404(client: TestClient) -> None:
    resp = await client.delete(f"{ADMIN_PACKS}/nosuchpack")
    assert resp.status == 404


async def test_get_of_an_unknown_pack_is_404(anon_client: TestClient) -> None:
    resp = await anon_client.get(f"{PACKS}/nosuchpack")
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


# listing ------------------------------------------------------------------------------------


async def test_empty_catalog_lists_nothing(anon_client: TestClient) -> None:
    assert await listing(anon_client) == {"items": [], "next_cursor": None}


async def test_default_sort_is_most_recently_updated_first(client: TestClient) -> None:
    a = await create_pack(client, title="A")
    b = await create_pack(client, title="B")
    c = await create_pack(client, title="C")
    assert await listed_ids(client) == [c["id"], b["id"], a["id"]]
    await update_pack(client, a, title="A again")
    assert await listed_ids(client) == [a["id"], c["id"], b["id"]]
    assert await listed_ids(client, sort="updated") == [a["id"], c["id"], b["id"]]


async def test_sort_by_title(client: TestClient) -> None:
    titles = ["banana", "Apple", "cherry", "apple pie"]
    packs = {t: await create_pack(client, title=t) for t in titles}
    ids = await listed_ids(client, sort="title")
    # SQLite's binary collation: uppercase before lowercase
    assert ids == [packs[t]["id"] for t in sorted(titles)]


async def test_unknown_sort_is_400(anon_client: TestClient) -> None:
    resp = await anon_client.get(PACKS, params={"sort": "popular"})
    assert resp.status == 400


async def test_filter_by_language(client: TestClient) -> None:
    en = await create_pack(client, language="en")
    await create_pack(client, language="fr")
    pt = await create_pack(client, language="pt-BR")
    assert await listed_ids(client, language="en") == [en["id"]]
    assert await listed_ids(client, language="pt-BR") == [pt["id"]]
    assert await listed_ids(client, language="de") == []


async def test_filter_by_tag(client: TestClient) -> None:
    travel = await create_pack(client, tags=["travel", "basics"])
    both = await create_pack(client, tags=["food", "travel"])
    await create_pack(client, tags=["food"])
    await create_pack(client, tags=["travelling"])
    assert await listed_ids(client, tag="travel") == [both["id"], travel["id"]]
    assert await listed_ids(client, tag="basics") == [travel["id"]]


async def test_filter_by_tier(client: TestClient) -> None:
    free = await create_pack(client)
    premium = await create_pack(client, tier="premium", sku="pro")
    assert await listed_ids(client, tier="free") == [free["id"]]
    assert await listed_ids(client, tier="premium") == [premium["id"]]
    resp = await client.get(PACKS, params={"tier": "gold"})
    assert resp.status == 400


async def test_filters_combine(client: TestClient) -> None:
    hit = await create_pack(client, language="fr", tags=["food"], tier="premium", sku="fr-food")
    await create_pack(client, language="fr", tags=["food"])
    await create_pack(client, language="en", tags=["food"], tier="premium", sku="en-food")
    await create_pack(client, language="fr", tags=["travel"], tier="premium", sku="fr-travel")
    assert await listed_ids(client, language="fr", tag="food", tier="premium") == [hit["id"]]


async def test_search_matches_title_and_description(client: TestClient) -> None:
    in_title = await create_pack(client, title="Ordering coffee", description="At a cafe")
    in_description = await create_pack(client, title="Mornings", description="Coffee and toast")
    await create_pack(client, title="Evenings", description="Tea")
    assert set(await listed_ids(client, q="coffee")) == {in_title["id"], in_description["id"]}
    assert await listed_ids(client, q="cafe") == [in_title["id"]]
    assert await listed_ids(client, q="juice") == []


async def test_search_needs_every_word(client: TestClient) -> None:
    both = await create_pack(client, title="Coffee", description="with milk")
    await create_pack(client, title="Coffee", description="black")
    assert await listed_ids(client, q="coffee milk") == [both["id"]]


async def test_search_matches_a_prefix_of_the_last_word_only(client: TestClient) -> None:
    pack = await create_pack(client, title="Restaurant phrases", description="Ordering food")
    assert await listed_ids(client, q="resta") == [pack["id"]]
    assert await listed_ids(client, q="ordering fo") == [pack["id"]]
    assert await listed_ids(client, q="orde food") == []  # only the last word is a prefix


async def test_search_words_with_query_syntax_are_plain_words(client: TestClient) -> None:
    pack = await create_pack(client, title='Say "hello" OR NOT goodbye')
    for q in ['"hello', "hello OR", "NOT", "hello*", "(hello", "hello AND"]:
        resp = await client.get(PACKS, params={"q": q})
        assert resp.status == 200, (q, await resp.text())
    assert await listed_ids(client, q='"hello"') == [pack["id"]]


async def test_search_words_with_nul_or_control_characters_are_answered(
    client: TestClient,
) -> None:
    pack = await create_pack(client, title="Coffee with milk")
    for q in ["\x00", "a\x00b", "coffee\x00", "\x01Z\x07"]:
        resp = await client.get(PACKS, params={"q": q})
        assert resp.status == 200, (q, await resp.text())
    assert await listed_ids(client, q="coffee\x00milk") == [pack["id"]]  # NUL separates words


async def test_blank_search_lists_everything(client: TestClient) -> None:
    pack = await create_pack(client)
    assert await listed_ids(client, q="   ") == [pack["id"]]


async def test_search_follows_updates(client: TestClient) -> None:
    pack = await create_pack(client, title="Weather talk", description="Rain and sun")
    await update_pack(client, pack, title="Small talk", description="Sports")
    assert await listed_ids(client, q="weather") == []
    assert await listed_ids(client, q="rain") == []
    assert await listed_ids(client, q="sports") == [pack["id"]]


async def test_search_combines_with_filters(client: TestClient) -> None:
    fr = await create_pack(client, title="Coffee", language="fr")
    await create_pack(client, title="Coffee", language="en")
    assert await listed_ids(client, q="coffee", language="fr") == [fr["id"]]


@pytest.mark.parametrize("limit", ["0", "-1", "101", "ten", "1.5"])
async def test_limit_out_of_bounds_is_400(anon_client: TestClient, limit: str) -> None:
    resp = await anon_client.get(PACKS, params={"limit": limit})
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"


async def test_limit_bounds_are_inclusive(client: TestClient) -> None:
    packs = [await create_pack(client) for _ in range(2)]
    one = await listing(client, limit=1)
    assert [p["id"] for p in one["items"]] == [packs[1]["id"]]
    assert one["next_cursor"] is not None
    assert len((await listing(client, limit=100))["items"]) == 2


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not a cursor!", id="garbage"),
        pytest.param("é", id="not-ascii"),
        pytest.param(cursor_of([1, 2]), id="not-an-object"),
        pytest.param(cursor_of({"s": 3}), id="no-snapshot"),
        pytest.param(cursor_of({"w": "3", "s": 3}), id="snapshot-not-int"),
        pytest.param(cursor_of({"w": True, "s": 3}), id="snapshot-bool"),
        pytest.param(cursor_of({"w": 3, "s": "x"}), id="position-not-int"),
        pytest.param(cursor_of({"w": 3, "s": [1]}), id="position-a-list"),
        pytest.param(cursor_of({"w": 2**63, "s": 1}), id="snapshot-beyond-64-bits"),
        pytest.param(cursor_of({"w": 3, "s": 2**64 - 1}), id="position-beyond-64-bits"),
        pytest.param(cursor_of({"w": -1, "s": 1}), id="snapshot-negative"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-utf8"),
    ],
)
async def test_invalid_cursor_is_400(anon_client: TestClient, cursor: str) -> None:
    resp = await anon_client.get(PACKS, params={"cursor": cursor})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"] == "bad_request"


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param(cursor_of({"w": 3, "t": 5, "i": "x"}), id="title-not-string"),
        pytest.param(cursor_of({"w": 3, "t": "a", "i": None}), id="id-not-string"),
    ],
)
async def test_invalid_title_cursor_is_400(anon_client: TestClient, cursor: str) -> None:
    resp = await anon_client.get(PACKS, params={"cursor": cursor, "sort": "title"})
    assert resp.status == 400, await resp.text()


async def test_cursor_of_the_other_sort_is_400(client: TestClient) -> None:
    for _ in range(3):
        await create_pack(client)
    by_title = (await listing(client, sort="title", limit=1))["next_cursor"]
    by_update = (await listing(client, limit=1))["next_cursor"]
    resp = await client.get(PACKS, params={"cursor": by_title})
    assert resp.status == 400
    resp = await client.get(PACKS, params={"cursor": by_update, "sort": "title"})
    assert resp.status == 400


# paging -------------------------------------------------------------------------------------


async def walk(client: TestClient, **query: Any) -> list[str]:
    """Every id of a listing, following ``next_cursor`` to the end."""
    ids: list[str] = []
    cursor = None
    while True:
        params = dict(query, **({"cursor": cursor} if cursor else {}))
        page = await listing(client, **params)
        ids += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


@pytest.mark.parametrize("sort", ["updated", "title"])
async def test_pages_cover_the_catalog_once(client: TestClient, sort: str) -> None:
    packs = [await create_pack(client, title=f"Pack {i % 4}") for i in range(11)]  # equal titles
    ids = await walk(client, sort=sort, limit=3)
    assert sorted(ids) == sorted(p["id"] for p in packs)
    assert ids == await listed_ids(client, sort=sort)


async def test_last_full_page_has_no_cursor(client: TestClient) -> None:
    for _ in range(4):
        await create_pack(client)
    first = await listing(client, limit=2)
    second = await listing(client, limit=2, cursor=first["next_cursor"])
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None


@pytest.mark.parametrize("sort", ["updated", "title"])
async def test_paging_is_stable_while_packs_are_added_and_updated(
    client: TestClient, sort: str
) -> None:
    """Every pack that existed when the listing began appears exactly once."""
    before = [await create_pack(client, title=f"Title {i:02d}") for i in range(12)]
    first = await listing(client, sort=sort, limit=4)
    seen = [p["id"] for p in first["items"]]
    assert len(seen) == 4 and first["next_cursor"]
    by_id = {p["id"]: p for p in before}
    unseen = [p for p in before if p["id"] not in seen]

    # between pages: new packs (sorting first and last), packs already seen updated to sort
    # after the cursor, packs not seen yet updated to sort before it, one pack updated twice
    await create_pack(client, title="AAA new first")
    await create_pack(client, title="zzz new last")
    for pack_id in seen[:2]:
        await update_pack(client, by_id[pack_id], title="zzz seen, moved last")
    for pack in unseen[:3]:
        await update_pack(client, pack, title="AAA unseen, moved first")
    twice = await update_pack(client, unseen[-1], title="Title 99")
    await update_pack(client, twice, title="AAA twice")

    rest = await walk(client, sort=sort, limit=4, cursor=first["next_cursor"])
    everything = seen + rest
    assert len(everything) == len(set(everything)), "a pack was listed twice"
    assert set(everything) == set(by_id), "a pack was skipped or a new one slipped in"

    # a new listing sees the catalog as it is now
    now = await walk(client, sort=sort, limit=4)
    assert len(now) == len(set(now)) == len(before) + 2


async def test_paging_keeps_to_the_snapshot_when_a_pack_is_unpublished(
    client: TestClient,
) -> None:
    """A pack unpublished after the listing began is still on its later page (the listing is
    the catalog as it was); a new listing leaves it out."""
    packs = [await create_pack(client) for _ in range(6)]
    first = await listing(client, limit=3)
    resp = await client.delete(f"{ADMIN_PACKS}/{packs[0]['id']}")  # on the last page
    assert resp.status == 200
    rest = await walk(client, limit=3, cursor=first["next_cursor"])
    everything = [p["id"] for p in first["items"]] + rest
    assert sorted(everything) == sorted(p["id"] for p in packs)
    assert packs[0]["id"] not in await walk(client, limit=3)


async def test_paged_items_show_the_current_metadata(client: TestClient) -> None:
    packs = [await create_pack(client, title=f"T{i}") for i in range(4)]
    first = await listing(client, limit=2)
    await update_pack(client, packs[0], title="Renamed")
    second = await listing(client, limit=2, cursor=first["next_cursor"])
    renamed = next(p for p in second["items"] if p["id"] == packs[0]["id"])
    assert (renamed["title"], renamed["version"]) == ("Renamed", 2)


# HTTP caching -------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["list", "get", "content"])
async def test_etag_and_if_none_match(client: TestClient, what: str) -> None:
    pack = await create_pack(client)
    path = {
        "list": PACKS,
        "get": f"{PACKS}/{pack['id']}",
        "content": f"{PACKS}/{pack['id']}/content",
    }[what]
    resp = await client.get(path)
    assert resp.status == 200
    etag = resp.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert resp.headers["Cache-Control"] == (
        "private, max-age=60" if what == "content" else "public, max-age=60"
    )
    again = await client.get(path, headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["ETag"] == etag
    assert "Cache-Control" in again.headers
    other = await client.get(path, headers={"If-None-Match": '"something-else"'})
    assert other.status == 200


async def test_etag_changes_when_the_pack_changes(client: TestClient) -> None:
    pack = await create_pack(client)
    for path in (PACKS, f"{PACKS}/{pack['id']}"):
        etag = (await client.get(path)).headers["ETag"]
        await update_pack(client, pack, title=f"Changed {path}")
        resp = await client.get(path, headers={"If-None-Match": etag})
        assert resp.status == 200, path
        assert resp.headers["ETag"] != etag


async def test_etag_differs_by_query(client: TestClient) -> None:
    await create_pack(client, language="en")
    await create_pack(client, language="fr")
    etag = (await client.get(PACKS)).headers["ETag"]
    resp = await client.get(PACKS, params={"language": "fr"}, headers={"If-None-Match": etag})
    assert resp.status == 200


# the in-process cache -----------------------------------------------------------------------


async def test_a_write_invalidates_the_cached_listing(
    client: TestClient, anon_client: TestClient
) -> None:
    first = await create_pack(client)
    assert await listed_ids(anon_client) == [first["id"]]  # now cached
    second = await create_pack(client)
    assert await listed_ids(anon_client) == [second["id"], first["id"]]
    await update_pack(client, first, title="Updated")
    assert await listed_ids(anon_client) == [first["id"], second["id"]]
    await anon_client.get(f"{PACKS}/{second['id']}")  # cached
    assert (await client.delete(f"{ADMIN_PACKS}/{second['id']}")).status == 200
    assert await listed_ids(anon_client) == [first["id"]]
    assert (await anon_client.get(f"{PACKS}/{second['id']}")).status == 404


async def test_repeated_reads_are_served_from_the_cache(
    app: web.Application, client: TestClient, anon_client: TestClient
) -> None:
    pack = await create_pack(client)
    cache = app[SERVICES].catalog.cache
    await listing(anon_client)
    await anon_client.get(f"{PACKS}/{pack['id']}")
    loads = cache.loads
    for _ in range(5):
        await listing(anon_client)
        await anon_client.get(f"{PACKS}/{pack['id']}")
    assert cache.loads == loads


async def test_concurrent_identical_listings_after_a_write_load_once(
    app: web.Application, server: TestServer, client: TestClient, anon_client: TestClient
) -> None:
    for _ in range(3):
        await create_pack(client)
    await listing(anon_client, limit=2)
    await create_pack(client)  # clears the cache
    catalog = app[SERVICES].catalog
    loads = catalog.cache.loads

    async def fetch() -> bytes:
        resp = await anon_client.get(PACKS, params={"limit": "2"})
        assert resp.status == 200
        return await resp.read()

    # Borrow every reader connection so that no listing can finish before all 20 requests
    # are being handled at once (else a late request would simply find the cached page).
    pool = catalog.readers
    held = [await pool._free.get() for _ in pool._all]
    try:
        tasks = [asyncio.create_task(fetch()) for _ in range(20)]
        async with asyncio.timeout(10):
            while server.handler.requests_count < 20:  # no event tells when they arrived
                await asyncio.sleep(0.01)
    finally:
        for conn in held:
            pool._free.put_nowait(conn)
    bodies = await asyncio.gather(*tasks)
    assert catalog.cache.loads == loads + 1
    assert len(set(bodies)) == 1


async def test_concurrent_identical_listings_share_one_query(
    app: web.Application, client: TestClient
) -> None:
    await create_pack(client)
    catalog = app[SERVICES].catalog
    loads = catalog.cache.loads
    pages = await asyncio.gather(*(catalog.list_packs(ListParams(limit=5)) for _ in range(20)))
    assert catalog.cache.loads == loads + 1
    assert all(page is pages[0] for page in pages)


class HeldLoad:
    """A cache load that says when it has started and ends only once released: with
    ``value``, or raising ``error``."""

    def __init__(self, value: object = None, error: Exception | None = None) -> None:
        self.value = value
        self.error = error
        self.started = asyncio.Event()
        self._released = asyncio.Event()

    def release(self) -> None:
        self._released.set()

    async def __call__(self) -> Any:
        self.started.set()
        await self._released.wait()
        if self.error is not None:
            raise self.error
        return self.value


def ready(value: object) -> Callable[[], Awaitable[Any]]:
    """A cache load that returns ``value`` at once."""

    async def load() -> Any:
        return value

    return load


async def waiting_on(
    cache: SingleFlightCache, load: HeldLoad, callers: int = 1
) -> list[asyncio.Task[Any]]:
    """``callers`` tasks asking ``cache`` for ``"k"`` through ``load``, started in order; returns
    once the load has started, when every task has reached the cache."""
    tasks = [asyncio.create_task(cache.get("k", load)) for _ in range(callers)]
    await load.started.wait()
    return tasks


async def test_single_flight_shares_one_load_among_concurrent_callers() -> None:
    cache = SingleFlightCache()
    load = HeldLoad([1, 2, 3])
    tasks = await waiting_on(cache, load, callers=20)
    assert cache.loads == 1
    load.release()
    results = await asyncio.gather(*tasks)
    assert all(r is results[0] for r in results)
    assert cache.loads == 1
    assert await cache.get("k", load) is results[0]
    assert cache.loads == 1


async def test_single_flight_shares_a_failure_and_caches_nothing() -> None:
    cache = SingleFlightCache()
    failing = HeldLoad(error=CouchError(400, "bad_request", "no"))
    tasks = await waiting_on(cache, failing, callers=5)
    failing.release()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, CouchError) for r in results)
    assert cache.loads == 1
    assert await cache.get("k", ready(7)) == 7
    assert cache.loads == 2


async def test_single_flight_does_not_keep_a_value_loaded_across_a_clear() -> None:
    cache = SingleFlightCache()
    stale = HeldLoad("stale")
    (task,) = await waiting_on(cache, stale)
    cache.clear()  # a write lands while the load runs
    stale.release()
    assert await task == "stale"  # the caller that asked before the write gets its answer
    assert await cache.get("k", ready("fresh")) == "fresh"


async def test_single_flight_caller_cancelled_does_not_cancel_the_others() -> None:
    cache = SingleFlightCache()
    load = HeldLoad("value")
    first, second = await waiting_on(cache, load, callers=2)  # both wait on the one load
    second.cancel()
    load.release()
    assert await first == "value"
    with pytest.raises(asyncio.CancelledError):
        await second


async def test_single_flight_load_survives_the_first_caller_hanging_up() -> None:
    """The caller that started a load is cancelled (its client hung up): the others still
    get the value, and it is cached."""
    cache = SingleFlightCache()
    load = HeldLoad("value")
    first, second = await waiting_on(cache, load, callers=2)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    load.release()
    assert await second == "value"
    assert await cache.get("k", load) == "value"
    assert cache.loads == 1


async def test_single_flight_caller_after_a_clear_starts_a_new_load() -> None:
    """A load that began before a write may miss it: callers after the write do not join it."""
    cache = SingleFlightCache()
    stale = HeldLoad("stale")
    (before,) = await waiting_on(cache, stale)
    cache.clear()
    assert await cache.get("k", ready("fresh")) == "fresh"
    stale.release()
    assert await before == "stale"
    assert await cache.get("k", stale) == "fresh"  # the stale load did not replace it
    assert cache.loads == 2


# importing ----------------------------------------------------------------------------------


async def test_import_creates_packs_by_slug(app: web.Application, client: TestClient) -> None:
    catalog = app[SERVICES].catalog
    result = await catalog.import_catalog(
        {
            "packs": [
                pack_body(slug="imported-one", title="Imported one"),
                pack_body(slug="imported-two", title="Imported two", tier="premium", sku="two"),
            ]
        }
    )
    assert result == {"created": 2, "updated": 0}
    packs = (await listing(client, sort="title"))["items"]
    assert [(p["slug"], p["version"], p["tier"]) for p in packs] == [
        ("imported-one", 1, "free"),
        ("imported-two", 1, "premium"),
    ]


async def test_import_updates_an_existing_slug(app: web.Application, client: TestClient) -> None:
    existing = await create_pack(client, slug="existing", title="Before")
    result = await app[SERVICES].catalog.import_catalog(
        {
            "packs": [
                pack_body(slug="existing", title="After", prompts=[{"id": "x", "text": "New"}]),
                pack_body(slug="brand-new"),
            ]
        }
    )
    assert result == {"created": 1, "updated": 1}
    resp = await client.get(f"{PACKS}/{existing['id']}")
    pack = await resp.json()
    assert (pack["title"], pack["version"], pack["id"]) == ("After", 2, existing["id"])
    content = await (await client.get(f"{PACKS}/{existing['id']}/content")).json()
    assert content["prompts"] == [{"id": "x", "text": "New"}]
    assert len(await listed_ids(client)) == 2


async def test_import_of_an_unpublished_slug_publishes_it_again(
    app: web.Application, client: TestClient
) -> None:
    pack = await create_pack(client, slug="comeback")
    assert (await client.delete(f"{ADMIN_PACKS}/{pack['id']}")).status == 200
    await app[SERVICES].catalog.import_catalog({"packs": [pack_body(slug="comeback")]})
    assert await listed_ids(client) == [pack["id"]]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param([], id="not-an-object"),
        pytest.param({}, id="no-packs"),
        pytest.param({"packs": {"slug": "x"}}, id="packs-not-a-list"),
        pytest.param(
            {"packs": [pack_body(slug="good-one"), pack_body(slug="Bad Slug")]}, id="bad-pack"
        ),
        pytest.param(
            {"packs": [pack_body(slug="good-two"), pack_body(tier="premium")]}, id="no-sku"
        ),
    ],
)
async def test_import_of_a_bad_file_writes_nothing(
    app: web.Application, client: TestClient, data: object
) -> None:
    existing = await create_pack(client, slug="good-one", title="Untouched")
    with pytest.raises(CouchError) as caught:
        await app[SERVICES].catalog.import_catalog(data)
    assert caught.value.status == 400
    if isinstance(data, dict) and isinstance(data.get("packs"), list):
        assert "packs[1]" in caught.value.reason
    packs = (await listing(client))["items"]
    assert [(p["id"], p["title"], p["version"]) for p in packs] == [
        (existing["id"], "Untouched", 1)
    ]
