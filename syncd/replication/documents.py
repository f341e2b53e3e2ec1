"""Documents as replication clients send them: parsing and the rules CouchDB applies.

``parse_doc`` splits a JSON object into the special members (``_id``, ``_rev``,
``_revisions``, ``_deleted``, ``_attachments``) and the document's own fields, raising
``CouchError`` with CouchDB's error names for anything CouchDB would refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from syncd.errors import CouchError
from syncd.replication.revtree import parse_rev, path_from_revisions

MAX_DOC_ID_BYTES = 1024
MAX_GENERATION = 999_999_999  # parse_rev reads at most 9 digits: a larger one could never be named

# Members CouchDB accepts on input; the read-only ones are ignored, any other "_x" is refused.
_IGNORED_SPECIALS = frozenset({"_revs_info", "_conflicts", "_deleted_conflicts", "_local_seq"})
# What a _local document in a bulk write may carry besides its own fields.
_LOCAL_SPECIALS = _IGNORED_SPECIALS | {"_id", "_rev", "_deleted", "_revisions"}

_DB_NAME = re.compile(r"^[a-z][a-z0-9_$()+/-]*$")
# A rev travels in ETag headers: control characters and quotes would break the response.
_UNSAFE_IN_REV = re.compile(r'[\x00-\x1f\x7f"]')
MAX_DB_NAME = 238


@dataclass(slots=True)
class IncomingDoc:
    """One document of a write, split into CouchDB's special members and its own fields."""

    id: str | None
    rev: str | None
    path: list[str] | None  # from _revisions: the rev and its ancestors, newest first
    deleted: bool
    body: dict[str, Any]
    attachments: dict[str, Any] | None


def validate_db_name(name: str) -> None:
    """Refuse names outside CouchDB's rule with 400 ``illegal_database_name``."""
    if len(name) > MAX_DB_NAME or not _DB_NAME.match(name):
        raise CouchError(
            400,
            "illegal_database_name",
            f"Name: '{name}'. Only lowercase characters (a-z), digits (0-9), and any of the "
            "characters _, $, (, ), +, -, and / are allowed. Must begin with a letter.",
        )


def validate_doc_id(doc_id: object, *, allow_local: bool = False) -> str:
    """CouchDB's document id rules; returns the id."""
    if not isinstance(doc_id, str):
        raise CouchError(400, "illegal_docid", "Document id must be a string")
    if doc_id == "":
        raise CouchError(400, "illegal_docid", "Document id must not be empty")
    if len(doc_id.encode("utf-8", "surrogatepass")) > MAX_DOC_ID_BYTES:
        raise CouchError(400, "illegal_docid", "Document id is too long")
    if doc_id.startswith("_"):
        if doc_id.startswith("_design/") and len(doc_id) > len("_design/"):
            return doc_id
        if allow_local and doc_id.startswith("_local/") and len(doc_id) > len("_local/"):
            return doc_id
        raise CouchError(
            400, "illegal_docid", "Only reserved document ids may start with underscore."
        )
    try:
        doc_id.encode("utf-8")
    except UnicodeEncodeError:
        raise CouchError(400, "illegal_docid", "Document id must be valid UTF-8") from None
    return doc_id


def validate_rev(rev: object) -> str:
    """A well-formed ``N-hash`` rev (N >= 1), else 400 ``bad_request``."""
    if not isinstance(rev, str):
        raise CouchError(400, "bad_request", "Invalid rev format")
    try:
        gen, _ = parse_rev(rev)
    except ValueError:
        raise CouchError(400, "bad_request", "Invalid rev format") from None
    if gen < 1 or _UNSAFE_IN_REV.search(rev):
        raise CouchError(400, "bad_request", "Invalid rev format")
    return rev


def validate_deleted(value: object) -> bool:
    """``_deleted`` is a boolean; CouchDB refuses anything else as a bad special member."""
    if not isinstance(value, bool):
        raise CouchError(400, "doc_validation", "Bad special document member: _deleted")
    return value


def parse_local_doc(obj: dict[str, Any], doc_id: str) -> IncomingDoc:
    """A ``_local/`` document as a bulk write carries it: its own fields, ``_rev`` (``0-N``,
    checked by the writer side) and ``_deleted``; other special members are refused, as for
    any document, and the read-only ones dropped."""
    final_id = validate_doc_id(doc_id, allow_local=True)
    body: dict[str, Any] = {}
    for key, value in obj.items():
        if not key.startswith("_"):
            body[key] = value
        elif key not in _LOCAL_SPECIALS:
            raise CouchError(400, "doc_validation", f"Bad special document member: {key}")
    rev = obj.get("_rev")
    if rev is not None and not isinstance(rev, str):
        raise CouchError(400, "bad_request", "Invalid rev format")
    deleted = validate_deleted(obj.get("_deleted", False))
    return IncomingDoc(final_id, rev, None, deleted, body, None)


def _parse_revisions(value: object, rev: str | None) -> list[str]:
    if not isinstance(value, dict):
        raise CouchError(400, "doc_validation", "_revisions must be an object")
    start, ids = value.get("start"), value.get("ids")
    if type(start) is not int or not 1 <= start <= MAX_GENERATION:
        raise CouchError(400, "doc_validation", "_revisions must have a positive start and ids")
    if not isinstance(ids, list) or not ids:
        raise CouchError(400, "doc_validation", "_revisions must have a positive start and ids")
    if len(ids) > start or not all(
        isinstance(i, str) and i and "-" not in i and not _UNSAFE_IN_REV.search(i) for i in ids
    ):
        raise CouchError(400, "doc_validation", "RevId isn't a valid hexadecimal")
    path = path_from_revisions(start, ids)
    if rev is not None and rev != path[0]:
        raise CouchError(400, "bad_request", "_rev and _revisions don't match")
    return path


def parse_doc(obj: object, doc_id: str | None = None) -> IncomingDoc:
    """Split a JSON document into an ``IncomingDoc``; ``doc_id`` comes from the URL if given."""
    if not isinstance(obj, dict):
        raise CouchError(400, "bad_request", "Document must be a JSON object")
    body: dict[str, Any] = {}
    rev = path = atts = None
    deleted = False
    body_id = obj.get("_id")
    for key, value in obj.items():
        if not key.startswith("_"):
            body[key] = value
        elif key == "_id":
            continue
        elif key == "_rev":
            rev = validate_rev(value)
        elif key == "_deleted":
            deleted = validate_deleted(value)
        elif key == "_attachments":
            if not isinstance(value, dict):
                raise CouchError(400, "doc_validation", "_attachments must be an object")
            atts = value
        elif key == "_revisions" or key in _IGNORED_SPECIALS:
            continue
        else:
            raise CouchError(400, "doc_validation", f"Bad special document member: {key}")
    if "_revisions" in obj:
        path = _parse_revisions(obj["_revisions"], rev)
        rev = path[0]
    if doc_id is None:
        final_id = None if body_id is None else validate_doc_id(body_id)
    else:
        final_id = doc_id
        if body_id is not None and body_id != doc_id:
            raise CouchError(400, "bad_request", "Document id in body and URL do not match")
    return IncomingDoc(final_id, rev, path, deleted, body, atts)
