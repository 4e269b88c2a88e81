"""The async client: the same surface, awaited (run with asyncio.run, no plugin needed)."""

from __future__ import annotations

import asyncio

import pytest

import kiln
from tests.conftest import Server


def test_async_flows(server: Server) -> None:
    async def main() -> None:
        async with kiln.AsyncClient(server.url, server.tokens["alice"]) as c:
            async with c.session("async screening", project="async") as s:
                assert s.status == "active"
                a = await s.ask("Analyse LiFePO4")
                assert "157.755" in a.text
                stream = await s.ask("What about its oxidation states?", stream=True)
                kinds = [ev.type async for ev in stream]
                assert kinds[0] == "started" and kinds[-1] == "done"
                assert stream.answer is not None and "Fe+2" in stream.answer.text
                nodes = [n async for n in s.messages(limit=3, page_size=2)]
                assert len(nodes) == 3 and nodes[0].content == stream.answer.text
                await s.checkpoint("baseline")
                await s.branch("sodium", from_checkpoint="baseline")
                await s.on("sodium").add_hypothesis("Na keeps the olivine", id="h")
                await s.add_hypothesis("it does not", id="h", status="refuted")
                with pytest.raises(kiln.MergeConflict) as e:
                    await s.merge("sodium")
                assert e.value.conflicts[0].field == "hypotheses.h"
                assert (await s.merge("sodium", strategy="union")).merged
                await s.track("capacity").append(151, step=1)
                assert (await s.track("capacity").stats()).points == 1
                sugg = await s.materials.similar("LiFePO4", limit=2)
                assert sugg.candidates is not None and len(sugg.candidates) == 2
                await s.optimizer.add_variable("t", "real", bounds=(300, 900), unit="°C")
                await s.optimizer.add_experiment({"t": 400}, 1.0)
                await s.optimizer.add_experiment({"t": 800}, 2.0)
                (nxt,) = await s.optimizer.suggest_next(n=1)
                assert 300 <= nxt["inputs"]["t"] <= 900
                sid = s.id
            with pytest.raises(ValueError):
                async with c.session("async screening", project="async") as s2:
                    assert s2.id == sid
                    raise ValueError("async failure")
            log = (await (await c.get_session(sid)).notebook())["log"]
            assert "async failure" in log[-1]["message"]

    asyncio.run(main())


def test_async_decorator(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_URL", server.url)
    monkeypatch.setenv("KILN_TOKEN", server.tokens["alice"])

    @kiln.session("async nightly", project="async")
    async def run(x: int, *, session: kiln.AsyncSession) -> str:
        await session.log("x", value=x)
        return session.id

    sid = asyncio.run(run(1))
    assert asyncio.run(run(2)) == sid

    @kiln.session("async nightly", client=kiln.Client(server.url, "t"))
    async def wrong(*, session: kiln.AsyncSession) -> None:
        pass

    with pytest.raises(TypeError):
        asyncio.run(wrong())


def test_async_errors(server: Server) -> None:
    async def main() -> None:
        async with kiln.AsyncClient(server.url, server.tokens["bob"]) as c:
            with pytest.raises(kiln.NotFound):
                await c.get_session("01a00000-0000-7000-8000-000000000000")

    asyncio.run(main())
