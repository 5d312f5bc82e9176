"""The one error the emulated API raises: an HTTP status plus Netmaker's error text.

Netmaker handlers answer failures through ``logic.FormatError(err, type)``, which maps a type word
(``badrequest``, ``internal``, ...) to a status and keeps the raw Go error text as ``Message``.
Domain rules in this package raise :class:`ApiError` with the same pair; the dispatcher turns it
into the error envelope. The seeding API raises it too, so a seeding mistake reads like the
answer the server would have given.
"""

from __future__ import annotations


class ApiError(Exception):
    """A failure the emulated server reports as ``{"Code": status, "Message": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def bad_request(message: str) -> ApiError:
    """``FormatError(err, "badrequest")``."""
    return ApiError(400, message)


def internal(message: str) -> ApiError:
    """``FormatError(err, "internal")``: Netmaker uses it for many client mistakes too."""
    return ApiError(500, message)


def unauthorized(message: str = "unauthorized") -> ApiError:
    """``FormatError(err, "unauthorized")``; the default text is ``logic.Unauthorized_Err``."""
    return ApiError(401, message)


# gorm's ErrRecordNotFound (SQL tables) and the key/value layer's NO_RECORD.
RECORD_NOT_FOUND = "record not found"
NO_RESULT_FOUND = "no result found"
