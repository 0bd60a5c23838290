"""The naming rules every API shares, and the words an error message gives for each.

A pattern alone would make a caller read a regular expression; ``PATTERN_RULES`` lets the
service shell (``splitlab.platform.errors``) say the rule in words instead.
"""

from __future__ import annotations

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"
"""URL-safe keys (RFC 3986 unreserved characters), starting with a letter or digit: experiment
keys, model names and versions."""
KEY_RULE = (
    "1 to 128 URL-safe characters (letters, digits, '.', '_', '~', '-'), "
    "starting with a letter or digit"
)

METRIC_PATTERN = r"^[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})?$"
"""Metric names: lower-case identifiers, optionally ``namespace.name``."""
METRIC_RULE = (
    "a lower-case identifier (a letter, then up to 62 lower-case letters, digits or '_'), "
    "optionally after a namespace of the same form and a '.', as in 'checkout.revenue'"
)

PATTERN_RULES = {KEY_PATTERN: KEY_RULE, METRIC_PATTERN: METRIC_RULE}
