"""Attachments: inline base64 in, stubs (or inline data) out, stubs resolved against parents.

A revision's attachments are kept as a JSON object of stubs
``{name: {content_type, digest, length, revpos}}``; the bytes live once per digest in the store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from syncd.errors import CouchError, bad_request
from syncd.store import attachments as store

MAX_NAME = 1024


@dataclass(slots=True)
class NewAttachment:
    """An attachment whose bytes came with the write."""

    content_type: str
    data: bytes
    digest: str
    revpos: int | None  # kept from a replicated write; set from the new rev otherwise


@dataclass(slots=True)
class IncomingAttachments:
    """The ``_attachments`` of a write: new bodies and stubs naming existing ones."""

    new: dict[str, NewAttachment] = field(default_factory=dict)
    stubs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.new or self.stubs)


def digest_of(data: bytes) -> str:
    """CouchDB's attachment digest: ``md5-`` and the base64 of the MD5."""
    return "md5-" + base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def etag_of(digest: str) -> str:
    """The ETag CouchDB sends for an attachment: its digest, quoted."""
    return f'"{digest.removeprefix("md5-")}"'


def check_name(name: str) -> str:
    """400 for a name CouchDB refuses: empty, over ``MAX_NAME`` or starting with ``_``."""
    if not name or len(name) > MAX_NAME or name.startswith("_"):
        raise bad_request(f"Attachment name '{name}' is not allowed")
    return name


def decode(raw: dict[str, Any] | None) -> IncomingAttachments:
    """Check and decode a document's ``_attachments`` (400 for anything malformed)."""
    out = IncomingAttachments()
    if not raw:
        return out
    for name, att in raw.items():
        check_name(name)
        if not isinstance(att, dict):
            raise bad_request(f"Attachment {name} must be an object")
        content_type = att.get("content_type", "application/octet-stream")
        if not isinstance(content_type, str):
            raise bad_request(f"Attachment {name}: content_type must be a string")
        if att.get("stub") is True:
            out.stubs[name] = att
            continue
        data = att.get("data")
        if not isinstance(data, str):
            if att.get("follows") is True:
                raise CouchError(415, "bad_content_type", "multipart attachments are not supported")
            raise bad_request(f"Attachment {name} needs base64 `data` or `stub: true`")
        try:
            body = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request(f"Attachment {name}: data is not valid base64") from None
        revpos = att.get("revpos")
        out.new[name] = NewAttachment(
            content_type, body, digest_of(body), revpos if type(revpos) is int else None
        )
    return out


def digests(incoming: IncomingAttachments) -> list[str]:
    """Digests that go into the rev hash (stubs by the digest they name)."""
    found = [att.digest for att in incoming.new.values()]
    found += [str(stub.get("digest", "")) + ":" + name for name, stub in incoming.stubs.items()]
    return found


def resolve(
    conn: sqlite3.Connection,
    doc_id: str,
    incoming: IncomingAttachments,
    candidates: Iterable[dict[str, Any]],
    generation: int,
) -> dict[str, Any] | None:
    """The stubs of the new revision: new bodies stored, stubs found in an earlier revision.

    ``candidates`` are the attachment stubs of earlier revisions, nearest first. A stub that
    none of them has is refused with 412, as CouchDB does.
    """
    if not incoming:
        return None
    kept: dict[str, Any] = {}
    earlier = list(candidates)
    for name, stub in incoming.stubs.items():
        found = next((atts[name] for atts in earlier if name in atts), None)
        if found is None or ("digest" in stub and stub["digest"] != found["digest"]):
            raise CouchError(412, "missing_stub", f"Invalid attachment stub in {doc_id} for {name}")
        kept[name] = found
    for name, att in incoming.new.items():
        store.put_body(conn, att.digest, att.data)
        kept[name] = {
            "content_type": att.content_type,
            "digest": att.digest,
            "length": len(att.data),
            "revpos": att.revpos if att.revpos is not None else generation,
        }
    return kept


def shape(
    conn: sqlite3.Connection, atts_json: bytes, *, inline: bool, since_generation: int = 0
) -> dict[str, Any]:
    """Attachments as a read returns them: stubs, or base64 data where asked for."""
    atts: dict[str, Any] = orjson.loads(atts_json)
    out: dict[str, Any] = {}
    for name, meta in atts.items():
        if inline and meta["revpos"] > since_generation:
            data = store.get_body(conn, meta["digest"]) or b""
            out[name] = {
                "content_type": meta["content_type"],
                "revpos": meta["revpos"],
                "digest": meta["digest"],
                "data": base64.b64encode(data).decode(),
            }
        else:
            out[name] = {**meta, "stub": True}
    return out
