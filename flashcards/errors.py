"""One error type for the whole domain.

Adapters map a `DomainError` to their own shape without knowing the cause: REST to an RFC 9457
problem document with `status`, GraphQL to an error with `extensions.code`. Service functions
raise these before writing anything, so a rejected call never leaves a partial write.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error a service function raises on purpose."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "BAD_REQUEST"  # GraphQL extensions.code
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """RFC 9457 problem document body."""
        doc: dict[str, Any] = {
            "type": f"https://stackbench.dev/problems/{self.code.lower().replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance is not None:
            doc["instance"] = instance
        if self.errors:
            doc["errors"] = self.errors
        return doc


class InvalidInput(DomainError):
    status = 422
    code = "BAD_USER_INPUT"
    title = "Invalid input"


class MalformedRequest(DomainError):
    """The request body could not be parsed at all (not JSON, wrong content type)."""

    status = 400
    code = "BAD_REQUEST"
    title = "Malformed request"


class Unauthenticated(DomainError):
    status = 401
    code = "UNAUTHENTICATED"
    title = "Authentication required"


class Forbidden(DomainError):
    status = 403
    code = "FORBIDDEN"
    title = "Forbidden"


class NotFound(DomainError):
    """Also what another user's objects look like: their existence is not revealed."""

    status = 404
    code = "NOT_FOUND"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "CONFLICT"
    title = "Conflict"


class UnsupportedMediaType(DomainError):
    """A body was sent with a `Content-Type` other than JSON."""

    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    title = "Unsupported media type"


class MethodNotAllowed(DomainError):
    status = 405
    code = "METHOD_NOT_ALLOWED"
    title = "Method not allowed"

    def __init__(self, detail: str, *, allow: list[str]) -> None:
        super().__init__(detail)
        self.allow = allow


class PayloadTooLarge(DomainError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    title = "Payload too large"


class RateLimited(DomainError):
    status = 429
    code = "RATE_LIMITED"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class UpstreamFailed(DomainError):
    status = 502
    code = "UPSTREAM_FAILED"
    title = "Upstream failed"


class Unavailable(DomainError):
    status = 503
    code = "UNAVAILABLE"
    title = "Service unavailable"


class Internal(DomainError):
    """A bug: an exception no handler claimed (the REST apps' 500; logged where it is caught)."""

    status = 500
    code = "INTERNAL"
    title = "Internal server error"
