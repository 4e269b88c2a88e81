"""Retries on 429 (a real server's rate limit) and 503 (a scripted transport), errors mapped."""

from __future__ import annotations

import time

import httpx
import pytest

import kiln
from kiln._errors import error_from_response
from tests.conftest import Server


def test_rate_limited_is_retried_after_retry_after(limited_server: Server) -> None:
    tok = limited_server.tokens["carol"]
    with kiln.Client(limited_server.url, tok, max_retries=0) as strict:
        s = strict.create_session("limited")
        s.materials.validate("NaCl")
        with pytest.raises(kiln.RateLimited) as e:
            s.materials.validate("NaCl")
        assert e.value.status == 429 and e.value.retry_after is not None
        assert e.value.retry_after >= 1
    with kiln.Client(limited_server.url, tok, max_retries=3) as patient:
        s2 = patient.get_session(s.id)
        t0 = time.monotonic()
        assert s2.materials.validate("NaCl").valid is True
        # It waited for the budget rather than failing (bounded: answers within 10 s).
        assert time.monotonic() - t0 < 10


def scripted(statuses: list[int], headers: dict[str, str]) -> tuple[httpx.MockTransport, list[int]]:
    seen: list[int] = []

    def handle(req: httpx.Request) -> httpx.Response:
        status = statuses[min(len(seen), len(statuses) - 1)]
        seen.append(status)
        if status == 200:
            return httpx.Response(200, json={"status": "ok", "version": "t"})
        body = {"error": {"code": "storage_unavailable", "message": "busy", "recoverable": True}}
        return httpx.Response(status, json=body, headers=headers)

    return httpx.MockTransport(handle), seen


def test_503_retried_with_backoff() -> None:
    transport, seen = scripted([503, 503, 200], {})
    with kiln.Client("http://kiln.test", "t", transport=transport, backoff=0.01) as c:
        assert c.health().status == "ok"
    assert seen == [503, 503, 200]


def test_503_gives_up_after_max_retries() -> None:
    transport, seen = scripted([503], {"Retry-After": "0"})
    with (
        kiln.Client("http://kiln.test", "t", transport=transport, max_retries=2) as c,
        pytest.raises(kiln.Unavailable) as e,
    ):
        c.health()
    assert len(seen) == 3
    assert e.value.code == "storage_unavailable" and isinstance(e.value, kiln.ServerError)


def test_retry_after_is_honoured() -> None:
    transport, seen = scripted([429, 200], {"Retry-After": "1"})
    with kiln.Client("http://kiln.test", "t", transport=transport, backoff=0) as c:
        t0 = time.monotonic()
        c.health()
        waited = time.monotonic() - t0
    assert seen == [429, 200]
    assert waited >= 0.9


def test_transport_error() -> None:
    with (
        kiln.Client("http://127.0.0.1:9", "t", max_retries=0, timeout=5) as c,
        pytest.raises(kiln.TransportError),
    ):
        c.health()


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_input", kiln.InvalidInput),
        (401, "unauthorized", kiln.Unauthorized),
        (403, "forbidden", kiln.Forbidden),
        (404, "not_found", kiln.NotFound),
        (409, "head_moved", kiln.HeadMoved),
        (409, "version_conflict", kiln.VersionConflict),
        (409, "session_not_active", kiln.SessionNotActive),
        (409, "merge_conflict", kiln.MergeConflict),
        (409, "something_new", kiln.Conflict),
        (410, "gone", kiln.Gone),
        (413, "storage_quota_exceeded", kiln.PayloadTooLarge),
        (429, "rate_limited", kiln.RateLimited),
        (507, "insufficient_storage", kiln.ServerError),
        (500, "internal", kiln.ServerError),
    ],
)
def test_error_families(status: int, code: str, cls: type[kiln.KilnError]) -> None:
    body = {"error": {"code": code, "message": "m", "recoverable": True}}
    e = error_from_response(status, body)
    assert type(e) is cls and e.status == status and e.code == code and e.message == "m"
    assert str(e) == f"[{code}] m"
