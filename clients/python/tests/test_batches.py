"""Batches from Python: start over a list of formulas, wait, read the answers and the CSV."""

from __future__ import annotations

import pytest

import kiln


def test_a_batch_of_formulas(s: kiln.Session) -> None:
    started = s.start_batch(
        "Analyse {formula}",
        [{"formula": f} for f in ("LiFePO4", "LiCoO2", "NaCl")],
        concurrency=2,
    )
    assert started.total == 3 and started.status == "running"
    done = s.wait_batch(started.id, timeout=60)
    assert done.status == "done" and done.counts.done == 3
    assert done.items is not None
    assert done.items[0].numbers is not None
    assert done.items[0].numbers["molar_mass"] == pytest.approx(157.755)
    assert [b.id for b in s.batches()] == [started.id]
    table = s.batch_csv(started.id)
    assert table.splitlines()[0].startswith("item,formula,status,branch,answer")
    with pytest.raises(kiln.Conflict):
        s.cancel_batch(started.id)
    with pytest.raises(kiln.InvalidInput):
        s.start_batch("Analyse {formula}", [{"f": "NaCl"}])
