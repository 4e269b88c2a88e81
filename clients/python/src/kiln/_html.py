"""HTML for notebooks (`_repr_html_`): tables, a small Markdown subset, sessions and state."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln._models import ResearchState, Session
    from kiln._results import ToolCallInfo


def esc(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return esc(v)


def table(rows: Sequence[dict[str, Any]], title: str = "") -> str:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows
    )
    cap = f"<caption>{esc(title)}</caption>" if title else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![*\w])\*([^*]+)\*(?!\*)"), r"<em>\1</em>"),
]


def _inline(text: str) -> str:
    out = esc(text)
    for pat, rep in _INLINE:
        out = pat.sub(rep, out)
    return out


def markdown(text: str) -> str:
    """Renders the Markdown the agent writes (headings, lists, code, emphasis); text is escaped."""
    out: list[str] = []
    in_list = False
    in_code = False
    para: list[str] = []

    def flush() -> None:
        nonlocal in_list
        if para:
            out.append("<p>" + "<br>".join(_inline(p) for p in para) + "</p>")
            para.clear()
        if in_list:
            out.append("</ul>")
            in_list = False

    for line in text.splitlines():
        if line.startswith("```"):
            flush()
            out.append("</code></pre>" if in_code else "<pre><code>")
            in_code = not in_code
            continue
        if in_code:
            out.append(esc(line) + "\n")
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            flush()
            n = len(m.group(1))
            out.append(f"<h{n}>{_inline(m.group(2))}</h{n}>")
        elif re.match(r"^\s*[-*]\s+", line):
            if para:
                out.append("<p>" + "<br>".join(_inline(p) for p in para) + "</p>")
                para.clear()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append("<li>" + _inline(re.sub(r"^\s*[-*]\s+", "", line)) + "</li>")
        elif not line.strip():
            flush()
        else:
            if in_list:
                out.append("</ul>")
                in_list = False
            para.append(line)
    flush()
    if in_code:
        out.append("</code></pre>")
    return "".join(out)


def tool_calls_html(calls: Sequence[ToolCallInfo]) -> str:
    if not calls:
        return ""
    items = "".join(
        f"<li><code>{esc(c.name)}</code>: {esc(c.text)}</li>" for c in calls
    )
    return f"<details><summary>{len(calls)} tool call(s)</summary><ul>{items}</ul></details>"


def state_html(state: ResearchState) -> str:
    focus = state.focus.material or state.focus.topic or "—"
    rows = [
        {"what": "materials", "count": len(state.materials),
         "latest": ", ".join(m.formula for m in state.materials[-5:])},
        {"what": "discoveries", "count": len(state.discoveries),
         "latest": "; ".join(d.description for d in state.discoveries[-3:])},
        {"what": "hypotheses", "count": len(state.hypotheses),
         "latest": "; ".join(f"{h.statement} ({h.status})" for h in state.hypotheses[-3:])},
        {"what": "tasks", "count": len(state.tasks),
         "latest": "; ".join(t.description for t in state.tasks[-3:])},
        {"what": "tools", "count": len(state.tools), "latest": ", ".join(state.tools)},
    ]
    return f"<p>Focus: <strong>{esc(focus)}</strong></p>" + table(rows)


def session_html(
    s: Session, branches: Sequence[str] | None, state: ResearchState | None
) -> str:
    head = (
        f"<h3>{esc(s.name)}</h3><p>status <strong>{esc(s.status)}</strong>"
        f" · project {esc(s.project or '—')} · <code>{esc(s.id)}</code></p>"
    )
    br = (
        "<p>branches: " + ", ".join(f"<code>{esc(b)}</code>" for b in branches) + "</p>"
        if branches is not None
        else ""
    )
    st = state_html(state) if state is not None else ""
    return head + br + st
