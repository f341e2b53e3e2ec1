"""The rules a pack document must satisfy, applied like CouchDB's ``validate_doc_update``.

A document with ``"type": "pack"`` in any database must have a title of 1-200 characters, a
BCP-47-shaped ``language`` and 0-1,000 prompts, each with a unique string ``id`` and a
``text`` of 1-1,000 characters. A bad pack is refused alone with 403 ``forbidden`` and a reason
naming the field; deletions are never refused.
"""

from __future__ import annotations

import re
from typing import Any

from syncd.errors import forbidden

MAX_TITLE = 200
MAX_PROMPTS = 1000
MAX_PROMPT_TEXT = 1000
MAX_PROMPT_ID = 200

# language-extlang-script-region-variant, loosely: 2-3 letter primary tag, then 1-8 char subtags.
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")


def validate_pack(body: dict[str, Any]) -> None:
    """Raise 403 ``forbidden`` when ``body`` is a pack that breaks a rule."""
    if body.get("type") != "pack":
        return
    title = body.get("title")
    if not isinstance(title, str) or not 1 <= len(title) <= MAX_TITLE:
        raise forbidden(f"title must be a string of 1 to {MAX_TITLE} characters")
    language = body.get("language")
    if not isinstance(language, str) or len(language) > 35 or not _LANGUAGE.match(language):
        raise forbidden("language must be a BCP 47 language tag such as 'en' or 'pt-BR'")
    prompts = body.get("prompts", [])
    if not isinstance(prompts, list) or len(prompts) > MAX_PROMPTS:
        raise forbidden(f"prompts must be a list of at most {MAX_PROMPTS} prompts")
    seen: set[str] = set()
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, dict):
            raise forbidden(f"prompts[{index}] must be an object")
        prompt_id = prompt.get("id")
        if not isinstance(prompt_id, str) or not 1 <= len(prompt_id) <= MAX_PROMPT_ID:
            raise forbidden(f"prompts[{index}].id must be a non-empty string")
        if prompt_id in seen:
            raise forbidden(f"prompts[{index}].id '{prompt_id}' is not unique")
        seen.add(prompt_id)
        text = prompt.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_PROMPT_TEXT:
            raise forbidden(
                f"prompts[{index}].text must be a string of 1 to {MAX_PROMPT_TEXT} characters"
            )
