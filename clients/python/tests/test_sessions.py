"""Sessions: the three styles, details and lifecycle, logs, listings."""

from __future__ import annotations

import pytest

import kiln
from tests.conftest import Server


def test_context_manager_gets_or_creates_and_activates(client: kiln.Client) -> None:
    with client.session("LFP screening", project="cathodes", folder="/2026/dec") as s:
        assert s.status == "active"
        assert s.data.metadata["folder"] == "/2026/dec"
        first = s.id
    s.pause()
    with client.session("LFP screening", project="cathodes", folder="/2026/dec") as again:
        assert again.id == first
        assert again.status == "resumed"
    with client.session("LFP screening", project="cathodes", folder="/2027") as other:
        assert other.id != first


def test_exception_inside_with_is_recorded_and_reraised(client: kiln.Client) -> None:
    with pytest.raises(ZeroDivisionError), client.session("crashy", project="t") as s:
        s.log("about to fail")
        _ = 1 / 0
    log = client.get_session(s.id).notebook()["log"]
    assert log[-1]["level"] == "error"
    assert "ZeroDivisionError" in log[-1]["message"]
    assert "division by zero" in log[-1]["message"]
    assert "ZeroDivisionError" in log[-1]["metadata"]["traceback"]


def test_decorator_injects_session(server: Server) -> None:
    client = kiln.Client(server.url, server.tokens["alice"])

    @kiln.session("nightly sweep", project="cathodes", client=client)
    def sweep(n: int, *, session: kiln.Session) -> str:
        session.track("loss").append(0.5 / n, step=n)
        return session.id

    sid = sweep(2)
    assert sweep(4) == sid
    pts = client.get_session(sid).track("loss").read()
    assert [(p["step"], p["value"]) for p in pts] == [(2, 0.25), (4, 0.125)]

    @kiln.session("nightly sweep", project="cathodes", client=client)
    def boom(*, session: kiln.Session) -> None:
        raise RuntimeError("sweep failed")

    with pytest.raises(RuntimeError):
        boom()
    assert "sweep failed" in client.get_session(sid).notebook()["log"][-1]["message"]
    client.close()


def test_decorator_reads_environment(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_URL", server.url)
    monkeypatch.setenv("KILN_TOKEN", server.tokens["alice"])

    @kiln.session("from env", project="env")
    def f(*, session: kiln.Session) -> str:
        return session.status

    assert f() == "active"


def test_explicit_lifecycle(client: kiln.Client) -> None:
    s = client.create_session("explicit", project="t", tags=["a"], description="d")
    assert s.status == "created"
    assert s.activate().status == "active"
    assert s.pause().status == "paused"
    with pytest.raises(kiln.InvalidTransition) as e:
        s.activate()
    assert e.value.details["allowed"] == ["archived", "resumed"]
    assert s.resume().status == "resumed"
    assert s.activate().status == "active"
    assert s.archive().status == "archived"
    with pytest.raises(kiln.SessionNotActive):
        s.add_message("hello")
    s.resume()
    got = client.get_session(s.id)
    assert (got.name, got.data.tags, got.data.description) == ("explicit", ["a"], "d")
    assert [e.to for e in s.events()] == [
        "created", "active", "paused", "resumed", "active", "archived", "resumed"
    ]


def test_update_guarded_by_version(client: kiln.Client, s: kiln.Session) -> None:
    other = client.get_session(s.id)
    s.update(name="renamed", tags=["x"])
    assert s.refresh().name == "renamed"
    with pytest.raises(kiln.VersionConflict) as e:
        other.update(name="mine")
    assert e.value.details["stored_version"] == s.data.version
    other.refresh()
    assert other.update(description="ok").description == "ok"


def test_list_and_delete(client: kiln.Client) -> None:
    made = [client.create_session(f"list {i}", project="listing") for i in range(3)]
    listed = client.list_sessions(project="listing")
    assert {x.id for x in listed} >= {x.id for x in made}
    assert len(client.list_sessions(project="listing", limit=2)) == 2
    made[0].delete()
    with pytest.raises(kiln.NotFound):
        client.get_session(made[0].id)


def test_audit_reflog_statistics(client: kiln.Client, s: kiln.Session) -> None:
    s.add_message("Analyse LiFePO4", role="user")
    s.checkpoint("c1")
    s.add_message("more")
    s.restore("c1")
    assert s.verify_audit().valid
    assert len(s.audit()) >= 1
    assert any(r.reason for r in s.reflog())
    st = s.statistics()
    assert st.messages >= 2 and st.checkpoints >= 1
    assert [c.name for c in s.contributions()] == ["alice"]
    assert isinstance(s.summary().next_steps, list)


def test_health_tools_key(client: kiln.Client) -> None:
    assert client.health().status == "ok"
    names = {t.name for t in client.tools()}
    assert {"materials_analyzer", "bayesian_optimizer", "notebook"} <= names
    assert len(client.instance_key().public_key) == 64
