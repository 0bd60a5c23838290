"""Who may use the console: the admin key once, then a signed cookie session; CSRF tokens.

The session is Starlette's ``SessionMiddleware`` (a cookie signed with itsdangerous, HttpOnly,
SameSite=Strict, path ``/ui``, ``max_age`` from the settings). The key that signs it is
``SPLITLAB_CONSOLE_SESSION_SECRET`` or, unset, an HMAC of the admin key, so every replica signs
alike and rotating the admin key logs everyone out. Each session carries a random CSRF token;
every form posts it back and a POST without the session's token is refused (403).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from fastapi import Request

from splitlab.platform.errors import ForbiddenError, UnauthorizedError
from splitlab.platform.settings import Settings
from splitlab.web.auth import keys_match

SESSION_COOKIE = "splitlab_console"
CSRF_FIELD = "csrf_token"


def session_secret(settings: Settings) -> str | None:
    """The key signing session cookies; None when neither it nor an admin key is set (the
    console then only shows how to turn it on)."""
    if settings.console_session_secret is not None:
        return settings.console_session_secret.get_secret_value()
    if settings.admin_api_key is None:
        return None
    admin = settings.admin_api_key.get_secret_value().encode()
    return hmac.new(admin, b"splitlab-console-session", hashlib.sha256).hexdigest()


def session_options(settings: Settings, secret: str) -> dict[str, Any]:
    """Keyword arguments of ``SessionMiddleware``."""
    return {
        "secret_key": secret,
        "session_cookie": SESSION_COOKIE,
        "max_age": settings.console_session_max_age_seconds,
        "path": "/ui",
        "same_site": "strict",
        "https_only": settings.console_secure_cookie,
    }


def session_of(request: Request) -> dict[str, Any]:
    """The request's session (empty when the console has no secret to sign with)."""
    if "session" not in request.scope:
        return {}
    session: dict[str, Any] = request.session
    return session


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    session = session_of(request)
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf(request: Request, given: object) -> None:
    """Refuse a form whose token is missing or not the session's."""
    expected = session_of(request).get("csrf")
    if not isinstance(given, str) or not given or not isinstance(expected, str):
        raise ForbiddenError(
            "the form has no CSRF token or the session has expired; reload the page and "
            "submit the form again",
            field=CSRF_FIELD,
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ForbiddenError(
            "the form's CSRF token is not this session's; reload the page and submit again",
            field=CSRF_FIELD,
        )


def logged_in(request: Request) -> bool:
    return session_of(request).get("user") == "admin"


def log_in(request: Request, settings: Settings, key: str) -> None:
    """Check the admin key; on success the session is the admin's, with a fresh CSRF token."""
    if settings.admin_api_key is None or "session" not in request.scope:
        raise UnauthorizedError(
            "the console is disabled: set SPLITLAB_ADMIN_API_KEY (and restart the analyzer)",
            field="key",
        )
    if not key or not keys_match(key, settings.admin_api_key.get_secret_value()):
        raise ForbiddenError("that is not the admin key (SPLITLAB_ADMIN_API_KEY)", field="key")
    session = session_of(request)
    session.clear()
    session["user"] = "admin"
    session["csrf"] = secrets.token_urlsafe(32)


def log_out(request: Request) -> None:
    session_of(request).clear()
