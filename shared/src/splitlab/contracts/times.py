"""Times the APIs accept: aware, and representable in UTC.

``UtcDatetime`` is an RFC 3339 time with an offset, converted to UTC. ``0001-01-01T00:00:00+14:00``
or ``9999-12-31T23:59:59-14:00`` are valid RFC 3339 but fall outside Python's years 1 to 9999
once converted: they are refused as a validation error naming the field (a 422), where the
conversion used to raise ``OverflowError`` (a 500) later. How far from now a time may be is each
endpoint's own rule (``/outcomes``: ``SPLITLAB_ROUTER_OCCURRED_AT_WINDOW_DAYS``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

__all__ = ["UtcDatetime", "outside_window", "to_utc"]


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC; ``ValueError`` (not ``OverflowError``) when UTC cannot hold it."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            "is outside the years 1 to 9999 once converted to UTC; send a real time in RFC 3339 "
            "with its offset, such as 2026-03-02T12:00:00Z"
        ) from None


def _text_or_datetime(value: Any) -> Any:
    """An RFC 3339 string (or a ``datetime`` from Python callers): a JSON number is refused,
    where pydantic's lax mode would read it as seconds since the epoch."""
    if isinstance(value, str | datetime):
        return value
    raise ValueError("must be an RFC 3339 string with its offset, such as 2026-03-02T12:00:00Z")


UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_text_or_datetime), AfterValidator(to_utc)]


def outside_window(value: datetime, now: datetime, window: timedelta) -> str | None:
    """Why ``value`` is too far from ``now`` (more than ``window`` either way), or None."""
    if now - window <= value <= now + window:
        return None
    days = window / timedelta(days=1)
    return (
        f"{value.isoformat()} is more than {days:g} days from now; accepted: "
        f"{(now - window).isoformat(timespec='seconds')} to "
        f"{(now + window).isoformat(timespec='seconds')}"
    )
