"""Deterministic revision ids: the same edit made twice gets the same rev."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson


def canonical_body(body: dict[str, Any]) -> bytes:
    """The body encoded with sorted keys: the part of the rev hash that is the content."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def new_rev(
    parent: str | None,
    deleted: bool,
    canonical: bytes,
    attachment_digests: Iterable[str] = (),
) -> str:
    """The rev id that follows ``parent`` for this content: ``N-<md5 hex>``.

    The hash covers the parent rev, the deleted flag, the canonical body (see
    ``canonical_body``) and the attachment digests, like CouchDB's ``couch_db:new_revid``.
    """
    generation = 1 if parent is None else int(parent.partition("-")[0]) + 1
    md5 = hashlib.md5(usedforsecurity=False)
    md5.update((parent or "").encode())
    md5.update(b"\x00D" if deleted else b"\x00L")
    md5.update(canonical)
    for digest in sorted(attachment_digests):
        md5.update(b"\x00")
        md5.update(digest.encode())
    return f"{generation}-{md5.hexdigest()}"
