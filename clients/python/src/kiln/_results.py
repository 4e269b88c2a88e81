"""What the client's calls return beyond the server's shapes: answers, stream events, tables."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kiln import _html
from kiln._models import Model, TurnOutcome

if TYPE_CHECKING:
    import pandas


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("to_pandas() needs pandas: pip install 'kiln-client[pandas]'") from e
    return pandas


@dataclass
class ToolCallInfo:
    """One tool call of an agent turn (or a stream): name, arguments, outcome."""

    id: str
    name: str
    arguments: Any
    ok: bool | None = None
    text: str = ""
    result: Any = None


@dataclass
class Answer:
    """An agent turn's answer: its text, the tools it called, the discoveries it recorded."""

    text: str
    tool_calls: list[ToolCallInfo]
    discoveries: list[dict[str, Any]]
    outcome: TurnOutcome

    @classmethod
    def from_outcome(cls, out: TurnOutcome) -> Answer:
        calls = []
        for c in out.tool_calls:
            args = c.get("arguments")
            if isinstance(args, str):
                with contextlib.suppress(ValueError):
                    args = json.loads(args)
            calls.append(
                ToolCallInfo(
                    id=str(c.get("id", "")),
                    name=str(c.get("name", "")),
                    arguments=args,
                    ok=c.get("ok"),
                    text=str(c.get("text", "")),
                    result=c.get("result"),
                )
            )
        return cls(out.answer, calls, list(out.discoveries), out)

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return _html.markdown(self.text) + _html.tool_calls_html(self.tool_calls)


@dataclass
class StreamEvent:
    """One server-sent event of a streamed turn.

    `type` is `queued`, `started`, `summarised`, `token`, `tool_call`, `tool_result`,
    `discovery`, `done` or `error`; `data` is the event's JSON. `text` is a token's text.
    """

    type: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return str(self.data.get("text", "")) if self.type == "token" else ""


class Table(list[dict[str, Any]]):
    """A list of rows (dicts) that renders as an HTML table and converts to pandas."""

    title: str = ""

    def __init__(self, rows: Iterable[dict[str, Any]] = (), title: str = "") -> None:
        super().__init__(rows)
        self.title = title

    def flat_rows(self) -> Iterator[dict[str, Any]]:
        """Rows with nested `inputs` spread into columns."""
        for r in self:
            row: dict[str, Any] = {}
            for k, v in r.items():
                if k == "inputs" and isinstance(v, dict):
                    row.update(v)
                else:
                    row[k] = v
            yield row

    def to_pandas(self) -> pandas.DataFrame:
        """The rows as a DataFrame (needs pandas), inputs spread into columns."""
        df: pandas.DataFrame = _pandas().DataFrame(list(self.flat_rows()))
        return df

    def _repr_html_(self) -> str:
        return _html.table(list(self.flat_rows()), self.title)


class MaterialResult(Model):
    """A materials_analyzer result (analyze, validate, similar or compare), typed loosely.

    The fields are the tool's result; `text` is its one-line summary.
    """

    text: str = ""
    formula: str | None = None
    molar_mass: float | None = None
    reduced_formula: str | None = None
    oxidation_states: dict[str, Any] | None = None
    valid: bool | None = None
    reasons: list[str] | None = None
    candidates: list[dict[str, Any]] | None = None

    def _repr_html_(self) -> str:
        return f"<p>{_html.esc(self.text)}</p>"


class SearchResults(list[Any]):
    """Search hits grouped by session (`SearchSession` items); `fuzzy` when typo-tolerant."""

    def __init__(self, items: Iterable[Any] = (), fuzzy: bool = False) -> None:
        super().__init__(items)
        self.fuzzy = fuzzy

    def rows(self) -> list[dict[str, Any]]:
        """One row per hit: session, kind, node, score, snippet."""
        out = []
        for s in self:
            for h in s.hits:
                out.append(
                    {
                        "session_id": s.session_id,
                        "session_name": s.session_name,
                        "kind": h.kind,
                        "node_id": h.node_id,
                        "score": h.score,
                        "snippet": h.snippet,
                    }
                )
        return out

    def to_pandas(self) -> pandas.DataFrame:
        df: pandas.DataFrame = _pandas().DataFrame(self.rows())
        return df

    def _repr_html_(self) -> str:
        return _html.table(self.rows(), "search (fuzzy)" if self.fuzzy else "search")
