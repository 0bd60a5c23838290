"""A service's own state on ``app.state``, typed: one object, one accessor.

The lifespan builds a frozen dataclass of what the routes need (the service's ``deps.py``
declares it) and stores it with ``install_state``; routes and dependencies read it back with
``state_of(request, TheState)``, which checks its type, instead of reading untyped
``request.app.state.<name>`` attributes. The web shell's own entries (``settings``,
``service``, ``health_checks``) stay where ``create_service_app`` puts them.
"""

from __future__ import annotations

from typing import TypeVar

from starlette.applications import Starlette
from starlette.requests import Request

__all__ = ["app_state", "install_state", "state_of"]

_ATTRIBUTE = "service_state"

T = TypeVar("T")


def install_state(app: Starlette, state: object) -> None:
    setattr(app.state, _ATTRIBUTE, state)


def state_of(request: Request, kind: type[T]) -> T:
    """The state ``install_state`` stored, checked to be a ``kind`` (a lifespan that did not
    run, or a wrong type, fails here rather than as an AttributeError in a route)."""
    return app_state(request.app, kind)


def app_state(app: object, kind: type[T]) -> T:
    """``state_of`` for an app in hand (a test's ``TestClient(app).app``)."""
    value = getattr(getattr(app, "state", None), _ATTRIBUTE, None)
    if not isinstance(value, kind):
        raise RuntimeError(
            f"app.state holds no {kind.__name__} (got {type(value).__name__}): "
            "was the app's lifespan run?"
        )
    return value
