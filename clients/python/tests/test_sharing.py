"""Sharing, collaborators, search, export/import, and the error families they raise."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import kiln
from tests.conftest import Server


def test_share_links(s: kiln.Session, server: Server) -> None:
    s.add_message("Analyse LiFePO4", role="user")
    link = s.share(expires_in_days=7, max_views=5)
    assert link.url.endswith(link.path) and link.token.startswith("ks_")
    shared = httpx.get(f"{server.url}/v1/shared/{link.token}")
    assert shared.status_code == 200
    assert shared.json()["conversation"][0]["content"] == "Analyse LiFePO4"
    assert [x.id for x in s.shares()] == [link.id]
    assert s.revoke_share(link.id).revoked_at is not None
    assert httpx.get(f"{server.url}/v1/shared/{link.token}").status_code == 404


def test_collaborators_and_permissions(s: kiln.Session, bob: kiln.Client) -> None:
    with pytest.raises(kiln.NotFound):
        bob.get_session(s.id)
    c = s.collaborators.add("bob", ["read"])
    assert c.name == "bob" and c.permissions == ["read"]
    as_bob = bob.get_session(s.id)
    with pytest.raises(kiln.Forbidden):
        as_bob.add_message("hello from bob")
    assert "write" in s.collaborators.update("bob", ["write"]).permissions
    as_bob.add_message("hello from bob")
    assert [x.name for x in s.collaborators.list()] == ["bob"]
    assert "bob" in {x.name for x in s.contributions()}
    as_bob.leave()
    with pytest.raises(kiln.NotFound):
        bob.get_session(s.id)
    s.collaborators.add("bob", ["read"])
    s.collaborators.remove("bob")
    assert s.collaborators.list() == []
    with pytest.raises(kiln.NotFound):
        s.collaborators.remove("nobody-here")


def test_search(client: kiln.Client, s: kiln.Session) -> None:
    s.add_discovery("olivine structure survives sodium", materials=["NaFePO4"])
    hits = client.search("olivine", kind="discovery", session=s.id)
    assert [h.session_id for h in hits] == [s.id]
    assert "<b>olivine</b>" in hits[0].hits[0].snippet
    assert not hits.fuzzy
    fuzzy = client.search("olivnie", session=s.id)
    assert fuzzy.fuzzy and fuzzy[0].session_id == s.id
    assert hits.to_pandas()["kind"].tolist() == ["discovery"]
    assert "olivine" in hits._repr_html_()
    with pytest.raises(kiln.InvalidInput) as e:
        client.search('"unclosed')
    assert e.value.code == "invalid_query"


def test_export_and_import(client: kiln.Client, s: kiln.Session, tmp_path: Path) -> None:
    s.add_message("Analyse LiFePO4", role="user")
    md = s.export("markdown", path=tmp_path / "report.md")
    assert md.startswith(f"# {s.name}") and (tmp_path / "report.md").read_text() == md
    doc = s.export("json", path=tmp_path / "s.json")
    assert doc["format"] == "kiln-session" and "signature" in doc
    copy = client.import_session(tmp_path / "s.json")
    assert copy.id != s.id and copy.name == s.name
    assert copy.data.provenance == "verified"
    assert [n.content for n in copy.messages(limit=1)] == ["Analyse LiFePO4"]
    again = client.import_session(doc)
    assert again.id not in (s.id, copy.id)
    doc["nodes"] = []
    with pytest.raises(kiln.KilnError) as e:
        client.import_session(doc)
    assert 400 <= e.value.status < 500


def test_unauthorized_and_not_found(server: Server, client: kiln.Client) -> None:
    with kiln.Client(server.url, "kiln_not_a_token") as bad, pytest.raises(kiln.Unauthorized):
        bad.list_sessions()
    with pytest.raises(kiln.NotFound) as e:
        client.get_session("01a00000-0000-7000-8000-000000000000")
    assert e.value.status == 404 and e.value.recoverable
    with pytest.raises(kiln.NotFound):
        client.create_session("x").call_tool("no_such_tool", {})
    with pytest.raises(kiln.InvalidInput) as e2:
        client.create_session("")
    assert e2.value.status == 400
