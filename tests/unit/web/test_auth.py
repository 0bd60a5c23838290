"""The shared bearer-key helpers."""

from __future__ import annotations

from splitlab.web.auth import bearer_token, keys_match


def test_bearer_parsing_and_constant_time_compare() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
    assert keys_match("secret", "secret")
    assert not keys_match("secret", "secreT")
    assert not keys_match("sécret", "secret")
