"""Memory across sessions: saved, listed, edited and deleted by its owner alone, and seen in
the context window of the owner's turns."""

from __future__ import annotations

import pytest

import kiln


def test_memory_is_yours_and_reaches_the_context(
    client: kiln.Client, bob: kiln.Client, s: kiln.Session
) -> None:
    for e in client.memory():
        client.forget(e.id)
    entry = client.remember("I report capacities in mAh/g", kind="preference")
    assert entry.kind == "preference" and entry.source == "user"
    assert [e.id for e in client.memory()] == [entry.id]
    assert bob.memory() == []
    with pytest.raises(kiln.NotFound):
        bob.forget(entry.id)
    with pytest.raises(kiln.InvalidInput):
        client.remember("   ")
    s.ask("Analyse LiFePO4")
    ctx = s.context()
    assert entry.id in ctx.memory
    assert any(p["name"] == "memory" and p["tokens"] > 0 for p in ctx.parts)
    edited = client.update_memory(entry.id, content="I report capacities in mA h/g")
    assert edited.content == "I report capacities in mA h/g"
    client.forget(entry.id)
    assert client.memory() == []
