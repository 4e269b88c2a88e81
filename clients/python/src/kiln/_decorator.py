"""`@kiln.session(...)`: runs a function inside a session, passed as `session=`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from kiln._async.client import AsyncClient
from kiln._sync.client import Client

R = TypeVar("R")


def session(
    name: str,
    *,
    project: str | None = None,
    folder: str | None = None,
    client: Client | AsyncClient | None = None,
    **create: Any,
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorates a function (sync or `async def`) so each call runs inside the session named
    `name` (got or created, activated; an exception is recorded in its log), passed as the
    keyword argument `session` (the wrapper takes the other arguments). Without `client`, one
    is made from `KILN_URL`/`KILN_TOKEN` for the call and closed after it."""

    def wrap(fn: Callable[..., R]) -> Callable[..., R]:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def arun(*args: Any, **kw: Any) -> Any:
                if client is not None and not isinstance(client, AsyncClient):
                    raise TypeError("an async function needs a kiln.AsyncClient")
                c = client or AsyncClient()
                try:
                    async with c.session(name, project=project, folder=folder, **create) as s:
                        return await cast(Callable[..., Awaitable[Any]], fn)(
                            *args, session=s, **kw
                        )
                finally:
                    if client is None:
                        await c.aclose()

            return cast(Callable[..., R], arun)

        @functools.wraps(fn)
        def run(*args: Any, **kw: Any) -> R:
            if client is not None and not isinstance(client, Client):
                raise TypeError("a plain function needs a kiln.Client")
            c = client or Client()
            try:
                with c.session(name, project=project, folder=folder, **create) as s:
                    return fn(*args, session=s, **kw)
            finally:
                if client is None:
                    c.close()

        return run

    return wrap
