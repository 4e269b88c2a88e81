"""Notebook rendering: sessions, answers, tables and Markdown, escaped."""

from __future__ import annotations

import kiln
from kiln import _html


def test_session_repr_html_fetches_branches_and_state(s: kiln.Session) -> None:
    s.add_material("LiFePO4")
    s.branch("sodium")
    html = s._repr_html_()
    assert s.name in html and "<code>sodium</code>" in html and "LiFePO4" in html
    assert "status <strong>active</strong>" in html


def test_markdown_is_escaped_and_rendered() -> None:
    out = _html.markdown("# Title\n\n**bold** and `code` <script>\n\n- one\n- two\n")
    assert "<h1>Title</h1>" in out
    assert "<strong>bold</strong>" in out and "<code>code</code>" in out
    assert "&lt;script&gt;" in out and "<script>" not in out
    assert "<ul><li>one</li><li>two</li></ul>" in out
    assert "<pre><code>x &lt; 1\n</code></pre>" in _html.markdown("```\nx < 1\n```")


def test_table_spreads_inputs() -> None:
    t = kiln.Table([{"inputs": {"x": 1.0}, "mean": 0.123456789}], "suggestions")
    html = t._repr_html_()
    assert "<caption>suggestions</caption>" in html
    assert "<th>x</th><th>mean</th>" in html and "0.123457" in html
