"""Conversation: answers, streaming, lazy paging, appends, events and context."""

from __future__ import annotations

import pytest

import kiln


def test_ask_returns_answer_with_tool_calls(s: kiln.Session) -> None:
    a = s.ask("Analyse LiFePO4")
    assert "157.755" in a.text
    assert a.tool_calls[0].name == "materials_analyzer"
    assert a.tool_calls[0].arguments == {"action": "analyze", "formula": "LiFePO4"}
    assert a.tool_calls[0].ok is True
    assert a.outcome.branch == "main"
    assert "<p>" in a._repr_html_()


def test_ask_stream_yields_events_as_they_arrive(s: kiln.Session) -> None:
    s.ask("Analyse LiFePO4")
    stream = s.ask("What about its oxidation states?", stream=True)
    kinds = [ev.type for ev in stream]
    assert kinds[0] == "started"
    assert "tool_call" in kinds and "tool_result" in kinds
    assert kinds.count("token") > 1
    assert kinds[-1] == "done"
    assert stream.answer is not None
    assert stream.text == stream.answer.text
    assert "Fe+2" in stream.answer.text
    # The streamed turn is stored like any other.
    newest = next(iter(s.messages(limit=1)))
    assert newest.content == stream.answer.text


def test_stream_collect(s: kiln.Session) -> None:
    answer = s.ask("Analyse LiCoO2", stream=True).collect()
    assert "LiCoO2" in answer.text


def test_messages_page_lazily(s: kiln.Session) -> None:
    for i in range(7):
        s.add_message(f"note {i}")
    it = s.messages(page_size=3)
    first = [next(it) for _ in range(4)]
    assert [n.content for n in first] == ["note 6", "note 5", "note 4", "note 3"]
    assert [n.content for n in s.messages(limit=2, page_size=50)] == ["note 6", "note 5"]
    contents = [n.content for n in s.messages(page_size=2)]
    assert contents[:7] == [f"note {i}" for i in range(6, -1, -1)]


def test_add_message_head_moved(s: kiln.Session) -> None:
    out = s.add_message("Analyse LiFePO4", role="user")
    assert out.nodes[0].content == "Analyse LiFePO4"
    assert out.activated
    s.add_message("a second one", expected_head=out.head)
    with pytest.raises(kiln.HeadMoved) as e:
        s.add_message("stale", expected_head=out.head)
    assert e.value.details["expected"] == out.head
    assert isinstance(e.value, kiln.Conflict)


def test_state_events(s: kiln.Session) -> None:
    s.add_material("LiFePO4")
    s.add_discovery("olivine is stable", materials=["LiFePO4"], confidence=0.8, id="d1")
    s.add_hypothesis("Na keeps the olivine", id="h1", status="open")
    s.add_task("measure capacity", status="pending")
    st = s.state()
    assert [x.formula for x in st.materials] == ["LiFePO4"]
    assert st.discoveries[0].id == "d1" and st.discoveries[0].confidence == 0.8
    assert st.hypotheses[0].statement == "Na keeps the olivine"
    assert st.tasks[0].description == "measure capacity"
    html = st._repr_html_()
    assert "LiFePO4" in html and "measure capacity" in html


def test_context_pins_and_compress(s: kiln.Session) -> None:
    s.add_message("Analyse LiFePO4", role="user")
    s.pin("goal", "A cathode above 160 mAh/g")
    ctx = s.context()
    assert ctx.total_tokens > 0 and ctx.budget > 0
    cleared = s.unpin("goal")
    assert len(cleared.cleared) == 1
    out = s.compress(keep_recent=1)
    assert out.tokens_before >= 0
