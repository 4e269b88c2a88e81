"""Typed exceptions: one per error-code family of the server's `{"error": {...}}` body."""

from __future__ import annotations

from typing import Any


class KilnError(Exception):
    """Any error the server answered, or the client raised on its behalf.

    `status` is the HTTP status (0 when no response arrived), `code` the server's stable code
    (`not_found`, `head_moved`, …), `message` its message, `recoverable` its flag and
    `details` whatever the server added (merge conflicts, versions, allowed transitions).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        recoverable: bool = False,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.recoverable = recoverable
        self.details: dict[str, Any] = details or {}

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}" if self.code else self.message


class NotSupported(KilnError):
    """The server has no route for this yet; the message names what it needs."""

    def __init__(self, what: str, needs: str) -> None:
        super().__init__(
            f"{what} is not supported by this Kiln server: it needs {needs}",
            code="not_supported",
        )
        self.needs = needs


class TransportError(KilnError):
    """No answer from the server (refused connection, timeout, broken stream)."""


class InvalidInput(KilnError):
    """400 (`invalid_input`, `invalid_json`, `invalid_arguments`, `invalid_query`, …)."""


class Unauthorized(KilnError):
    """401: no token, or a token the server does not know."""


class Forbidden(KilnError):
    """403: the caller may read the session but lacks the permission for this."""


class NotFound(KilnError):
    """404: no such session, branch, checkpoint, tool, share — or one you may not read."""


class Conflict(KilnError):
    """409: the write collides with the session's current state."""


class HeadMoved(Conflict):
    """409 `head_moved`: the branch's head is not the `expected_head` given."""


class VersionConflict(Conflict):
    """409 `version_conflict`: the session changed since the version you hold."""


class SessionNotActive(Conflict):
    """409 `session_not_active`: the session is paused or archived."""


class InvalidTransition(Conflict):
    """409 `invalid_transition`: the lifecycle cannot move there; `details["allowed"]`."""


class AlreadyExists(Conflict):
    """409 `already_exists`: a branch, checkpoint or collaborator of that name exists."""


class BranchDiscarded(Conflict):
    """409 `branch_discarded`: the branch was discarded (reopen it first)."""


class MergeConflict(Conflict):
    """409 `merge_conflict`: `conflicts` lists each field both sides changed.

    Retry the merge with `strategy="ours"`, `"theirs"` or `"union"`.
    """

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        from kiln._models import MergeConflictItem

        self.conflicts: list[MergeConflictItem] = [
            MergeConflictItem.model_validate(c) for c in self.details.get("conflicts", [])
        ]


class Gone(KilnError):
    """410: the thing existed and is gone for good."""


class PayloadTooLarge(KilnError):
    """413: the body is over a limit, or the storage quota (`storage_quota_exceeded`)."""


class RateLimited(KilnError):
    """429: over the per-user budget (or a full turn queue); `retry_after` in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(KilnError):
    """5xx: the server failed (507 disk full, 503 storage unavailable, 500 internal)."""


class Unavailable(ServerError):
    """503: storage or model temporarily unavailable; retried before being raised."""


_BY_CODE: dict[str, type[KilnError]] = {
    "head_moved": HeadMoved,
    "version_conflict": VersionConflict,
    "session_not_active": SessionNotActive,
    "invalid_transition": InvalidTransition,
    "already_exists": AlreadyExists,
    "branch_discarded": BranchDiscarded,
    "merge_conflict": MergeConflict,
}

_BY_STATUS: dict[int, type[KilnError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: PayloadTooLarge,
    422: InvalidInput,
    429: RateLimited,
    503: Unavailable,
}


def error_from_response(
    status: int, body: Any, retry_after: float | None = None
) -> KilnError:
    """Builds the typed exception for an error response (`body` as parsed JSON, or text)."""
    code, message, recoverable, details = "", f"HTTP {status}", False, None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = str(err.get("code", ""))
        message = str(err.get("message", message))
        recoverable = bool(err.get("recoverable", False))
        d = err.get("details")
        details = d if isinstance(d, dict) else None
    elif isinstance(body, str) and body:
        message = f"HTTP {status}: {body[:200]}"
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else KilnError
    kw: dict[str, Any] = dict(status=status, code=code, recoverable=recoverable, details=details)
    if cls is RateLimited:
        if retry_after is None and details and "retry_after_secs" in details:
            retry_after = float(details["retry_after_secs"])
        return RateLimited(message, retry_after=retry_after, **kw)
    return cls(message, **kw)


def error_from_code(code: str, message: str, status: int = 0) -> KilnError:
    """Builds the typed exception for an error that arrived inside a stream (no status)."""
    cls = _BY_CODE.get(code, KilnError)
    return cls(message, status=status, code=code)
