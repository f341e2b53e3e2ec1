"""Abuse reports on shared packs, and moderation: listing, actions and their effects, audit.

One behaviour per test, against a real syncd on a real socket. Reports come from anonymous
accounts; moderators are accounts an admin gave the ``moderator`` role; ``client`` is the
configured server admin (HTTP Basic).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import ADMIN, basic_auth
from test_sharing import (
    PROMPTS,
    Account,
    install,
    running,
    share,
    sign_up,
    status_of,
)

from syncd.config import Settings
from syncd.services.moderation import REASONS


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Reports are limited per account; tests that file many raise the limit (one tests it)."""
    return dataclasses.replace(settings, report_rate_limit="10000/hour")


# --- helpers ------------------------------------------------------------------------------


async def report(http: TestClient, who: Account, code: str, **fields: Any) -> Any:
    body = {"share_code": code, "reason": "spam", **fields}
    return await http.post("/v1/reports", json=body, headers=who.auth)


async def filed(http: TestClient, who: Account, code: str, **fields: Any) -> dict[str, Any]:
    """File a report that must be accepted; the report."""
    resp = await report(http, who, code, **fields)
    assert resp.status in (200, 201), await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def make_moderator(http: TestClient, admin: TestClient) -> Account:
    """A new account an admin gave the moderator role."""
    who = await sign_up(http)
    resp = await admin.put(f"/v1/admin/accounts/{who.id}/roles", json={"roles": ["moderator"]})
    assert resp.status == 200, await resp.text()
    return who


async def resolve(
    http: TestClient, who: Account | None, report_id: str, action: str, **fields: Any
) -> Any:
    """``who`` None: the client's own credentials (the admin's for ``client``)."""
    return await http.post(
        f"/v1/moderation/reports/{report_id}/resolve",
        json={"action": action, **fields},
        headers=who.auth if who else None,
    )


async def resolved(
    http: TestClient, who: Account | None, report_id: str, action: str, **fields: Any
) -> dict[str, Any]:
    resp = await resolve(http, who, report_id, action, **fields)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def list_reports(http: TestClient, query: str = "", who: Account | None = None) -> Any:
    resp = await http.get(f"/v1/moderation/reports{query}", headers=who.auth if who else None)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def shared_pack(http: TestClient, prompts: list[dict[str, str]] | None = None) -> str:
    """A share by a new account; its code."""
    return await share(http, await sign_up(http), prompts=prompts)


# --- filing reports -----------------------------------------------------------------------


async def test_an_anonymous_account_files_a_report(anon_client: TestClient) -> None:
    reporter = await sign_up(anon_client)
    me = await (await anon_client.get("/v1/auth/me", headers=reporter.auth)).json()
    assert me["account"]["anonymous"] is True
    code = await shared_pack(anon_client)
    resp = await report(anon_client, reporter, code, prompt_id="p1", reason="hate", note="rude")
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["share_code"] == code
    assert body["prompt_id"] == "p1"
    assert (body["reason"], body["note"]) == ("hate", "rude")
    assert (body["status"], body["resolution"]) == ("open", None)
    assert body["id"]


async def test_a_report_on_the_whole_share_names_no_prompt(anon_client: TestClient) -> None:
    code = await shared_pack(anon_client)
    body = await filed(anon_client, await sign_up(anon_client), code.lower())
    assert body["share_code"] == code
    assert body["prompt_id"] is None


async def test_reporting_needs_an_account(anon_client: TestClient) -> None:
    code = await shared_pack(anon_client)
    resp = await anon_client.post("/v1/reports", json={"share_code": code, "reason": "spam"})
    assert resp.status == 401


@pytest.mark.parametrize("reason", REASONS)
async def test_every_reason_of_the_list_is_accepted(anon_client: TestClient, reason: str) -> None:
    code = await shared_pack(anon_client)
    assert (await filed(anon_client, await sign_up(anon_client), code, reason=reason))[
        "reason"
    ] == reason


@pytest.mark.parametrize("reason", ["boring", "SPAM", "", None, 3, ["spam"]])
async def test_a_reason_outside_the_fixed_list_is_400(anon_client: TestClient, reason: Any) -> None:
    code = await shared_pack(anon_client)
    resp = await report(anon_client, await sign_up(anon_client), code, reason=reason)
    assert resp.status == 400
    assert "reason must be one of" in (await resp.json())["reason"]


async def test_a_note_of_500_characters_is_accepted(anon_client: TestClient) -> None:
    code = await shared_pack(anon_client)
    body = await filed(anon_client, await sign_up(anon_client), code, note="n" * 500)
    assert body["note"] == "n" * 500


@pytest.mark.parametrize("note", ["n" * 501, 42, {"text": "x"}])
async def test_a_note_over_500_characters_or_not_text_is_400(
    anon_client: TestClient, note: Any
) -> None:
    code = await shared_pack(anon_client)
    resp = await report(anon_client, await sign_up(anon_client), code, note=note)
    assert resp.status == 400


async def test_a_prompt_id_that_is_not_in_the_share_is_404(anon_client: TestClient) -> None:
    code = await shared_pack(anon_client)
    resp = await report(anon_client, await sign_up(anon_client), code, prompt_id="p404")
    assert resp.status == 404
    assert "prompt" in (await resp.json())["reason"]


async def test_reporting_an_unknown_share_is_404(anon_client: TestClient) -> None:
    resp = await report(anon_client, await sign_up(anon_client), "ZZZZZZZZZZ")
    assert resp.status == 404


async def test_reporting_a_withdrawn_share_is_410(anon_client: TestClient) -> None:
    owner = await sign_up(anon_client)
    code = await share(anon_client, owner)
    assert (
        await status_of(await anon_client.delete(f"/v1/shares/{code}", headers=owner.auth)) == 200
    )
    resp = await report(anon_client, await sign_up(anon_client), code)
    assert resp.status == 410


async def test_repeating_an_open_report_returns_the_first_one(anon_client: TestClient) -> None:
    reporter = await sign_up(anon_client)
    code = await shared_pack(anon_client)
    first = await filed(anon_client, reporter, code, prompt_id="p1", reason="spam")
    resp = await report(anon_client, reporter, code, prompt_id="p1", reason="hate", note="again")
    assert resp.status == 200, await resp.text()
    assert await resp.json() == first


async def test_reporting_again_after_a_resolution_opens_a_new_report(
    anon_client: TestClient, client: TestClient
) -> None:
    reporter = await sign_up(anon_client)
    code = await shared_pack(anon_client)
    first = await filed(anon_client, reporter, code, prompt_id="p1")
    await resolved(client, None, first["id"], "dismiss")
    resp = await report(anon_client, reporter, code, prompt_id="p1")
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["id"] != first["id"]


async def test_reports_are_rate_limited_per_account(settings: Settings) -> None:
    async with running(dataclasses.replace(settings, report_rate_limit="2/hour")) as http:
        code = await share(http, await sign_up(http))
        reporter = await sign_up(http)
        assert await status_of(await report(http, reporter, code, prompt_id="p1")) == 201
        assert await status_of(await report(http, reporter, code, prompt_id="p2")) == 201
        resp = await report(http, reporter, code)
        assert resp.status == 429
        assert (await resp.json())["error"] == "too_many_requests"
        assert 0 < int(resp.headers["Retry-After"]) <= 3600  # within the limit's window
        assert await status_of(await report(http, await sign_up(http), code)) == 201


# --- who may moderate ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/moderation/reports"),
        ("POST", "/v1/moderation/reports/0123456789abcdef/resolve"),
        ("GET", "/v1/moderation/audit"),
    ],
)
async def test_an_account_without_the_moderator_role_gets_403(
    anon_client: TestClient, method: str, path: str
) -> None:
    who = await sign_up(anon_client)
    resp = await anon_client.request(method, path, json={"action": "dismiss"}, headers=who.auth)
    assert resp.status == 403


async def test_a_moderator_granted_by_an_admin_lists_reports(
    anon_client: TestClient, client: TestClient
) -> None:
    code = await shared_pack(anon_client)
    mine = await filed(anon_client, await sign_up(anon_client), code)
    moderator = await make_moderator(anon_client, client)
    page = await list_reports(anon_client, who=moderator)
    assert [r["id"] for r in page["items"]] == [mine["id"]]


async def test_the_server_admin_lists_reports(anon_client: TestClient, client: TestClient) -> None:
    code = await shared_pack(anon_client)
    mine = await filed(anon_client, await sign_up(anon_client), code)
    page = await list_reports(client)
    assert [r["id"] for r in page["items"]] == [mine["id"]]
    assert page["next_cursor"] is None


# --- listing ------------------------------------------------------------------------------


async def test_the_list_filters_by_status(anon_client: TestClient, client: TestClient) -> None:
    code = await shared_pack(anon_client)
    done = await filed(anon_client, await sign_up(anon_client), code)
    still_open = await filed(anon_client, await sign_up(anon_client), code)
    await resolved(client, None, done["id"], "dismiss")
    open_ids = [r["id"] for r in (await list_reports(client, "?status=open"))["items"]]
    resolved_ids = [r["id"] for r in (await list_reports(client, "?status=resolved"))["items"]]
    assert (open_ids, resolved_ids) == ([still_open["id"]], [done["id"]])


async def test_the_list_filters_by_reason(anon_client: TestClient, client: TestClient) -> None:
    code = await shared_pack(anon_client)
    spam = await filed(anon_client, await sign_up(anon_client), code, reason="spam")
    await filed(anon_client, await sign_up(anon_client), code, reason="violence")
    items = (await list_reports(client, "?reason=spam"))["items"]
    assert [r["id"] for r in items] == [spam["id"]]


@pytest.mark.parametrize("query", ["?status=closed", "?reason=boring", "?cursor=%%%"])
async def test_bad_list_parameters_are_400(client: TestClient, query: str) -> None:
    resp = await client.get(f"/v1/moderation/reports{query}")
    assert resp.status == 400


async def test_cursor_paging_visits_every_report_once_newest_first(
    anon_client: TestClient, client: TestClient
) -> None:
    prompts = [{"id": f"p{n}", "text": f"prompt {n}"} for n in range(120)]
    code = await shared_pack(anon_client, prompts)
    reporter = await sign_up(anon_client)
    ids = [(await filed(anon_client, reporter, code, prompt_id=p["id"]))["id"] for p in prompts]
    seen: list[str] = []
    pages = 0
    cursor = ""
    while True:
        page = await list_reports(client, f"?cursor={cursor}" if cursor else "")
        pages += 1
        seen.extend(r["id"] for r in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3  # 50 a page
    assert seen == ids[::-1]


async def test_each_report_carries_how_many_reports_its_target_has(
    anon_client: TestClient, client: TestClient
) -> None:
    code = await shared_pack(anon_client)
    for _ in range(2):
        await filed(anon_client, await sign_up(anon_client), code, prompt_id="p1")
    await filed(anon_client, await sign_up(anon_client), code, prompt_id="p2")
    await filed(anon_client, await sign_up(anon_client), code)  # the whole share
    counts = {
        (r["prompt_id"], r["target_report_count"]) for r in (await list_reports(client))["items"]
    }
    assert counts == {("p1", 2), ("p2", 1), (None, 1)}


# --- actions and their effects ------------------------------------------------------------


async def test_dismiss_resolves_the_report_and_the_share_stays(
    anon_client: TestClient, client: TestClient
) -> None:
    code = await shared_pack(anon_client)
    mine = await filed(anon_client, await sign_up(anon_client), code, prompt_id="p1")
    moderator = await make_moderator(anon_client, client)
    body = await resolved(anon_client, moderator, mine["id"], "dismiss")
    assert (body["status"], body["resolution"]) == ("resolved", "dismiss")
    assert body["resolved_at"] is not None
    shown = await (await anon_client.get(f"/v1/shares/{code}")).json()
    assert shown["pack"]["prompts"] == PROMPTS


async def test_hide_prompt_stops_serving_that_prompt(
    anon_client: TestClient, client: TestClient
) -> None:
    code = await shared_pack(anon_client)
    mine = await filed(anon_client, await sign_up(anon_client), code, prompt_id="p2")
    await resolved(client, None, mine["id"], "hide_prompt")
    shown = await (await anon_client.get(f"/v1/shares/{code}")).json()
    assert [p["id"] for p in shown["pack"]["prompts"]] == ["p1"]


async def test_install_does_not_copy_a_hidden_prompt(
    anon_client: TestClient, client: TestClient
) -> None:
    code = await shared_pack(anon_client)
    mine = await filed(anon_client, await sign_up(anon_client), code, prompt_id="p2")
    await resolved(client, None, mine["id"], "hide_prompt")
    reader = await sign_up(anon_client)
    assert await status_of(await install(anon_client, reader, code)) == 201
    doc = await (
        await anon_client.get(f"/{reader.db}/pack:share-{code}", headers=reader.auth)
    ).json()
    assert [p["id"] for p in doc["prompts"]] == ["p1"]


async def test_installing_again_removes_a_prompt_hidden_since(
    anon_client: TestClient, client: TestClient
) -> None:
    code = await shared_pack(anon_client)
    reader = await sign_up(anon_client)
    assert await status_of(await install(anon_client, reader, code)) == 201
    mine = await filed(anon_client, await sign_up(anon_client), code, prompt_id="p2")
    await resolved(client, None, mine["id"], "hide_prompt")
    resp = await install(anon_client, reader, code)
    assert (await resp.json())["status"] == "updated"
    doc = await (
        await anon_client.get(f"/{reader.db}/pack:share-{code}", headers=reader.auth)
    ).json()
    assert [p["id"] for p in doc["prompts"]] == ["p1"]


async def test_a_hidden_prompt_stays_hidden_when_the_owner_publishes_again(
    anon_client: TestClient, client: TestClient
) -> None:
    owner = await sign_up(anon_client)
    code = await share(anon_client, owner)
    mine = await filed(anon_client, await sign_up(anon_client), code, prompt_id="p2")
    await resolved(client, None, mine["id"], "hide_prompt")
    assert await share(anon_client, owner, title="Edited") == code
    shown = await (await anon_client.get(f"/v1/shares/{code}")).json()
    assert shown["pack"]["title"] == "Edited"
    assert [p["id"] for p in shown["pack"]["prompts"]] == ["p1"]


async def test_hide_prompt_on_a_report_naming_no_prompt_is_400_and_leaves_it_open(
    anon_client: TestClient, client: TestClient
) -> None:
    code = await shared_pack(anon_client)
    mine = await filed(anon_client, await sign_up(anon_client), code)
    resp = await resolve(client, None, mine["id"], "hide_prompt")
    assert resp.status == 400
    assert [r["status"] for r in (await list_reports(client))["items"]] == ["open"]
    assert (await list_reports(client, "?status=resolved"))["items"] == []


async def test_withdraw_share_makes_the_code_answer_410(
    anon_client: TestClient, client: TestClient
) -> None:
    code = await shared_pack(anon_client)
    mine = await filed(anon_client, await sign_up(anon_client), code)
    body = await resolved(client, None, mine["id"], "withdraw_share")
    assert body["resolution"] == "withdraw_share"
    assert await status_of(await anon_client.get(f"/v1/shares/{code}")) == 410


async def _suspend_owner(http: TestClient, admin: TestClient) -> tuple[Account, str]:
    """A share owner who signed in every way, then was suspended over a report; (owner, code)."""
    owner = await sign_up(http)
    code = await share(http, owner)
    basic = {"Authorization": basic_auth(owner.username, owner.password)}
    assert await status_of(await http.get(f"/{owner.db}", headers=basic)) == 200  # now cached
    assert await status_of(await http.get(f"/{owner.db}", headers=owner.auth)) == 200
    mine = await filed(http, await sign_up(http), code, reason="harassment")
    body = await resolved(http, await make_moderator(http, admin), mine["id"], "suspend_account")
    assert body["resolution"] == "suspend_account"
    return owner, code


async def test_suspend_account_refuses_the_owners_login(
    anon_client: TestClient, client: TestClient
) -> None:
    owner, _ = await _suspend_owner(anon_client, client)
    resp = await anon_client.post(
        "/v1/auth/login", json={"username": owner.username, "password": owner.password}
    )
    assert resp.status == 403
    assert "suspended" in (await resp.json())["reason"]


async def test_suspend_account_refuses_the_owners_basic_auth(
    anon_client: TestClient, client: TestClient
) -> None:
    owner, _ = await _suspend_owner(anon_client, client)
    basic = {"Authorization": basic_auth(owner.username, owner.password)}
    assert await status_of(await anon_client.get("/v1/auth/me", headers=basic)) == 403


async def test_suspend_account_refuses_the_owners_bearer_token(
    anon_client: TestClient, client: TestClient
) -> None:
    owner, _ = await _suspend_owner(anon_client, client)
    resp = await anon_client.get("/v1/auth/me", headers=owner.auth)
    assert resp.status == 403
    assert "suspended" in (await resp.json())["reason"]


async def test_suspend_account_refuses_replication_of_the_owners_database(
    anon_client: TestClient, client: TestClient
) -> None:
    owner, _ = await _suspend_owner(anon_client, client)
    basic = {"Authorization": basic_auth(owner.username, owner.password)}
    for method, path, body in [
        ("GET", f"/{owner.db}/", None),
        ("GET", f"/{owner.db}/_changes?since=0", None),
        ("POST", f"/{owner.db}/_revs_diff", {"pack:2": ["1-abc"]}),
        ("POST", f"/{owner.db}/_bulk_docs", {"docs": [], "new_edits": False}),
        ("GET", f"/{owner.db}/_local/checkpoint", None),
    ]:
        for headers in (basic, owner.auth):
            resp = await anon_client.request(method, path, json=body, headers=headers)
            assert resp.status == 403, (method, path, await resp.text())
    session = await anon_client.post(
        "/_session", json={"name": owner.username, "password": owner.password}
    )
    assert session.status == 403


async def test_suspending_the_owner_leaves_other_accounts_alone(
    anon_client: TestClient, client: TestClient
) -> None:
    await _suspend_owner(anon_client, client)
    other = await sign_up(anon_client)
    assert await status_of(await anon_client.get("/v1/auth/me", headers=other.auth)) == 200
    basic = {"Authorization": basic_auth(other.username, other.password)}
    assert await status_of(await anon_client.get(f"/{other.db}", headers=basic)) == 200


async def test_reports_on_a_deleted_owners_share_can_still_be_closed(
    anon_client: TestClient, client: TestClient
) -> None:
    owner = await sign_up(anon_client)
    code = await share(anon_client, owner)
    first = await filed(anon_client, await sign_up(anon_client), code)
    second = await filed(anon_client, await sign_up(anon_client), code)
    assert await status_of(await anon_client.delete("/v1/auth/me", headers=owner.auth)) == 200
    assert await status_of(await resolve(client, None, first["id"], "suspend_account")) == 409
    assert (await resolved(client, None, first["id"], "dismiss"))["status"] == "resolved"
    assert (await resolved(client, None, second["id"], "withdraw_share"))["status"] == "resolved"


async def test_resolving_a_resolved_report_is_409(
    anon_client: TestClient, client: TestClient
) -> None:
    code = await shared_pack(anon_client)
    mine = await filed(anon_client, await sign_up(anon_client), code)
    await resolved(client, None, mine["id"], "dismiss")
    resp = await resolve(client, None, mine["id"], "withdraw_share")
    assert resp.status == 409
    assert await status_of(await anon_client.get(f"/v1/shares/{code}")) == 200


async def test_resolving_an_unknown_report_is_404(client: TestClient) -> None:
    assert await status_of(await resolve(client, None, "0123456789abcdef", "dismiss")) == 404


@pytest.mark.parametrize("action", ["ban", "", None, "DISMISS"])
async def test_an_unknown_action_is_400(
    anon_client: TestClient, client: TestClient, action: Any
) -> None:
    code = await shared_pack(anon_client)
    mine = await filed(anon_client, await sign_up(anon_client), code)
    assert await status_of(await resolve(client, None, mine["id"], action)) == 400


# --- the audit log ------------------------------------------------------------------------


async def test_every_action_lands_in_the_audit_log(
    anon_client: TestClient, client: TestClient
) -> None:
    moderator = await make_moderator(anon_client, client)
    owner = await sign_up(anon_client)
    codes = [await share(anon_client, owner, f"pack:{n}") for n in range(4)]
    actions = ["dismiss", "hide_prompt", "withdraw_share", "suspend_account"]
    reports = []
    for code, action in zip(codes, actions, strict=True):
        mine = await filed(anon_client, await sign_up(anon_client), code, prompt_id="p2")
        await resolved(anon_client, moderator, mine["id"], action, comment=f"why: {action}")
        reports.append(mine["id"])
    before = datetime.now(UTC)
    resp = await client.get("/v1/moderation/audit")
    assert resp.status == 200, await resp.text()
    items = (await resp.json())["items"]
    assert [i["action"] for i in items] == actions[::-1]  # newest first
    targets = [f"{codes[0]}/p2", f"{codes[1]}/p2", codes[2], f"account:{owner.id}"]
    for item, report_id, action, target in zip(items[::-1], reports, actions, targets, strict=True):
        assert item["actor"] == moderator.id
        assert item["report_id"] == report_id
        assert item["target"] == target
        assert item["comment"] == f"why: {action}"
        when = datetime.fromisoformat(item["created_at"])
        assert before - timedelta(minutes=1) < when <= before


async def test_the_admin_is_named_as_actor_when_it_acts(
    anon_client: TestClient, client: TestClient
) -> None:
    code = await shared_pack(anon_client)
    mine = await filed(anon_client, await sign_up(anon_client), code)
    await resolved(client, None, mine["id"], "dismiss")
    items = (await (await client.get("/v1/moderation/audit")).json())["items"]
    assert [(i["actor"], i["action"], i["comment"]) for i in items] == [(ADMIN[0], "dismiss", None)]


async def test_a_refused_action_leaves_no_audit_entry(
    anon_client: TestClient, client: TestClient
) -> None:
    code = await shared_pack(anon_client)
    mine = await filed(anon_client, await sign_up(anon_client), code)
    assert await status_of(await resolve(client, None, mine["id"], "hide_prompt")) == 400
    await resolved(client, None, mine["id"], "dismiss")
    assert await status_of(await resolve(client, None, mine["id"], "dismiss")) == 409
    items = (await (await client.get("/v1/moderation/audit")).json())["items"]
    assert [i["action"] for i in items] == ["dismiss"]


async def test_a_moderator_cannot_read_the_audit_log(
    anon_client: TestClient, client: TestClient
) -> None:
    moderator = await make_moderator(anon_client, client)
    resp = await anon_client.get("/v1/moderation/audit", headers=moderator.auth)
    assert resp.status == 403


async def test_the_audit_log_pages_with_a_cursor(
    anon_client: TestClient, client: TestClient
) -> None:
    prompts = [{"id": f"p{n}", "text": f"prompt {n}"} for n in range(60)]
    code = await shared_pack(anon_client, prompts)
    reporter = await sign_up(anon_client)
    for p in prompts:
        mine = await filed(anon_client, reporter, code, prompt_id=p["id"])
        await resolved(client, None, mine["id"], "dismiss")
    first = await (await client.get("/v1/moderation/audit")).json()
    second = await (await client.get(f"/v1/moderation/audit?cursor={first['next_cursor']}")).json()
    assert (len(first["items"]), len(second["items"]), second["next_cursor"]) == (50, 10, None)
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert ids == sorted(set(ids), reverse=True)


@pytest.mark.parametrize("position", [[2**63], [-1], ["5"], [True], [1, 2]])
async def test_an_audit_cursor_that_holds_no_stored_id_is_400(
    client: TestClient, position: list[Any]
) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(position).encode()).decode()
    resp = await client.get("/v1/moderation/audit", params={"cursor": cursor})
    assert resp.status == 400
    assert (await resp.json())["reason"] == "Invalid cursor"
