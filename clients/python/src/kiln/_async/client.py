"""The async client: transport with retries, sessions, the tree, conversation and tools.

This file is the source of truth; `kiln/_sync/client.py` is generated from it by
`clients/python/unasync.py` (run it after editing; a test fails when the two differ).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import csv
import email.utils
import io
import json
import os
import time
import traceback
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import quote

import httpx

from kiln import _html
from kiln import _models as m
from kiln._errors import (
    KilnError,
    NotFound,
    NotSupported,
    TransportError,
    error_from_code,
    error_from_response,
)
from kiln._results import (
    Answer,
    MaterialResult,
    SearchResults,
    StreamEvent,
    Table,
)

if TYPE_CHECKING:
    import pandas

DEFAULT_URL = "http://127.0.0.1:8080"
RETRY_STATUSES = frozenset({429, 503})


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date)."""
    v = resp.headers.get("retry-after")
    if not v:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _body(model: type[m.Request], **fields: Any) -> dict[str, Any]:
    """A request body checked against its documented model; None means "not sent"."""
    obj = model(**{k: v for k, v in fields.items() if v is not None})
    return obj.model_dump(by_alias=True, exclude_none=True, mode="json")


def _path(op: str, **params: str) -> str:
    return m.OPS[op].path.format(**{k: quote(v, safe="") for k, v in params.items()})


def _error(resp: httpx.Response) -> KilnError:
    try:
        body: Any = resp.json()
    except ValueError:
        body = resp.text
    return error_from_response(resp.status_code, body, _retry_after(resp))


class AsyncClient:
    """A connection to a Kiln server.

    `url` and `token` default to the `KILN_URL` and `KILN_TOKEN` environment variables
    (and `http://127.0.0.1:8080`). 429 and 503 answers are retried up to `max_retries` times,
    waiting what `Retry-After` says, else `backoff` seconds doubling per try, at most
    `max_backoff`. `timeout` is httpx's (seconds, or an `httpx.Timeout`).
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("KILN_URL") or DEFAULT_URL).rstrip("/")
        token = token if token is not None else os.environ.get("KILN_TOKEN")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------ transport

    def _wait(self, attempt: int, resp: httpx.Response) -> float:
        after = _retry_after(resp)
        if after is None:
            after = self.backoff * (2**attempt)
        return min(after, self.max_backoff)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        q = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                resp = await self._http.request(
                    method, path, params=q, json=json, headers=headers, content=content
                )
            except httpx.TransportError as e:
                raise TransportError(f"{method} {path}: {e!r}") from e
            if resp.status_code in RETRY_STATUSES and attempt < self.max_retries:
                await asyncio.sleep(self._wait(attempt, resp))
                attempt += 1
                continue
            if resp.status_code >= 400:
                raise _error(resp)
            return resp

    async def _call(
        self,
        op: str,
        path: Mapping[str, str] | None = None,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        spec = m.OPS[op]
        resp = await self._send(
            spec.method, _path(op, **(path or {})), params=params, json=body, headers=headers
        )
        if resp.status_code == 204 or not resp.content:
            return None
        if "json" not in resp.headers.get("content-type", ""):
            return resp.text
        return resp.json()

    async def _items(
        self,
        op: str,
        path: Mapping[str, str] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        cursor: str = "cursor",
        limit: int | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Any]:
        """Yields a listing's items page by page, following `next_cursor` lazily."""
        q = dict(params or {})
        seen = 0
        while True:
            if page_size is not None:
                q["limit"] = page_size if limit is None else min(page_size, limit - seen)
            page = await self._call(op, path, params=q)
            for it in page["items"]:
                yield it
                seen += 1
                if limit is not None and seen >= limit:
                    return
            nxt = page.get("next_cursor")
            if not nxt or not page["items"]:
                return
            q[cursor] = nxt

    @asynccontextmanager
    async def _stream(self, method: str, path: str, *, json: Any) -> AsyncIterator[httpx.Response]:
        attempt = 0
        while True:
            req = self._http.build_request(
                method, path, json=json, headers={"Accept": "text/event-stream"}
            )
            try:
                resp = await self._http.send(req, stream=True)
            except httpx.TransportError as e:
                raise TransportError(f"{method} {path}: {e!r}") from e
            if resp.status_code < 400:
                break
            await resp.aread()
            await resp.aclose()
            if resp.status_code in RETRY_STATUSES and attempt < self.max_retries:
                await asyncio.sleep(self._wait(attempt, resp))
                attempt += 1
                continue
            raise _error(resp)
        try:
            yield resp
        finally:
            await resp.aclose()

    # ------------------------------------------------------------ instance

    async def health(self) -> m.Health:
        return m.Health.model_validate(await self._call("get_health"))

    async def instance_key(self) -> m.InstanceKey:
        return m.InstanceKey.model_validate(await self._call("get_instance_key"))

    async def tools(self) -> list[m.ToolInfo]:
        return [m.ToolInfo.model_validate(t) async for t in self._items("get_tools")]

    # ------------------------------------------------------------ memory

    async def memory(self) -> list[m.MemoryEntry]:
        """Your memory across sessions: the notes and preferences every turn of yours sees."""
        return [m.MemoryEntry.model_validate(e) async for e in self._items("get_me_memory")]

    async def remember(self, content: str, *, kind: str | None = None) -> m.MemoryEntry:
        """Saves a note (or, with kind="preference", a preference) to your memory."""
        body = _body(m.MemoryInput, content=content, kind=kind)
        return m.MemoryEntry.model_validate(await self._call("post_me_memory", body=body))

    async def update_memory(
        self, id: str, *, content: str | None = None, kind: str | None = None
    ) -> m.MemoryEntry:
        body = _body(m.MemoryPatch, content=content, kind=kind)
        raw = await self._call("patch_me_memory_id", {"id": id}, body=body)
        return m.MemoryEntry.model_validate(raw)

    async def forget(self, id: str) -> None:
        await self._call("delete_me_memory_id", {"id": id})

    # ------------------------------------------------------------ sessions

    async def create_session(
        self,
        name: str,
        *,
        description: str | None = None,
        session_type: m.SessionType | None = None,
        project: str | None = None,
        folder: str | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        checkpoint_frequency: str | None = None,
        duration_days: int | None = None,
        template: str | None = None,
    ) -> AsyncSession:
        """Creates a session; `folder` is kept in `metadata["folder"]` (no folders server-side)."""
        if folder is not None:
            metadata = {**(metadata or {}), "folder": folder}
        body = _body(
            m.NewSession,
            name=name,
            description=description,
            session_type=session_type,
            project=project,
            tags=tags,
            metadata=metadata,
            context=context,
            checkpoint_frequency=checkpoint_frequency,
            duration_days=duration_days,
            template=template,
        )
        data = m.Session.model_validate(await self._call("post_sessions", body=body))
        return AsyncSession(self, data)

    async def get_session(self, id: str) -> AsyncSession:
        data = m.Session.model_validate(await self._call("get_sessions_id", {"id": id}))
        return AsyncSession(self, data)

    async def list_sessions(
        self,
        *,
        status: m.SessionStatus | None = None,
        project: str | None = None,
        type: m.SessionType | None = None,
        tag: str | None = None,
        owner: str | None = None,
        limit: int | None = None,
    ) -> list[m.ListedSession]:
        """The sessions you own or collaborate on, newest first (all pages, or `limit`)."""
        params = {"status": status, "project": project, "type": type, "tag": tag, "owner": owner}
        return [
            m.ListedSession.model_validate(s)
            async for s in self._items(
                "get_sessions", params=params, limit=limit, page_size=min(limit or 200, 200)
            )
        ]

    async def get_or_create_session(
        self, name: str, *, project: str | None = None, folder: str | None = None, **create: Any
    ) -> AsyncSession:
        """The newest session of yours with this name (and project and folder), else a new one.

        Fallback until the server has a create-or-return route: it lists your sessions
        (filtered by project) and matches name and `metadata.folder`; two scripts starting at
        the same moment may both create one.
        """
        for s in await self.list_sessions(project=project):
            if s.name != name or s.shared_with_you is not None:
                continue
            if folder is not None and s.metadata.get("folder") != folder:
                continue
            return AsyncSession(self, m.Session.model_validate(s.model_dump(by_alias=True)))
        return await self.create_session(name, project=project, folder=folder, **create)

    async def project_session(
        self,
        project: str,
        name: str,
        *,
        folder: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
    ) -> AsyncSession:
        """Your session of this project and name, made (in `folder`) when there is none, in one
        request (`PUT /v1/projects/{project}/sessions/{name}`): two scripts starting at once get
        one session. `found.duplicates` lists older sessions of the same name."""
        body = _body(m.PutProjectSession, folder=folder, description=description, tags=tags)
        raw = await self._call(
            "put_projects_project_sessions_name", {"project": project, "name": name}, body=body
        )
        found = m.FoundSession.model_validate(raw)
        return AsyncSession(self, found.session)

    async def projects(self) -> list[m.Project]:
        """The projects whose sessions you see, with how many."""
        return [m.Project.model_validate(p) async for p in self._items("get_projects")]

    async def project_tree(self, project: str, *, folder: str | None = None) -> m.ProjectTree:
        """A project's sessions under `folder` (default `/`) as a tree of folders."""
        raw = await self._call(
            "get_projects_project_sessions", {"project": project}, params={"folder": folder}
        )
        return m.ProjectTree.model_validate(raw)

    def session(
        self, name: str, *, project: str | None = None, folder: str | None = None, **create: Any
    ) -> AsyncSessionContext:
        """`async with client.session("LFP screening", project="cathodes") as s:` — gets or
        creates the session by name, activates it, and records an exception raised inside the
        block in the session's notebook log (level `error`) before it propagates."""
        return AsyncSessionContext(self, name, project, folder, create)

    async def import_session(self, export: str | Path | Mapping[str, Any]) -> AsyncSession:
        """Imports a JSON export (a path to one, or the parsed document) as a new session."""
        doc = export if isinstance(export, Mapping) else json.loads(Path(export).read_text())
        data = m.Session.model_validate(await self._call("post_sessions_import", body=doc))
        return AsyncSession(self, data)

    async def search(
        self,
        q: str,
        *,
        kind: str | None = None,
        session: str | None = None,
        project: str | None = None,
        status: m.SessionStatus | None = None,
        type: m.SessionType | None = None,
        tag: str | None = None,
        author: str | None = None,
        material: str | None = None,
        element: str | None = None,
        from_: str | None = None,
        to: str | None = None,
        limit: int = 20,
        per_session: int | None = None,
    ) -> SearchResults:
        """Full-text search over the sessions you may read: `limit` sessions, best first."""
        params: dict[str, Any] = {
            "q": q, "kind": kind, "session": session, "project": project, "status": status,
            "type": type, "tag": tag, "author": author, "material": material,
            "element": element, "from": from_, "to": to, "per_session": per_session,
        }
        out = SearchResults()
        while len(out) < limit:
            params["limit"] = min(100, limit - len(out))
            page = m.SearchPage.model_validate(await self._call("get_search", params=params))
            out.fuzzy = out.fuzzy or page.fuzzy
            out.extend(page.items)
            if not page.next_cursor or not page.items:
                break
            params["cursor"] = page.next_cursor
        return out


class AsyncSessionContext:
    """What `client.session(...)` returns: use it with `async with`."""

    def __init__(
        self,
        client: AsyncClient,
        name: str,
        project: str | None,
        folder: str | None,
        create: dict[str, Any],
    ) -> None:
        self._client = client
        self._args = (name, project, folder, create)
        self.session: AsyncSession | None = None

    async def __aenter__(self) -> AsyncSession:
        name, project, folder, create = self._args
        s = await self._client.get_or_create_session(
            name, project=project, folder=folder, **create
        )
        await s.ensure_active()
        self.session = s
        return s

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if e is None or self.session is None or et is None:
            return
        trace = "".join(traceback.format_exception(et, e, tb))[-4000:]
        # The original exception matters more than a failed log line.
        with contextlib.suppress(KilnError):
            await self.session.log(
                f"exception {et.__name__}: {e}", level="error", traceback=trace
            )


class AsyncSession:
    """One session, optionally bound to a branch (`s.on("sodium")`).

    Every method that works on a branch takes `branch=`; without it, the bound branch, else
    the session's default branch.
    """

    def __init__(self, client: AsyncClient, data: m.Session, branch: str | None = None) -> None:
        self.client = client
        self.data = data
        self.bound_branch = branch
        self._seen_branches: list[str] | None = None
        self._seen_state: m.ResearchState | None = None

    @property
    def id(self) -> str:
        return self.data.id

    @property
    def name(self) -> str:
        return self.data.name

    @property
    def status(self) -> str:
        return self.data.status

    def __repr__(self) -> str:
        on = f" on {self.bound_branch!r}" if self.bound_branch else ""
        return f"<Session {self.name!r} {self.id} {self.status}{on}>"

    def _b(self, branch: str | None) -> str:
        return branch or self.bound_branch or self.data.default_branch

    def _p(self, **more: str) -> dict[str, str]:
        return {"id": self.id, **more}

    def on(self, branch: str) -> AsyncSession:
        """The same session with `branch` as the default for every call."""
        s = AsyncSession(self.client, self.data, branch)
        return s

    # ------------------------------------------------------------ details and lifecycle

    async def refresh(self) -> m.Session:
        self.data = m.Session.model_validate(await self.client._call("get_sessions_id", self._p()))
        return self.data

    async def update(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        project: str | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> m.Session:
        """Changes details, guarded by the version this object holds (`VersionConflict` when
        someone changed the session since; `refresh()` and try again)."""
        body = _body(
            m.SessionPatch, name=name, description=description, project=project, tags=tags,
            metadata=metadata, context=context,
        )
        raw = await self.client._call(
            "patch_sessions_id", self._p(), body=body,
            headers={"If-Match": str(self.data.version)},
        )
        self.data = m.Session.model_validate(raw)
        return self.data

    async def delete(self) -> None:
        await self.client._call("delete_sessions_id", self._p())

    async def _status(self, to: m.SessionStatus) -> m.Session:
        raw = await self.client._call(
            "post_sessions_id_status", self._p(), body=_body(m.StatusChange, status=to)
        )
        self.data = m.Session.model_validate(raw)
        return self.data

    async def activate(self) -> m.Session:
        return await self._status("active")

    async def pause(self) -> m.Session:
        return await self._status("paused")

    async def resume(self) -> m.Session:
        return await self._status("resumed")

    async def archive(self) -> m.Session:
        return await self._status("archived")

    async def ensure_active(self) -> m.Session:
        """Activates a new session and resumes a paused or archived one."""
        if self.data.status == "created":
            return await self.activate()
        if self.data.status in ("paused", "archived"):
            return await self.resume()
        return self.data

    async def events(self) -> list[m.SessionEvent]:
        """Lifecycle transitions, oldest first."""
        return [
            m.SessionEvent.model_validate(e)
            async for e in self.client._items("get_sessions_id_events", self._p())
        ]

    async def audit(self) -> list[m.AuditEntry]:
        return [
            m.AuditEntry.model_validate(e)
            async for e in self.client._items("get_sessions_id_audit", self._p())
        ]

    async def verify_audit(self) -> m.AuditVerification:
        raw = await self.client._call("get_sessions_id_audit_verify", self._p())
        return m.AuditVerification.model_validate(raw)

    async def reflog(self) -> list[m.ReflogEntry]:
        return [
            m.ReflogEntry.model_validate(e)
            async for e in self.client._items("get_sessions_id_reflog", self._p())
        ]

    async def statistics(self) -> m.Statistics:
        raw = await self.client._call("get_sessions_id_statistics", self._p())
        return m.Statistics.model_validate(raw)

    async def contributions(self) -> list[m.Contribution]:
        return [
            m.Contribution.model_validate(e)
            async for e in self.client._items("get_sessions_id_contributions", self._p())
        ]

    # ------------------------------------------------------------ batches

    async def start_batch(
        self,
        request: str,
        items: list[dict[str, Any]] | None = None,
        *,
        csv: str | None = None,
        shared: bool = False,
        concurrency: int | None = None,
        item_timeout_seconds: int | None = None,
        checkpoint: str | None = None,
    ) -> m.Batch:
        """Starts a batch: `request` ("Analyse {formula}") answered once per item (or CSV row),
        each on its own branch (or, with shared=True, in order on one branch). It runs on the
        server; follow it with `batch()` or `wait_batch()`."""
        body = _body(
            m.BatchSpec,
            request=request,
            items=items,
            csv=csv,
            mode="shared" if shared else None,
            concurrency=concurrency,
            item_timeout_seconds=item_timeout_seconds,
            checkpoint=checkpoint,
        )
        return m.Batch.model_validate(
            await self.client._call("post_sessions_id_batches", self._p(), body=body)
        )

    async def batches(self) -> list[m.Batch]:
        return [
            m.Batch.model_validate(b)
            async for b in self.client._items("get_sessions_id_batches", self._p())
        ]

    async def batch(self, batch: str) -> m.Batch:
        raw = await self.client._call("get_sessions_id_batches_batch", self._p(batch=batch))
        return m.Batch.model_validate(raw)

    async def wait_batch(self, batch: str, *, poll: float = 0.25, timeout: float = 600) -> m.Batch:
        """Polls until the batch has finished (done or cancelled); TimeoutError past `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            b = await self.batch(batch)
            if b.status != "running":
                return b
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch} still running after {timeout} s")
            await asyncio.sleep(poll)

    async def cancel_batch(self, batch: str) -> m.Batch:
        raw = await self.client._call(
            "post_sessions_id_batches_batch_cancel", self._p(batch=batch)
        )
        return m.Batch.model_validate(raw)

    async def batch_csv(self, batch: str) -> str:
        """The results table as CSV text."""
        text: str = await self.client._call(
            "get_sessions_id_batches_batch_results_csv", self._p(batch=batch)
        )
        return text

    async def summary(self, *, branch: str | None = None) -> m.SessionSummary:
        raw = await self.client._call(
            "get_sessions_id_summary", self._p(), params={"branch": self._b(branch)}
        )
        return m.SessionSummary.model_validate(raw)

    # ------------------------------------------------------------ conversation

    @overload
    async def ask(
        self, message: str, *, branch: str | None = None, stream: Literal[False] = False
    ) -> Answer: ...

    @overload
    async def ask(
        self, message: str, *, branch: str | None = None, stream: Literal[True]
    ) -> AsyncAnswerStream: ...

    async def ask(
        self, message: str, *, branch: str | None = None, stream: bool = False
    ) -> Answer | AsyncAnswerStream:
        """One agent turn. With `stream=True`, an iterable of `StreamEvent`s as they arrive
        (tokens, tool calls, results); its `answer` is set once the turn is done."""
        body = _body(m.Query, message=message, branch=self._b(branch))
        if stream:
            return AsyncAnswerStream(self.client, _path("post_sessions_id_query", id=self.id), body)
        raw = await self.client._call("post_sessions_id_query", self._p(), body=body)
        return Answer.from_outcome(m.TurnOutcome.model_validate(raw))

    async def messages(
        self, *, branch: str | None = None, limit: int | None = None, page_size: int = 100
    ) -> AsyncIterator[m.Node]:
        """The branch's conversation, newest first, fetched page by page as you iterate."""
        async for n in self.client._items(
            "get_sessions_id_branches_b_messages",
            self._p(b=self._b(branch)),
            cursor="before",
            limit=limit,
            page_size=page_size,
        ):
            yield m.Node.model_validate(n)

    async def add_message(
        self,
        content: str,
        *,
        role: str = "note",
        branch: str | None = None,
        expected_head: str | None = None,
    ) -> m.AppendOutcome:
        """Appends a message without running the agent (`HeadMoved` if `expected_head` is
        given and the branch moved)."""
        body = _body(m.NewMessage, role=role, content=content, expected_head=expected_head)
        raw = await self.client._call(
            "post_sessions_id_branches_b_messages", self._p(b=self._b(branch)), body=body
        )
        return m.AppendOutcome.model_validate(raw)

    async def _event(self, body: dict[str, Any], branch: str | None) -> m.AppendOutcome:
        raw = await self.client._call(
            "post_sessions_id_branches_b_events", self._p(b=self._b(branch)), body=body
        )
        return m.AppendOutcome.model_validate(raw)

    async def add_material(
        self, formula: str, *, data: Any = None, branch: str | None = None
    ) -> m.AppendOutcome:
        return await self._event(_body(m.MaterialEvent, formula=formula, data=data), branch)

    async def add_discovery(
        self,
        description: str,
        *,
        type: str = "structure_property",
        materials: list[str] | None = None,
        evidence: list[str] | None = None,
        confidence: float | None = None,
        id: str | None = None,
        branch: str | None = None,
    ) -> m.AppendOutcome:
        body = _body(
            m.DiscoveryEvent, description=description, type=type, materials=materials,
            evidence=evidence, confidence=confidence, id=id,
        )
        return await self._event(body, branch)

    async def add_hypothesis(
        self,
        statement: str,
        *,
        status: Literal["open", "supported", "refuted"] | None = None,
        id: str | None = None,
        branch: str | None = None,
    ) -> m.AppendOutcome:
        body = _body(m.HypothesisEvent, statement=statement, status=status, id=id)
        return await self._event(body, branch)

    async def add_task(
        self,
        description: str,
        *,
        status: Literal["pending", "in_progress", "done", "cancelled"] | None = None,
        id: str | None = None,
        branch: str | None = None,
    ) -> m.AppendOutcome:
        body = _body(m.TaskEvent, description=description, status=status, id=id)
        return await self._event(body, branch)

    # ------------------------------------------------------------ context

    async def context(self, *, branch: str | None = None) -> m.ContextWindow:
        raw = await self.client._call(
            "get_sessions_id_context", self._p(), params={"branch": self._b(branch)}
        )
        return m.ContextWindow.model_validate(raw)

    async def pin(
        self, kind: str, content: str, *, name: str | None = None, branch: str | None = None
    ) -> m.AppendOutcome:
        body = _body(m.PinItem, kind=kind, content=content, name=name, branch=self._b(branch))
        raw = await self.client._call("post_sessions_id_context_items", self._p(), body=body)
        return m.AppendOutcome.model_validate(raw)

    async def unpin(self, kind: str = "all", *, branch: str | None = None) -> m.Cleared:
        raw = await self.client._call(
            "delete_sessions_id_context_items",
            self._p(),
            params={"kind": kind, "branch": self._b(branch)},
        )
        return m.Cleared.model_validate(raw)

    async def compress(
        self, *, keep_recent: int | None = None, branch: str | None = None
    ) -> m.Compressed:
        body = _body(m.Compress, keep_recent=keep_recent, branch=self._b(branch))
        raw = await self.client._call("post_sessions_id_context_compress", self._p(), body=body)
        return m.Compressed.model_validate(raw)

    # ------------------------------------------------------------ the tree

    async def branch(
        self,
        name: str,
        *,
        from_branch: str | None = None,
        from_checkpoint: str | None = None,
        from_node: str | None = None,
    ) -> m.Branch:
        """Creates a branch (default: from the head of the default branch)."""
        given = [
            (k, v)
            for k, v in (("branch", from_branch), ("checkpoint", from_checkpoint),
                         ("node", from_node))
            if v is not None
        ]
        if len(given) > 1:
            raise ValueError("give at most one of from_branch, from_checkpoint, from_node")
        body = _body(m.NewBranch, name=name, from_=dict(given) if given else None)
        raw = await self.client._call("post_sessions_id_branches", self._p(), body=body)
        return m.Branch.model_validate(raw)

    async def branches(self, *, all: bool = False) -> list[m.Branch]:
        """Open and merged branches (`all=True`: discarded ones too)."""
        out = [
            m.Branch.model_validate(b)
            async for b in self.client._items(
                "get_sessions_id_branches", self._p(), params={"all": "true" if all else None}
            )
        ]
        self._seen_branches = [b.name for b in out]
        return out

    async def discard(self, branch: str) -> m.Branch:
        raw = await self.client._call("post_sessions_id_branches_b_discard", self._p(b=branch))
        return m.Branch.model_validate(raw)

    async def reopen(self, branch: str) -> m.Branch:
        raw = await self.client._call("post_sessions_id_branches_b_reopen", self._p(b=branch))
        return m.Branch.model_validate(raw)

    async def checkpoint(
        self, name: str, *, branch: str | None = None, node: str | None = None
    ) -> m.Checkpoint:
        """Names the head of a branch (or a node) so it can be restored or diffed later."""
        body = _body(m.NewCheckpoint, name=name, node=node,
                     branch=None if node else self._b(branch))
        raw = await self.client._call("post_sessions_id_checkpoints", self._p(), body=body)
        return m.Checkpoint.model_validate(raw)

    async def checkpoints(self) -> list[m.Checkpoint]:
        return [
            m.Checkpoint.model_validate(c)
            async for c in self.client._items("get_sessions_id_checkpoints", self._p())
        ]

    async def restore(self, checkpoint: str, *, branch: str | None = None) -> m.Restored:
        """Moves the branch's head back to a checkpoint; the old head is kept as a checkpoint."""
        raw = await self.client._call(
            "post_sessions_id_checkpoints_name_restore",
            self._p(name=checkpoint),
            body=_body(m.BranchOnly, branch=self._b(branch)),
        )
        return m.Restored.model_validate(raw)

    async def recover(self, *, branch: str | None = None) -> m.Restored:
        """Restores the newest checkpoint of the branch."""
        raw = await self.client._call(
            "post_sessions_id_recover", self._p(), body=_body(m.BranchOnly, branch=self._b(branch))
        )
        return m.Restored.model_validate(raw)

    async def merge(
        self, source: str, *, into: str | None = None, strategy: m.Strategy | None = None
    ) -> m.MergeResult:
        """Merges `source` into `into` (default: the default branch). Conflicting changes
        raise `MergeConflict` with `.conflicts`; retry with `strategy="ours"`, `"theirs"` or
        `"union"`."""
        body = _body(m.MergeRequest, into=into or self.data.default_branch, strategy=strategy)
        raw = await self.client._call(
            "post_sessions_id_branches_b_merge", self._p(b=source), body=body
        )
        return m.MergeResult.model_validate(raw)

    async def diff(self, from_: str, to: str) -> m.DiffResult:
        """Messages on each side and the state difference (branches, checkpoints or nodes)."""
        raw = await self.client._call(
            "get_sessions_id_diff", self._p(), params={"from": from_, "to": to}
        )
        return m.DiffResult.model_validate(raw)

    async def state(self, *, branch: str | None = None, at: str | None = None) -> m.ResearchState:
        """The research state at the branch's head, or `at` a checkpoint or node."""
        raw = await self.client._call(
            "get_sessions_id_branches_b_state", self._p(b=self._b(branch)), params={"at": at}
        )
        st = m.ResearchState.model_validate(raw)
        self._seen_state = st
        return st

    # ------------------------------------------------------------ tools

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any], *, branch: str | None = None
    ) -> m.ToolCallRecord:
        """Calls one tool as the agent would (the call and result are recorded)."""
        body = _body(m.ToolCall, arguments=dict(arguments), branch=self._b(branch))
        raw = await self.client._call(
            "post_sessions_id_tools_tool", self._p(tool=name), body=body
        )
        return m.ToolCallRecord.model_validate(raw)

    @property
    def materials(self) -> AsyncMaterials:
        return AsyncMaterials(self)

    @property
    def optimizer(self) -> AsyncOptimizer:
        return AsyncOptimizer(self)

    @property
    def params(self) -> AsyncParams:
        return AsyncParams(self)

    @property
    def files(self) -> AsyncFiles:
        return AsyncFiles(self)

    def track(self, name: str) -> AsyncTrack:
        """A metric track of the notebook (Dreamlake's `session.track(name)`)."""
        return AsyncTrack(self, name)

    async def log(
        self, message: str, *, level: str = "info", branch: str | None = None, **metadata: Any
    ) -> dict[str, Any]:
        """Writes a line to the session's notebook log with a level (debug, info, warn, error,
        fatal) and keyword arguments as its structured metadata."""
        body = _body(
            m.NotebookLogInput, message=message, level=level, metadata=metadata or None
        )
        raw = await self.client._call(
            "post_sessions_id_branches_b_notebook_logs", self._p(b=self._b(branch)), body=body
        )
        return dict(m.ToolCallRecord.model_validate(raw).result or {})

    async def logs(
        self,
        *,
        level: str | None = None,
        since: str | None = None,
        until: str | None = None,
        meta: str | None = None,
        limit: int | None = None,
        branch: str | None = None,
    ) -> m.NotebookLogPage:
        """Log lines, oldest first: `level` the least severe kept, `since`/`until` RFC 3339,
        `meta="key=value"` one metadata field."""
        raw = await self.client._call(
            "get_sessions_id_branches_b_notebook_logs",
            self._p(b=self._b(branch)),
            params={"level": level, "since": since, "until": until, "meta": meta, "limit": limit},
        )
        return m.NotebookLogPage.model_validate(raw)

    async def protect(self) -> None:
        """Write-protects the session (owner only): every write is refused until unprotected."""
        raw = await self.client._call("post_sessions_id_protect", self._p())
        self.data = m.Session.model_validate(raw)

    async def unprotect(self) -> None:
        raw = await self.client._call("post_sessions_id_unprotect", self._p())
        self.data = m.Session.model_validate(raw)

    async def notebook(self, *, branch: str | None = None) -> dict[str, Any]:
        """Everything in the notebook: log lines, parameters, metric tracks, attachments."""
        rec = await self.call_tool("notebook", {"action": "list"}, branch=branch)
        return dict(rec.result or {})

    # ------------------------------------------------------------ sharing and people

    async def share(
        self,
        *,
        expires_in_days: int = 7,
        max_views: int | None = None,
        branch: str | None = None,
        checkpoint: str | None = None,
    ) -> m.CreatedShare:
        """A read-only link (`.url`; its token is shown only in this answer)."""
        body = _body(
            m.NewShare, expires_in_days=expires_in_days, max_views=max_views,
            branch=branch, checkpoint=checkpoint,
        )
        raw = await self.client._call("post_sessions_id_shares", self._p(), body=body)
        return m.CreatedShare.model_validate(raw)

    async def shares(self) -> list[m.ShareLink]:
        return [
            m.ShareLink.model_validate(s)
            async for s in self.client._items("get_sessions_id_shares", self._p())
        ]

    async def revoke_share(self, share_id: str) -> m.ShareLink:
        raw = await self.client._call("delete_sessions_id_shares_share", self._p(share=share_id))
        return m.ShareLink.model_validate(raw)

    @property
    def collaborators(self) -> AsyncCollaborators:
        return AsyncCollaborators(self)

    async def leave(self) -> None:
        """Leaves a session someone else added you to."""
        await self.client._call("post_sessions_id_leave", self._p())

    @overload
    async def export(
        self, format: Literal["json"] = "json", *, path: str | Path | None = None
    ) -> dict[str, Any]: ...

    @overload
    async def export(
        self, format: Literal["markdown"], *, path: str | Path | None = None
    ) -> str: ...

    async def export(
        self, format: Literal["json", "markdown"] = "json", *, path: str | Path | None = None
    ) -> dict[str, Any] | str:
        """The whole session as JSON (signed; importable) or a Markdown report; `path` also
        writes it to a file."""
        out = await self.client._call(
            "get_sessions_id_export", self._p(), params={"format": format}
        )
        if path is not None:
            text = out if isinstance(out, str) else json.dumps(out, ensure_ascii=False)
            Path(path).write_text(text, encoding="utf-8")
        if format == "json":
            return dict(out)
        return str(out)

    # ------------------------------------------------------------ notebooks

    async def _fetch_view(self) -> None:
        await self.refresh()
        await self.branches()
        await self.state()

    def _repr_html_(self) -> str:
        # sync: self._fetch_view()
        return _html.session_html(self.data, self._seen_branches, self._seen_state)


class AsyncAnswerStream:
    """A streamed agent turn: iterate it for `StreamEvent`s; `answer` is set at the end.

    An `error` event raises the matching exception. The request starts when iteration does.
    """

    def __init__(self, client: AsyncClient, path: str, body: dict[str, Any]) -> None:
        self._client = client
        self._path = path
        self._body = body
        self.answer: Answer | None = None
        self.text = ""

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[StreamEvent]:
        async with self._client._stream("POST", self._path, json=self._body) as resp:
            kind, data = "message", []
            try:
                async for line in resp.aiter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
                    elif not line and data:
                        ev = StreamEvent(kind, json.loads("\n".join(data)))
                        kind, data = "message", []
                        self._see(ev)
                        yield ev
            except httpx.TransportError as e:
                raise TransportError(f"stream broken: {e!r}") from e

    def _see(self, ev: StreamEvent) -> None:
        if ev.type == "token":
            self.text += ev.text
        elif ev.type == "done":
            fields = {k: v for k, v in ev.data.items() if k != "type"}
            self.answer = Answer.from_outcome(m.TurnOutcome.model_validate(fields))
        elif ev.type == "error":
            raise error_from_code(str(ev.data.get("code", "")), str(ev.data.get("message", "")))

    async def collect(self) -> Answer:
        """Reads the whole stream and returns the answer."""
        async for _ in self:
            pass
        if self.answer is None:
            raise TransportError("the stream ended before the turn was done")
        return self.answer


class _Part:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session


class AsyncMaterials(_Part):
    """The materials analyzer: each call is recorded in the session like the agent's."""

    async def _run(self, args: dict[str, Any], branch: str | None) -> MaterialResult:
        rec = await self.session.call_tool("materials_analyzer", args, branch=branch)
        result = rec.result if isinstance(rec.result, dict) else {"value": rec.result}
        return MaterialResult.model_validate({**result, "text": rec.text})

    async def analyze(self, formula: str, *, branch: str | None = None) -> MaterialResult:
        return await self._run({"action": "analyze", "formula": formula}, branch)

    async def validate(self, formula: str, *, branch: str | None = None) -> MaterialResult:
        return await self._run({"action": "validate", "formula": formula}, branch)

    async def similar(
        self, formula: str, *, limit: int | None = None, branch: str | None = None
    ) -> MaterialResult:
        args: dict[str, Any] = {"action": "similar", "formula": formula}
        if limit is not None:
            args["limit"] = limit
        return await self._run(args, branch)

    async def compare(self, a: str, b: str, *, branch: str | None = None) -> MaterialResult:
        return await self._run({"action": "compare", "formulas": [a, b]}, branch)


def _variable_args(v: Mapping[str, Any]) -> dict[str, Any]:
    """A stored variable (lower/upper) as define_space takes it (bounds)."""
    out: dict[str, Any] = {"name": v["name"], "type": v["type"]}
    if "lower" in v and "upper" in v:
        out["bounds"] = [v["lower"], v["upper"]]
    for k in ("categories", "unit", "description", "log", "bounds"):
        if k in v and v[k] is not None:
            out[k] = v[k]
    return out


def _num(v: str) -> float | str:
    try:
        return float(v)
    except ValueError:
        return v


class AsyncOptimizer(_Part):
    """The Bayesian optimizer in ALchemist's vocabulary (`OptimizationSession`).

    `add_variable` and `set_objective` (re)define the space on the server with what it
    already holds; the state lives in the session, so branches, checkpoints and merges apply.
    """

    TOOL = "bayesian_optimizer"
    _svg: str = ""
    _exp: Table | None = None

    async def _run(self, branch: str | None = None, **args: Any) -> dict[str, Any]:
        rec = await self.session.call_tool(self.TOOL, args, branch=branch)
        return dict(rec.result or {})

    async def _state(self, branch: str | None = None) -> dict[str, Any]:
        st = await self.session.state(branch=branch)
        return dict(st.tools.get(self.TOOL) or {})

    async def variables(self, *, branch: str | None = None) -> list[dict[str, Any]]:
        return list((await self._state(branch)).get("space") or [])

    async def objective(self, *, branch: str | None = None) -> dict[str, Any] | None:
        obj = (await self._state(branch)).get("objective")
        return dict(obj) if obj else None

    async def _define(
        self,
        variables: list[dict[str, Any]],
        objective: dict[str, Any],
        branch: str | None,
    ) -> dict[str, Any]:
        return await self._run(
            branch, action="define_space", variables=variables, objective=objective
        )

    async def add_variable(
        self,
        name: str,
        type: Literal["real", "integer", "categorical"] = "real",
        *,
        bounds: tuple[float, float] | list[float] | None = None,
        categories: list[str | float] | None = None,
        unit: str | None = None,
        description: str | None = None,
        log: bool | None = None,
        branch: str | None = None,
    ) -> dict[str, Any]:
        """Adds (or replaces) a variable; the objective defaults to maximising `output`."""
        st = await self._state(branch)
        current = [_variable_args(v) for v in st.get("space") or [] if v.get("name") != name]
        new: dict[str, Any] = {"name": name, "type": type}
        if bounds is not None:
            new["bounds"] = list(bounds)
        for k, v in (("categories", categories), ("unit", unit),
                     ("description", description), ("log", log)):
            if v is not None:
                new[k] = v
        objective = st.get("objective") or {"name": "output", "goal": "maximize"}
        return await self._define([*current, new], objective, branch)

    async def set_objective(
        self,
        name: str,
        goal: Literal["maximize", "minimize"] = "maximize",
        *,
        branch: str | None = None,
    ) -> dict[str, Any]:
        st = await self._state(branch)
        current = [_variable_args(v) for v in st.get("space") or []]
        if not current:
            raise ValueError("add a variable before setting the objective")
        return await self._define(current, {"name": name, "goal": goal}, branch)

    async def add_experiment(
        self,
        inputs: Mapping[str, float | str],
        output: float,
        *,
        noise: float | None = None,
        branch: str | None = None,
    ) -> dict[str, Any]:
        row: dict[str, Any] = {"inputs": dict(inputs), "output": output}
        if noise is not None:
            row["noise"] = noise
        return await self._run(branch, action="add_experiments", experiments=[row])

    async def add_experiments(
        self, rows: Iterable[Mapping[str, Any]], *, branch: str | None = None
    ) -> dict[str, Any]:
        """Adds rows `{"inputs": {...}, "output": y, "noise"?: s}` all or nothing."""
        return await self._run(
            branch, action="add_experiments", experiments=[dict(r) for r in rows]
        )

    async def load_data(
        self, source: str | Path | pandas.DataFrame, *, branch: str | None = None
    ) -> dict[str, Any]:
        """Adds experiments from a CSV file (or a DataFrame): a column per variable, the
        objective's column (or `output`) and an optional `noise` column. The CSV is read here
        and numbers sent as numbers."""
        if isinstance(source, (str, Path)):
            records = list(csv.DictReader(io.StringIO(Path(source).read_text())))
        else:
            records = [{str(k): v for k, v in r.items()} for r in source.to_dict("records")]
        obj = (await self.objective(branch=branch)) or {"name": "output"}
        out_col = obj["name"] if records and obj["name"] in records[0] else "output"
        rows = []
        for r in records:
            if out_col not in r:
                raise ValueError(f"no `{out_col}` column")
            inputs = {
                k: _num(v) if isinstance(v, str) else v
                for k, v in r.items()
                if k not in (out_col, "noise")
            }
            row: dict[str, Any] = {"inputs": inputs, "output": float(r[out_col])}
            if r.get("noise") not in (None, ""):
                row["noise"] = float(r["noise"])
            rows.append(row)
        return await self.add_experiments(rows, branch=branch)

    async def initial_design(
        self, n: int, *, method: Literal["lhs", "sobol", "random"] | None = None,
        branch: str | None = None,
    ) -> Table:
        args: dict[str, Any] = {"action": "initial_design", "n": n}
        if method:
            args["method"] = method
        res = await self._run(branch, **args)
        return Table(res.get("suggestions") or [], "initial design")

    async def suggest_next(
        self,
        strategy: Literal["EI", "PI", "UCB", "qEI"] = "EI",
        n: int = 1,
        *,
        xi: float | None = None,
        beta: float | None = None,
        kernel: Literal["matern52", "rbf"] | None = None,
        batch: Literal["believer", "liar"] | None = None,
        branch: str | None = None,
    ) -> Table:
        """The next `n` experiments to run, with the model's mean, std and acquisition."""
        args: dict[str, Any] = {"action": "suggest", "strategy": strategy, "q": n}
        for k, v in (("xi", xi), ("beta", beta), ("kernel", kernel), ("batch", batch)):
            if v is not None:
                args[k] = v
        res = await self._run(branch, **args)
        return Table(res.get("suggestions") or [], f"suggestions ({strategy})")

    async def predict(
        self, points: Iterable[Mapping[str, float | str]], *, branch: str | None = None
    ) -> Table:
        res = await self._run(branch, action="predict", points=[dict(p) for p in points])
        return Table(res.get("predictions") or [], "predictions")

    async def status(self, *, branch: str | None = None) -> dict[str, Any]:
        """Space, counts, best and the stored model's fit; a read, so nothing is recorded."""
        raw = await self.session.client._call(
            "get_sessions_id_branches_b_optimizer",
            self.session._p(b=self.session._b(branch)),
        )
        return dict(raw)

    async def optimum(self, *, branch: str | None = None) -> dict[str, Any]:
        """The model's best predicted point with its mean and std (nothing is recorded)."""
        raw = await self.session.client._call(
            "get_sessions_id_branches_b_optimizer_optimum",
            self.session._p(b=self.session._b(branch)),
        )
        return dict(raw)

    async def _edit(self, n: int, body: dict[str, Any], branch: str | None) -> dict[str, Any]:
        raw = await self.session.client._call(
            "patch_sessions_id_branches_b_optimizer_experiments_n",
            self.session._p(b=self.session._b(branch), n=str(n)),
            body=body,
        )
        return dict(raw.get("result") or {})

    async def exclude_experiment(
        self, n: int, reason: str, *, branch: str | None = None
    ) -> dict[str, Any]:
        """Leaves experiment `n` (from 1) out of the model; it stays in the record."""
        return await self._edit(n, {"exclude": True, "reason": reason}, branch)

    async def include_experiment(
        self, n: int, reason: str, *, branch: str | None = None
    ) -> dict[str, Any]:
        """Takes an excluded experiment back into the model."""
        return await self._edit(n, {"exclude": False, "reason": reason}, branch)

    async def plot_svg(
        self,
        kind: Literal["convergence", "dependence", "map", "parity"],
        *,
        branch: str | None = None,
        **params: str | int,
    ) -> str:
        """A chart as SVG: `dependence` takes `variable=`, `map` takes `x=` and `y=`."""
        raw = await self.session.client._call(
            "get_sessions_id_branches_b_optimizer_plots_file",
            self.session._p(b=self.session._b(branch), file=f"{kind}.svg"),
            params=params,
        )
        return str(raw)

    async def experiments(self, *, branch: str | None = None) -> Table:
        return Table((await self._state(branch)).get("experiments") or [], "experiments")

    async def _lock(self, what: str, notes: str | None, branch: str | None) -> dict[str, Any]:
        args: dict[str, Any] = {"action": "lock", "what": what}
        if notes is not None:
            args["notes"] = notes
        return await self._run(branch, **args)

    async def lock_data(self, notes: str | None = None, *, branch: str | None = None) -> dict[
        str, Any
    ]:
        return await self._lock("data", notes, branch)

    async def lock_model(self, notes: str | None = None, *, branch: str | None = None) -> dict[
        str, Any
    ]:
        return await self._lock("model", notes, branch)

    async def lock_acquisition(
        self, notes: str | None = None, *, branch: str | None = None
    ) -> dict[str, Any]:
        return await self._lock("acquisition", notes, branch)

    async def _report(self) -> str:
        md = await self.session.export("markdown")
        start = md.find(f"### Tool `{self.TOOL}`")
        if start < 0:
            return ""
        end = md.find("\n## ", start)
        return md[start : end if end >= 0 else len(md)].strip() + "\n"

    async def export_audit_markdown(self) -> str:
        """The optimizer's audit report (space, data, iterations with locks, convergence,
        suggestions), cut from the session's Markdown export (no route of its own yet)."""
        return await self._report()

    async def convergence_svg(self) -> str:
        """The server's convergence plot (SVG), from the same report."""
        md = await self._report()
        start, end = md.find("<svg"), md.find("</svg>")
        if start < 0 or end < 0:
            return ""
        return md[start : end + len("</svg>")]

    async def queue(self, *args: Any, **kw: Any) -> None:
        """ALchemist's experiment queue: the server has none yet."""
        raise NotSupported(
            "the experiment queue", "a queue action in the bayesian_optimizer tool"
        )

    async def lock_controller(self, *args: Any, **kw: Any) -> None:
        """ALchemist's external-controller lock: the server has none yet."""
        raise NotSupported(
            "the external-controller lock", "a controller lock in the bayesian_optimizer tool"
        )

    async def _fetch_view(self) -> None:
        self._svg = await self.convergence_svg()
        self._exp = await self.experiments()

    def _repr_html_(self) -> str:
        # sync: self._fetch_view()
        exp = self._exp._repr_html_() if self._exp is not None else ""
        return self._svg + exp


class AsyncParams(_Part):
    """Notebook parameters (Dreamlake's `session.params`): nested objects merge, dotted names
    nest, every change is kept in the history."""

    async def set(self, *, branch: str | None = None, **params: Any) -> dict[str, Any]:
        raw = await self.session.client._call(
            "patch_sessions_id_branches_b_notebook_params",
            self.session._p(b=self.session._b(branch)),
            body=params,
        )
        rec = m.ToolCallRecord.model_validate(raw)
        return dict((rec.result or {}).get("params") or {})

    async def get(self, *, flatten: bool = False, branch: str | None = None) -> dict[str, Any]:
        """All parameters; `flatten=True` gives dotted keys (`model.lr`)."""
        raw = await self.session.client._call(
            "get_sessions_id_branches_b_notebook_params",
            self.session._p(b=self.session._b(branch)),
            params={"flatten": "true" if flatten else None},
        )
        return dict(m.NotebookParams.model_validate(raw).params)

    async def history(self, *, branch: str | None = None) -> list[m.ParamChange]:
        """Every parameter change: who, when, old → new."""
        raw = await self.session.client._call(
            "get_sessions_id_branches_b_notebook_params_history",
            self.session._p(b=self.session._b(branch)),
        )
        return m.NotebookParamChanges.model_validate(raw).changes


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


class AsyncTrack:
    """A metric track (Dreamlake's `session.track(name)`): points with any numeric fields
    (`step`, `epoch`, `value`, …), appended one or a batch at a time, read by index or step,
    stats computed by the server."""

    def __init__(self, session: AsyncSession, name: str) -> None:
        self.session = session
        self.name = name

    def _p(self, branch: str | None) -> dict[str, str]:
        return self.session._p(b=self.session._b(branch), track=self.name)

    async def _append(self, body: dict[str, Any], branch: str | None) -> dict[str, Any]:
        raw = await self.session.client._call(
            "post_sessions_id_branches_b_notebook_tracks_track", self._p(branch), body=body
        )
        return dict(m.ToolCallRecord.model_validate(raw).result or {})

    async def append(
        self,
        value: float | None = None,
        *,
        step: float | None = None,
        branch: str | None = None,
        **fields: float,
    ) -> dict[str, Any]:
        """Appends one point; returns it with its `index` on the branch."""
        point: dict[str, float] = dict(fields)
        if value is not None:
            point["value"] = value
        if step is not None:
            point["step"] = step
        out = await self._append(_body(m.NotebookPoints, point=point), branch)
        return {**point, "index": int(out.get("total", 1)) - 1}

    async def append_batch(
        self, points: Iterable[float | Mapping[str, float]], *, branch: str | None = None
    ) -> dict[str, Any]:
        """Appends the points (each a value, or a mapping of fields) in one request: one batch,
        one node on the branch."""
        pts = [dict(p) if isinstance(p, Mapping) else {"value": float(p)} for p in points]
        return await self._append(_body(m.NotebookPoints, points=pts), branch)

    async def read(
        self,
        *,
        start_index: int = 0,
        limit: int | None = None,
        step_min: float | None = None,
        step_max: float | None = None,
        branch: str | None = None,
    ) -> Table:
        """Points from `start_index` (at most `limit`, default 1,000), optionally only steps in
        `[step_min, step_max]`; each with its `index`."""
        raw = await self.session.client._call(
            "get_sessions_id_branches_b_notebook_tracks_track",
            self._p(branch),
            params={
                "offset": start_index,
                "limit": limit,
                "step_min": step_min,
                "step_max": step_max,
            },
        )
        return Table(m.NotebookTrackPage.model_validate(raw).points, self.name)

    async def stats(self, *, branch: str | None = None) -> m.NotebookTrackStats:
        """Per field: count, min, max, mean, last (computed by the server from its batches)."""
        raw = await self.session.client._call(
            "get_sessions_id_branches_b_notebook_tracks_track_stats", self._p(branch)
        )
        return m.NotebookTrackStats.model_validate(raw)


class AsyncFiles(_Part):
    """Notebook files (Dreamlake's `session.files`): any content, stored content-addressed by
    the server, counted in your quota; deleting keeps the content until purged."""

    def _p(self, branch: str | None, **more: str) -> dict[str, str]:
        return self.session._p(b=self.session._b(branch), **more)

    async def upload(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        media_type: str | None = None,
        branch: str | None = None,
    ) -> m.NotebookFile:
        p = Path(path)
        op = "post_sessions_id_branches_b_notebook_files"
        resp = await self.session.client._send(
            "POST",
            _path(op, **self._p(branch)),
            params={"name": name or p.name},
            headers={"Content-Type": media_type or _guess_type(p.name)},
            content=p.read_bytes(),
        )
        rec = m.ToolCallRecord.model_validate(resp.json())
        return m.NotebookFile.model_validate((rec.result or {}).get("file") or {})

    async def list(self, *, branch: str | None = None) -> Table:
        raw = await self.session.client._call(
            "get_sessions_id_branches_b_notebook_files", self._p(branch)
        )
        return Table(raw.get("items") or [], "files")

    async def _find(self, file: str, branch: str | None) -> tuple[str, str]:
        """A file's id and name from an id or a name (the newest file of that name)."""
        items = list(await self.list(branch=branch))
        for f in reversed(items):
            if file in (f["id"], f["name"]):
                return str(f["id"]), str(f["name"])
        raise NotFound(f"no file {file!r} on this branch", code="no_such_file", status=404)

    async def download(
        self, file: str, dest: str | Path | None = None, *, branch: str | None = None
    ) -> Path:
        """Writes a file's content (by id or name) to `dest` (default: its name here)."""
        fid, name = await self._find(file, branch)
        op = "get_sessions_id_branches_b_notebook_files_file"
        resp = await self.session.client._send("GET", _path(op, **self._p(branch, file=fid)))
        out = Path(dest) if dest is not None else Path(Path(name).name)
        out.write_bytes(resp.content)
        return out

    async def delete(self, file: str, *, branch: str | None = None) -> m.NotebookFile:
        """Deletes a file on the branch (the node records it; the content is kept)."""
        fid, _ = await self._find(file, branch)
        raw = await self.session.client._call(
            "delete_sessions_id_branches_b_notebook_files_file", self._p(branch, file=fid)
        )
        rec = m.ToolCallRecord.model_validate(raw)
        return m.NotebookFile.model_validate((rec.result or {}).get("file") or {})


def _guess_type(name: str) -> str:
    import mimetypes

    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class AsyncCollaborators(_Part):
    """Who may work on the session, and how (`read`, `comment`, `write`, `add_materials`,
    `manage`)."""

    async def add(self, user: str, permissions: list[m.Permission]) -> m.Collaborator:
        body = _body(m.NewCollaborator, user=user, permissions=permissions)
        raw = await self.session.client._call(
            "post_sessions_id_collaborators", self.session._p(), body=body
        )
        return m.Collaborator.model_validate(raw)

    async def update(self, user: str, permissions: list[m.Permission]) -> m.Collaborator:
        body = _body(m.CollaboratorPatch, permissions=permissions)
        raw = await self.session.client._call(
            "patch_sessions_id_collaborators_user", self.session._p(user=user), body=body
        )
        return m.Collaborator.model_validate(raw)

    async def remove(self, user: str) -> None:
        await self.session.client._call(
            "delete_sessions_id_collaborators_user", self.session._p(user=user)
        )

    async def list(self) -> builtins.list[m.Collaborator]:
        return [
            m.Collaborator.model_validate(c)
            async for c in self.session.client._items(
                "get_sessions_id_collaborators", self.session._p()
            )
        ]

