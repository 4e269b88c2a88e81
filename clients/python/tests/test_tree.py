"""The tree: branches, checkpoints, restore, merge with conflicts, diff, state, views."""

from __future__ import annotations

import pytest

import kiln


def test_branch_checkpoint_merge_diff(s: kiln.Session) -> None:
    s.add_material("LiFePO4")
    cp = s.checkpoint("baseline")
    assert cp.name == "baseline" and cp.branch == "main"
    b = s.branch("sodium", from_checkpoint="baseline")
    assert b.name == "sodium" and b.base == cp.node
    sodium = s.on("sodium")
    sodium.add_hypothesis("Na on the Li site keeps the olivine", status="open")
    assert len(s.state().hypotheses) == 0
    assert len(sodium.state().hypotheses) == 1
    assert len(s.state(branch="sodium").hypotheses) == 1
    d = s.diff("baseline", "sodium")
    added = d.state["hypotheses"]["added"]
    assert [h["statement"] for h in added] == ["Na on the Li site keeps the olivine"]
    assert d.base == cp.node
    r = s.merge("sodium", into="main")
    assert r.merged and r.merge_node
    assert len(s.state().hypotheses) == 1
    assert {x.name for x in s.branches()} == {"main", "sodium"}
    assert [c.name for c in s.checkpoints()] == ["baseline"]


def test_merge_conflict_carries_conflicts(s: kiln.Session) -> None:
    s.add_message("start")
    s.checkpoint("base")
    s.branch("b1", from_checkpoint="base")
    s.add_hypothesis("A", id="h1", status="open", branch="b1")
    s.add_hypothesis("B", id="h1", status="refuted")
    with pytest.raises(kiln.MergeConflict) as e:
        s.merge("b1", into="main")
    (c,) = e.value.conflicts
    assert c.field == "hypotheses.h1"
    assert c.ours["statement"] == "B" and c.theirs["statement"] == "A"
    r = s.merge("b1", into="main", strategy="theirs")
    assert r.merged and r.resolved[0].field == "hypotheses.h1"
    assert s.state().hypotheses[0].statement == "A"


def test_restore_recover_discard_reopen(s: kiln.Session) -> None:
    s.add_message("one")
    s.checkpoint("before-anneal")
    s.add_message("two")
    r = s.restore("before-anneal")
    assert r.saved_as.startswith("before-restore")
    assert [n.content for n in s.messages(limit=1)] == ["one"]
    s.add_message("three")
    assert s.recover().branch == "main"
    s.branch("dead-end")
    assert s.discard("dead-end").status == "discarded"
    assert "dead-end" not in {b.name for b in s.branches()}
    assert "dead-end" in {b.name for b in s.branches(all=True)}
    with pytest.raises(kiln.BranchDiscarded):
        s.add_message("x", branch="dead-end")
    assert s.reopen("dead-end").status == "open"
    with pytest.raises(kiln.AlreadyExists):
        s.branch("dead-end")
    with pytest.raises(ValueError):
        s.branch("x", from_branch="main", from_node="n")


def test_branch_from_branch_and_node_and_state_at(s: kiln.Session) -> None:
    first = s.add_material("LiFePO4")
    s.add_material("LiCoO2")
    s.branch("copy", from_branch="main")
    s.branch("early", from_node=first.head)
    assert [m.formula for m in s.state(branch="early").materials] == ["LiFePO4"]
    assert len(s.state(branch="copy").materials) == 2
    assert len(s.state(at=first.head).materials) == 1
    with pytest.raises(kiln.NotFound):
        s.state(branch="nope")
