"""The library's error for a bad argument (pure: no web framework, no I/O library).

:class:`ArgumentError` carries the name of the argument at fault, so every caller shows it
where it belongs without reading the message: the HTTP services put it in a 422 body's
``field`` (``splitlab.platform.errors``), the CLI can name its option. It is a ``ValueError``, so
code that catches ``ValueError`` keeps working; its message is unchanged and still names the
argument and the fix.
"""

from __future__ import annotations

__all__ = ["ArgumentError"]


class ArgumentError(ValueError):
    """``argument`` (a parameter or field name, e.g. ``alpha`` or ``unit_col``) is invalid."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument
        self.message = message
