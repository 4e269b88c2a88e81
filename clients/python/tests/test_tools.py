"""Tools: materials, tracking in Dreamlake's words, files, and a Branin campaign."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import kiln


def test_materials(s: kiln.Session) -> None:
    a = s.materials.analyze("LiFePO4")
    assert a.formula == "LiFePO4" and a.valid is True
    assert "157.755" in a.text
    v = s.materials.validate("Fe3O4")
    assert v.valid is False and any("mixed valence" in r for r in v.reasons or [])
    sim = s.materials.similar("LiFePO4", limit=3)
    assert sim.candidates is not None and len(sim.candidates) == 3
    cmp = s.materials.compare("LiFePO4", "LiCoO2")
    assert "LiCoO2" in cmp.text
    with pytest.raises(kiln.InvalidInput) as e:
        s.materials.analyze("Xx2")
    assert e.value.code == "invalid_arguments"
    # Recorded as the agent would: the state knows the material.
    assert "LiFePO4" in {m.formula for m in s.state().materials}


def test_log_params_track(s: kiln.Session) -> None:
    s.log("started", level="info", run=3)
    s.log("hot", level="warn")
    assert s.params.set(model={"lr": 1e-3, "layers": 2}, seed=7) == {
        "model": {"lr": 1e-3, "layers": 2}, "seed": 7
    }
    assert s.params.get() == {"model": {"lr": 1e-3, "layers": 2}, "seed": 7}
    assert s.params.get(flatten=True) == {"model.lr": 1e-3, "model.layers": 2, "seed": 7}
    s.params.set(model={"lr": 1e-4})
    last = s.params.history()[-1]
    assert (last.key, last.old, last.new) == ("model.lr", 1e-3, 1e-4)
    cap = s.track("capacity")
    assert cap.append(value=151, step=3) == {"value": 151, "step": 3, "index": 0}
    cap.append_batch([{"value": 149.5, "step": 4}, {"value": 150.0, "step": 10, "epoch": 1}])
    pts = cap.read()
    assert [(p["step"], p["value"]) for p in pts] == [(3, 151.0), (4, 149.5), (10, 150.0)]
    assert [p["index"] for p in cap.read(step_min=4, step_max=10)] == [1, 2]
    st = cap.stats()
    assert st.points == 3
    assert st.fields["value"] == {"count": 3, "min": 149.5, "max": 151.0,
                                  "mean": pytest.approx(150.1666, 1e-4), "last": 150.0}
    assert st.fields["epoch"]["count"] == 1
    with pytest.raises(kiln.NotFound) as e:
        s.track("empty").stats()
    assert e.value.code == "no_such_track"
    df = pts.to_pandas()
    assert list(df["value"]) == [151.0, 149.5, 150.0]
    warn = s.logs(level="warn")
    assert [x.message for x in warn.lines] == ["hot"]
    started = s.logs(meta="run=3").lines[0]
    assert started.message == "started" and started.metadata == {"run": 3}


def test_files(s: kiln.Session, tmp_path: Path) -> None:
    f = tmp_path / "xrd.csv"
    f.write_text("two_theta,intensity\n20.1,330\n")
    meta = s.files.upload(f)
    assert meta.name == "xrd.csv" and meta.bytes == f.stat().st_size
    assert meta.content_type == "text/csv"
    png = tmp_path / "xrd.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    s.files.upload(png)
    assert [x["name"] for x in s.files.list()] == ["xrd.csv", "xrd.png"]
    out = s.files.download("xrd.png", tmp_path / "back.png")
    assert out.read_bytes() == png.read_bytes()
    s.files.delete("xrd.csv")
    assert [x["name"] for x in s.files.list()] == ["xrd.png"]
    with pytest.raises(kiln.NotFound):
        s.files.download("xrd.csv", tmp_path / "gone.csv")


def test_project_sessions_and_protection(client: kiln.Client) -> None:
    a = client.project_session("cathodes", "run-7", folder="/2026/jan", tags=["lfp"])
    assert a.data.folder == "/2026/jan"
    assert client.project_session("cathodes", "run-7").id == a.id
    tree = client.project_tree("cathodes", folder="/2026")
    assert tree.tree.folders[0]["sessions"][0]["id"] == a.id
    assert "cathodes" in {p.name for p in client.projects()}
    a.protect()
    assert a.data.protected is True
    with pytest.raises(kiln.Conflict) as e:
        a.log("refused")
    assert e.value.code == "session_protected"
    a.unprotect()
    a.log("accepted")


def branin(x1: float, x2: float) -> float:
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s_, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s_ * (1 - t) * math.cos(x1) + s_


def test_branin_campaign(client: kiln.Client, tmp_path: Path) -> None:
    s = client.create_session("Branin campaign", project="optimizer")
    opt = s.optimizer
    opt.add_variable("x1", "real", bounds=(-5, 10), unit="mm")
    opt.add_variable("x2", "real", bounds=(0, 15))
    opt.set_objective("y", "minimize")
    assert [v["name"] for v in opt.variables()] == ["x1", "x2"]
    assert opt.objective() == {"name": "y", "goal": "minimize"}

    initial = opt.initial_design(10)
    assert len(initial) == 10
    # The first five by CSV (ALchemist's load_data), the rest one by one.
    rows = ["x1,x2,y"] + [
        f"{p['inputs']['x1']},{p['inputs']['x2']},{branin(p['inputs']['x1'], p['inputs']['x2'])}"
        for p in initial[:5]
    ]
    (tmp_path / "runs.csv").write_text("\n".join(rows) + "\n")
    assert opt.load_data(tmp_path / "runs.csv")["added"] == 5
    for p in initial[5:]:
        x = p["inputs"]
        opt.add_experiment(x, branin(x["x1"], x["x2"]))
    opt.lock_data("10 initial points by LHS")
    opt.lock_model("GP, Matérn 5/2")

    best0 = min(e["output"] for e in opt.experiments())
    for i in range(20):
        (sug,) = opt.suggest_next(strategy="EI", n=1)
        x = sug["inputs"]
        assert -5 <= x["x1"] <= 10 and 0 <= x["x2"] <= 15
        assert isinstance(x["x1"], float)
        opt.add_experiment(x, branin(x["x1"], x["x2"]))
        if i == 9:
            opt.lock_acquisition("EI, half way")
    exps = opt.experiments()
    assert len(exps) == 30
    assert all(isinstance(e["inputs"]["x1"], float) for e in exps)
    best = min(e["output"] for e in exps)
    assert best <= best0
    assert best < 1.0  # the minimum is 0.3979; 20 EI steps get close

    pred = opt.predict([{"x1": math.pi, "x2": 2.275}])
    assert pred[0]["mean"] == pytest.approx(0.3979, abs=1.0)
    before = len(list(s.messages(limit=1000)))
    st = opt.status()
    assert st["n_experiments"] == 30 and st["best"]["output"] == best
    best_guess = opt.optimum()
    assert best_guess["mean"] <= best + 1.0
    assert opt.plot_svg("dependence", variable="x1").startswith("<svg")
    assert len(list(s.messages(limit=1000))) == before  # reads record nothing
    excluded = opt.exclude_experiment(1, "first run was a dry run")
    assert excluded["n_active"] == 29
    assert opt.status()["n_excluded"] == 1
    opt.include_experiment(1, "it was fine")

    audit = opt.export_audit_markdown()
    assert audit.startswith("### Tool `bayesian_optimizer`")
    assert "Data locked" in audit and "10 initial points by LHS" in audit
    assert "EI, half way" in audit
    svg = opt.convergence_svg()
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    html = opt._repr_html_()
    assert "<svg" in html and "<table>" in html
    assert "x1" in exps._repr_html_()
    df = exps.to_pandas()
    assert list(df.columns) == ["x1", "x2", "output"] and len(df) == 30
    assert s.verify_audit().valid

    with pytest.raises(kiln.NotSupported):
        opt.queue([{"x1": 1, "x2": 2}])
    with pytest.raises(kiln.NotSupported):
        opt.lock_controller()
