"""The errors the client raises: one base, ``SplitLabError``."""

from __future__ import annotations


class SplitLabError(Exception):
    """Base of the errors this client raises."""


class RequestRejectedError(SplitLabError):
    """SplitLab answered a 4xx other than 408/429: the request itself is wrong (an unknown
    experiment, an invalid field, a wrong key). Retrying or answering control would hide it."""

    def __init__(self, status_code: int, message: str, field: str | None, url: str) -> None:
        where = f" (field {field})" if field else ""
        super().__init__(f"SplitLab rejected {url}: HTTP {status_code}: {message}{where}")
        self.status_code = status_code
        """The HTTP status, e.g. 404 or 422."""
        self.message = message
        """The service's message, which names the field and the fix."""
        self.field = field
        """The request field the service blamed, if any."""
        self.url = url
