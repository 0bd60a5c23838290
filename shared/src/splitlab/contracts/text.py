"""What text SplitLab accepts anywhere: every string must be storable in Postgres and Kafka.

Two kinds of characters are not: NUL (``\\u0000``; Postgres text and JSONB refuse it, so an event
carrying one is dead-lettered after the caller was told it was accepted) and a lone UTF-16
surrogate (``\\ud800`` without its pair; it has no UTF-8 encoding). The service shell
(``splitlab.web.storable``) refuses both in every body, path and query parameter of every
service with a 422 that names the field, before any endpoint sees them.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["find_unstorable", "may_hold_unstorable", "unstorable_reason"]

# A JSON document can carry these characters only as escapes (raw control characters and raw
# surrogates are not valid JSON): a byte search finds every candidate without parsing.
_JSON_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89abAB][0-9a-fA-F]{2}|[dD][c-fC-F][0-9a-fA-F]{2})")


def unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored; remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "contains a lone UTF-16 surrogate (\\ud800-\\udfff without its pair), which is not "
            "valid text; send valid Unicode"
        )
    return None


def may_hold_unstorable(raw: bytes) -> bool:
    """Whether the JSON bytes ``raw`` may hold an unstorable string (a cheap pre-check)."""
    return _JSON_ESCAPE.search(raw) is not None


def find_unstorable(value: Any, path: tuple[str | int, ...] = ()) -> tuple[str, str] | None:
    """The first string in a decoded JSON ``value`` that cannot be stored, as (field, reason).

    ``field`` is the dotted path (``outcomes.0.unit_id``; ``body`` for the document itself);
    a key that cannot be stored is reported at the object that holds it."""
    if isinstance(value, str):
        reason = unstorable_reason(value)
        return None if reason is None else (_dotted(path), reason)
    if isinstance(value, dict):
        for key, item in value.items():
            reason = unstorable_reason(key)
            if reason is not None:
                return _dotted(path), f"a key {reason}"
            found = find_unstorable(item, (*path, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_unstorable(item, (*path, index))
            if found is not None:
                return found
    return None


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path) or "body"
