#!/usr/bin/env python3
"""Kiln's session store side by side with what users would pick instead.

Runs one workload on three session stores, in one run, each in its own process:

* Kiln, through `kiln bench compare ... --json` (the Rust SessionManager),
* the OpenAI Agents SDK's `SQLiteSession` (`openai-agents`),
* LangGraph's `SqliteSaver` (`langgraph-checkpoint-sqlite`) behind a compiled
  `StateGraph(MessagesState)` invoked once per turn, as a chat app uses it.

Workload: append N turns (a user message of ~200 chars and an assistant message
of ~600 chars, generated from a seed) one at a time, waiting for each append;
read the last 20 items R times; fork at turn N/2.  All stores run SQLite with
journal_mode=WAL and synchronous=NORMAL, set on the library's own connections
and read back from them.

The Python libraries are installed, at the versions pinned in
scripts/bench_sessions_requirements.txt, into a throwaway virtual environment
(or the one given by --venv); this script then re-runs itself inside it as a
worker (`--worker openai|langgraph`).  It needs nothing beyond the standard
library to start.

Usage:
    python3 scripts/bench_sessions_compare.py                 # full: 10k turns
    python3 scripts/bench_sessions_compare.py --turns 1000 --reads 200   # smoke
    python3 scripts/bench_sessions_compare.py --venv /tmp/venv-bench --no-build

See scripts/BENCH-SESSIONS-NOTES.md for what each side does and why.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REQUIREMENTS = HERE / "bench_sessions_requirements.txt"
REPORTED_PACKAGES = (
    "openai-agents",
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite",
    "langchain-core",
)
WANTED = {"journal_mode": "wal", "synchronous": "normal"}
SYNCHRONOUS_NAMES = {0: "off", 1: "normal", 2: "full", 3: "extra"}
TARGET_RATIO = 10.0

# --------------------------------------------------------------------------
# Workload: deterministic text from a seed (stdlib only, shared by every side)
# --------------------------------------------------------------------------

MASK64 = (1 << 64) - 1
VOCABULARY = (
    "the perovskite lattice band gap sample anneal phase stable formation energy "
    "oxide dopant synthesis measured predicted structure tolerance factor cation "
    "anion octahedral tilt diffraction peak shift composition ratio candidate "
    "screening descriptor model uncertainty acquisition function next experiment "
    "batch yield conductivity thermal expansion density grain boundary defect "
    "vacancy substitution hypothesis supports contradicts refines evidence result "
    "we should compare with the previous run and check whether temperature "
    "pressure or precursor purity explains the difference in this series"
).split()
USER_LEN = (150, 250)  # inclusive bounds, mean 200 chars
ASSISTANT_LEN = (450, 750)  # inclusive bounds, mean 600 chars


class SplitMix64:
    """SplitMix64: tiny, well-known, easy to reproduce in Rust."""

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


def message_text(rng: SplitMix64, bounds: tuple[int, int]) -> str:
    """A text of length in `bounds`: words drawn from VOCABULARY, cut to length."""
    low, high = bounds
    length = low + rng.next() % (high - low + 1)
    words: list[str] = []
    size = -1
    while size < length:
        word = VOCABULARY[rng.next() % len(VOCABULARY)]
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:length]


def generate_turns(seed: int, turns: int) -> list[tuple[str, str]]:
    """`turns` (user, assistant) text pairs, identical for a given seed."""
    rng = SplitMix64(seed)
    return [(message_text(rng, USER_LEN), message_text(rng, ASSISTANT_LEN)) for _ in range(turns)]


# --------------------------------------------------------------------------
# SQLite helpers
# --------------------------------------------------------------------------


def pragma_state(conn: sqlite3.Connection) -> dict[str, str]:
    """What this very connection runs with."""
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    return {"journal_mode": str(journal).lower(), "synchronous": SYNCHRONOUS_NAMES.get(sync, str(sync))}


def db_bytes(path: Path) -> int:
    """Size of the database and its WAL after PRAGMA wal_checkpoint(TRUNCATE)."""
    with sqlite3.connect(str(path)) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise RuntimeError(f"wal_checkpoint(TRUNCATE) on {path} was blocked by a reader")
    conn.close()
    wal = Path(f"{path}-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in REPORTED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def merge_pragmas(states: list[dict[str, str]]) -> dict[str, Any]:
    """One journal_mode/synchronous pair if every connection agrees, else 'mixed'."""
    journals = sorted({s["journal_mode"] for s in states})
    syncs = sorted({s["synchronous"] for s in states})
    return {
        "journal_mode": journals[0] if len(journals) == 1 else "mixed:" + ",".join(journals),
        "synchronous": syncs[0] if len(syncs) == 1 else "mixed:" + ",".join(syncs),
        "connections_checked": len(states),
    }


# --------------------------------------------------------------------------
# Worker: OpenAI Agents SDK SQLiteSession
# --------------------------------------------------------------------------


def worker_openai(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_openai(args))


async def _openai(args: argparse.Namespace) -> dict[str, Any]:
    from agents import SQLiteSession

    class BenchSession(SQLiteSession):
        """SQLiteSession whose connections also get synchronous=NORMAL.

        SQLiteSession opens one connection per worker thread (each call runs in
        asyncio.to_thread) and passes every new one through
        `_configure_connection`, which sets journal_mode=WAL; synchronous is a
        per-connection setting, so it is added there too.
        """

        @staticmethod
        def _configure_connection(conn: sqlite3.Connection) -> None:
            SQLiteSession._configure_connection(conn)
            conn.execute("PRAGMA synchronous=NORMAL")

    turns = generate_turns(args.seed, args.turns)
    items = [
        (
            {"role": "user", "content": user},
            {
                "id": f"msg_{index:08d}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": reply, "annotations": []}],
            },
        )
        for index, (user, reply) in enumerate(turns)
    ]
    path = Path(args.data_dir) / "openai_sessions.db"
    session = BenchSession("bench-main", path)

    # The Runner saves the user input before the model call and the output after
    # it: two add_items calls per turn.
    log(f"openai: appending {args.turns} turns one at a time")
    start = time.perf_counter()
    for user_item, assistant_item in items:
        await session.add_items([user_item])
        await session.add_items([assistant_item])
    append_total = time.perf_counter() - start

    log(f"openai: reading the last {args.read_limit} items {args.reads} times")
    last: list[Any] = []
    start = time.perf_counter()
    for _ in range(args.reads):
        last = await session.get_items(limit=args.read_limit)
    read_total = time.perf_counter() - start
    flat = [item for pair in items for item in pair]
    if last != flat[-args.read_limit :]:
        raise RuntimeError("openai: get_items(limit) did not return the newest items")

    with session._lock:  # the library's own connections, one per worker thread
        connections = list(session._connections)
    pragmas = merge_pragmas([pragma_state(conn) for conn in connections])
    size = db_bytes(path)

    # No fork API: a user copies the first turns into a new session.
    log(f"openai: fork at turn {args.fork_at} by copying into a new session")
    start = time.perf_counter()
    history = await session.get_items()
    fork = BenchSession("bench-fork", path)
    await fork.add_items(history[: 2 * args.fork_at])
    fork_s = time.perf_counter() - start
    forked = await fork.get_items()
    if len(forked) != 2 * args.fork_at or forked[-1] != flat[2 * args.fork_at - 1]:
        raise RuntimeError("openai: the forked session does not hold the first turns")
    fork.close()
    session.close()

    return {
        "system": "openai-agents SQLiteSession",
        **pragmas,
        "turns": args.turns,
        "append_total_s": append_total,
        "append_per_turn_us": append_total / args.turns * 1e6,
        "append_per_message_us": append_total / (2 * args.turns) * 1e6,
        "reads": args.reads,
        "read_total_s": read_total,
        "read_per_op_us": read_total / args.reads * 1e6,
        "fork_at": args.fork_at,
        "fork_s": fork_s,
        "db_bytes": size,
        "db_bytes_after_fork": db_bytes(path),
        "how": "2 add_items() per turn (as Runner saves input, then output); "
        "get_items(limit); fork = get_items() + add_items(first 2*fork_at) into a new session",
    }


# --------------------------------------------------------------------------
# Worker: LangGraph StateGraph + SqliteSaver
# --------------------------------------------------------------------------


def worker_langgraph(args: argparse.Namespace) -> dict[str, Any]:
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, MessagesState, StateGraph

    turns = generate_turns(args.seed, args.turns)
    replies = [reply for _, reply in turns]

    def assistant(state: MessagesState) -> dict[str, Any]:
        # Stands in for the LLM call: the reply of the turn being answered.
        turn = (len(state["messages"]) - 1) // 2
        return {"messages": [AIMessage(content=replies[turn])]}

    path = Path(args.data_dir) / "langgraph_checkpoints.db"
    conn = sqlite3.connect(str(path), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    saver = SqliteSaver(conn)
    builder = StateGraph(MessagesState)
    builder.add_node("assistant", assistant)
    builder.add_edge(START, "assistant")
    builder.add_edge("assistant", END)
    graph = builder.compile(checkpointer=saver)

    def last_messages(config: dict[str, Any]) -> list[Any]:
        return graph.get_state(config).values["messages"][-args.read_limit :]

    def expect_tail(got: list[Any], upto_turn: int, what: str) -> None:
        texts = [text for pair in turns[:upto_turn] for text in pair][-args.read_limit :]
        if [m.content for m in got] != texts:
            raise RuntimeError(f"langgraph: {what} does not hold the expected messages")

    cap = args.turns if args.langgraph_max_turns <= 0 else min(args.turns, args.langgraph_max_turns)
    capped = cap < args.turns
    fork_at = args.fork_at if not capped else max(1, round(args.fork_at * cap / args.turns))

    # ---- the real workload, one invoke per turn, up to `cap` turns
    config = {"configurable": {"thread_id": "bench-main"}}
    log(f"langgraph: invoking the graph for {cap} turns one at a time")
    append_total = 0.0
    window = max(1, cap // 10)
    window_total = 0.0
    fork_config = None
    mid_turns, mid_bytes = cap // 2, None
    for index in range(cap):
        start = time.perf_counter()
        graph.invoke({"messages": [HumanMessage(content=turns[index][0])]}, config)
        spent = time.perf_counter() - start
        append_total += spent
        if index >= cap - window:
            window_total += spent
        done = index + 1
        if done == fork_at:  # the user keeps the checkpoint id of this turn (untimed)
            fork_config = graph.get_state(config).config
        if done == mid_turns and capped:
            mid_bytes = db_bytes(path)
        if done % max(1, cap // 10) == 0:
            log(f"langgraph: {done}/{cap} turns, last turn {spent * 1e3:.1f} ms")

    log(f"langgraph: reading the last {args.read_limit} messages {args.reads} times")
    got: list[Any] = []
    start = time.perf_counter()
    for _ in range(args.reads):
        got = last_messages(config)
    read_total = time.perf_counter() - start
    expect_tail(got, cap, "get_state")
    pragmas = merge_pragmas([pragma_state(saver.conn)])
    size = db_bytes(path)

    log(f"langgraph: fork at turn {fork_at} with update_state on its checkpoint")
    start = time.perf_counter()
    forked_config = graph.update_state(fork_config, {"messages": []})
    fork_s = time.perf_counter() - start
    expect_tail(last_messages(forked_config), fork_at, "the fork")
    checkpoints = conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]

    incremental = {
        "system": "langgraph SqliteSaver",
        **pragmas,
        "turns": cap,
        "append_total_s": append_total,
        "append_per_turn_us": append_total / cap * 1e6,
        "append_per_message_us": append_total / (2 * cap) * 1e6,
        "append_last_10pct_per_turn_us": window_total / window * 1e6,
        "reads": args.reads,
        "read_total_s": read_total,
        "read_per_op_us": read_total / args.reads * 1e6,
        "fork_at": fork_at,
        "fork_s": fork_s,
        "db_bytes": size,
        "db_bytes_after_fork": db_bytes(path),
        "checkpoints": checkpoints,
        "how": "StateGraph(MessagesState) START->assistant->END compiled with SqliteSaver, "
        "graph.invoke({'messages': [user]}) per turn (default durability); "
        "get_state().values['messages'][-limit:]; fork = update_state(config of the turn's checkpoint)",
    }
    result: dict[str, Any] = {"incremental": incremental, "projected": None, "seeded": None}

    if capped and mid_bytes is not None and mid_turns > 0:
        # Every checkpoint holds the whole message list: size ~ a*n^2 + b*n.
        slope_mid, slope_end = mid_bytes / mid_turns, size / cap
        a = (slope_end - slope_mid) / (cap - mid_turns)
        b = slope_mid - a * mid_turns
        result["projected"] = {
            "turns": args.turns,
            "db_bytes": int(a * args.turns**2 + b * args.turns),
            "fit": {"a_bytes_per_turn2": a, "b_bytes_per_turn": b, "from": [[mid_turns, mid_bytes], [cap, size]]},
        }

    if capped and not args.no_langgraph_seeded:
        result["seeded"] = _langgraph_seeded(args, graph, turns, last_messages, expect_tail, HumanMessage, AIMessage)
        result["seeded"].update(pragmas)
    conn.close()
    return result


def _langgraph_seeded(args, graph, turns, last_messages, expect_tail, HumanMessage, AIMessage) -> dict[str, Any]:
    """Per-operation cost at the full history length without the quadratic run.

    The thread is filled with update_state (one checkpoint per batch) instead of
    one invoke per turn; the appends timed are real invokes, `tail` of them at
    history fork_at and `tail` at the full history; reads and the fork are the
    same calls as in the incremental run.
    """
    tail = max(1, min(args.langgraph_tail, args.fork_at, args.turns - args.fork_at - args.langgraph_tail))
    messages = []
    for user, reply in turns:
        messages.append(HumanMessage(content=user))
        messages.append(AIMessage(content=reply))
    config = {"configurable": {"thread_id": "bench-seeded"}}

    def timed_turns(first: int) -> float:
        spent = 0.0
        for index in range(first, first + tail):
            start = time.perf_counter()
            graph.invoke({"messages": [HumanMessage(content=turns[index][0])]}, config)
            spent += time.perf_counter() - start
        return spent / tail

    log(f"langgraph seeded: update_state with {args.fork_at} turns, then {tail} timed turns")
    fork_config = graph.update_state(config, {"messages": messages[: 2 * args.fork_at]}, as_node="assistant")
    at_fork = timed_turns(args.fork_at)
    rest_from, rest_to = args.fork_at + tail, args.turns - tail
    log(f"langgraph seeded: update_state with turns {rest_from}..{rest_to}, then {tail} timed turns")
    graph.update_state(config, {"messages": messages[2 * rest_from : 2 * rest_to]}, as_node="assistant")
    at_full = timed_turns(rest_to)
    expect_tail(last_messages(config), args.turns, "the seeded thread")

    reads = args.langgraph_seeded_reads
    log(f"langgraph seeded: reading the last {args.read_limit} messages {reads} times at {args.turns} turns")
    start = time.perf_counter()
    for _ in range(reads):
        got = last_messages(config)
    read_total = time.perf_counter() - start
    expect_tail(got, args.turns, "get_state at the full history")

    start = time.perf_counter()
    forked_config = graph.update_state(fork_config, {"messages": []})
    fork_s = time.perf_counter() - start
    expect_tail(last_messages(forked_config), args.fork_at, "the seeded fork")
    return {
        "system": "langgraph SqliteSaver (seeded)",
        "turns": args.turns,
        "append_per_turn_us": at_fork * 1e6,
        "append_per_message_us": at_fork / 2 * 1e6,
        "append_total_s": at_fork * args.turns,
        "append_at_full_history_per_turn_us": at_full * 1e6,
        "append_timed_turns": 2 * tail,
        "reads": reads,
        "read_total_s": read_total,
        "read_per_op_us": read_total / reads * 1e6,
        "fork_at": args.fork_at,
        "fork_s": fork_s,
        "how": f"history filled by update_state; append = mean of {tail} invokes at history {args.fork_at} "
        f"(the midpoint, standing for the mean over a {args.turns}-turn run whose cost grows with history); "
        "append_total_s = that x turns (estimate)",
    }


# --------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------


def ensure_venv(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The venv's python, and the directory to delete afterwards (None to keep)."""
    if args.venv:
        venv = Path(args.venv).resolve()
        remove = None
    else:
        venv = Path(tempfile.mkdtemp(prefix="kiln-bench-venv-"))
        remove = None if args.keep_venv else venv
    python = venv / "bin" / "python"
    if not python.exists():
        log(f"creating virtual environment {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log(f"installing pinned packages from {REQUIREMENTS.name} (quick when already there)")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        check=True,
    )
    return python, remove


def run_worker(python: Path, side: str, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(python),
        str(Path(__file__).resolve()),
        "--worker",
        side,
        "--data-dir",
        str(data_dir),
        "--turns",
        str(args.turns),
        "--reads",
        str(args.reads),
        "--read-limit",
        str(args.read_limit),
        "--fork-at",
        str(args.fork_at),
        "--seed",
        str(args.seed),
        "--langgraph-max-turns",
        str(args.langgraph_max_turns),
        "--langgraph-tail",
        str(args.langgraph_tail),
        "--langgraph-seeded-reads",
        str(args.langgraph_seeded_reads),
    ]
    if args.no_langgraph_seeded:
        command.append("--no-langgraph-seeded")
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"the {side} worker failed (exit {completed.returncode}); see its output above")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def kiln_binary(args: argparse.Namespace) -> tuple[Path | None, str]:
    """The kiln binary to run, or None and why not."""
    explicit = args.kiln_bin or os.environ.get("KILN_BIN")
    if explicit:
        path = Path(explicit)
        return (path, "") if path.is_file() else (None, f"not built ({path} does not exist)")
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = target / "release" / "kiln"
    if path.is_file():
        return path, ""
    if args.no_build:
        return None, f"not built ({path} does not exist; --no-build given)"
    if shutil.which("cargo") is None:
        return None, "not built (no cargo on PATH)"
    log("building kiln: cargo build --release -p kiln")
    built = subprocess.run(["cargo", "build", "--release", "-p", "kiln"], cwd=REPO)
    if built.returncode != 0 or not path.is_file():
        return None, "not built (cargo build --release -p kiln failed)"
    return path, ""


def run_kiln(binary: Path | None, why_not: str, args: argparse.Namespace, turns: int, fork_at: int, data_dir: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"system": "kiln", "turns": turns, "expected_turns": turns, "fork_at": fork_at}
    if binary is None:
        return {**row, "unavailable": why_not}
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(binary), "bench", "compare",
        "--turns", str(turns), "--reads", str(args.reads), "--read-limit", str(args.read_limit),
        "--fork-at", str(fork_at), "--data-dir", str(data_dir), "--seed", str(args.seed), "--json",
    ]  # fmt: skip
    log("kiln: " + " ".join(command))
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=args.kiln_timeout)
    except subprocess.TimeoutExpired:
        return {**row, "unavailable": f"kiln bench compare timed out after {args.kiln_timeout} s"}
    if completed.returncode != 0:
        first = (completed.stderr.strip().splitlines() or ["no message"])[0]
        return {**row, "unavailable": f"`kiln bench compare` failed (exit {completed.returncode}): {first}"}
    for line in reversed(completed.stdout.strip().splitlines()):
        if line.lstrip().startswith("{"):
            try:
                return {**row, **json.loads(line), "command": " ".join(command)}
            except json.JSONDecodeError:
                break
    return {**row, "unavailable": "`kiln bench compare --json` printed no JSON object"}


def ratio(slow: dict[str, Any] | None, fast: dict[str, Any] | None, key: str) -> float | None:
    if not slow or not fast or "unavailable" in fast or "unavailable" in slow:
        return None
    if slow.get(key) is None or not fast.get(key):
        return None
    return slow[key] / fast[key]


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| system | history (turns) | journal / synchronous | append µs/turn | append µs/msg "
        "| read last 20, µs/op | fork s (at turn) | DB bytes | note |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if "unavailable" in row:
            lines.append(f"| {row['system']} | {fmt(row.get('turns'))} | — | — | — | — | — | — | {row['unavailable']} |")
            continue
        durability = f"{row.get('journal_mode', '?')} / {row.get('synchronous', '?')}"
        fork = f"{row['fork_s']:.4f} ({row['fork_at']:,})" if row.get("fork_s") is not None else "—"
        lines.append(
            f"| {row['system']} | {fmt(row.get('turns'))} | {durability} | {fmt(row.get('append_per_turn_us'))} "
            f"| {fmt(row.get('append_per_message_us'))} | {fmt(row.get('read_per_op_us'))} | {fork} "
            f"| {fmt(row.get('db_bytes'))} | {row.get('note', '')} |"
        )
    return "\n".join(lines)


def check_row(row: dict[str, Any]) -> None:
    """Flag a row that did not run with the stated durability or history."""
    problems = []
    got = (row.get("journal_mode"), row.get("synchronous"))
    if got != (WANTED["journal_mode"], WANTED["synchronous"]):
        problems.append(f"DURABILITY MISMATCH: ran with {got[0]}/{got[1]}")
    if row.get("expected_turns") not in (None, row.get("turns")):
        problems.append(f"asked for {row['expected_turns']:,} turns, reported {row.get('turns')}")
    if problems:
        row["note"] = "; ".join([*problems, row.get("note", "")]).strip("; ")


def target_check(value: float | None) -> dict[str, Any]:
    return {"ratio": value, "target": TARGET_RATIO, "met": None if value is None else value >= TARGET_RATIO}


def main_orchestrator(args: argparse.Namespace) -> int:
    if args.fork_at is None:
        args.fork_at = args.turns // 2
    if args.langgraph_seeded_reads is None:
        args.langgraph_seeded_reads = args.reads
    if not 0 < args.fork_at < args.turns:
        raise SystemExit("--fork-at must be between 1 and --turns - 1")
    work = Path(args.work_dir).resolve() if args.work_dir else Path(tempfile.mkdtemp(prefix="kiln-bench-data-"))
    work.mkdir(parents=True, exist_ok=True)
    python, remove_venv = ensure_venv(args)
    try:
        lib_versions = json.loads(
            subprocess.run(
                [str(python), str(Path(__file__).resolve()), "--worker", "versions"],
                check=True, stdout=subprocess.PIPE, text=True,
            ).stdout
        )  # fmt: skip
        binary, why_not = kiln_binary(args)
        kiln_full = run_kiln(binary, why_not, args, args.turns, args.fork_at, work / "kiln")
        openai = run_worker(python, "openai", args, work / "openai")
        langgraph = run_worker(python, "langgraph", args, work / "langgraph")
        incremental, seeded, projected = langgraph["incremental"], langgraph["seeded"], langgraph["projected"]
        capped = incremental["turns"] < args.turns
        kiln_cap = None
        if capped:
            kiln_cap = run_kiln(binary, why_not, args, incremental["turns"], incremental["fork_at"], work / "kiln-cap")
    finally:
        if remove_venv is not None:
            shutil.rmtree(remove_venv, ignore_errors=True)
        if not args.keep_data and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)

    for row in (kiln_full, kiln_cap, openai, incremental, seeded):
        if row and "unavailable" not in row:
            check_row(row)
    rows = [kiln_full, openai]
    if capped:
        rows.append(kiln_cap)
        incremental["note"] = f"capped at {incremental['turns']:,} turns (--langgraph-max-turns); compare with the kiln row above it"
        rows.append(incremental)
        if seeded:
            seeded["note"] = (
                f"history filled by update_state; append = mean of {seeded['append_timed_turns'] // 2} invokes at "
                f"{seeded['fork_at']:,} turns ({fmt(seeded['append_at_full_history_per_turn_us'])} µs at "
                f"{seeded['turns']:,}); {seeded['reads']} reads"
            )
            if projected:
                seeded["db_bytes"] = projected["db_bytes"]
                seeded["note"] += "; DB bytes projected (quadratic fit)"
            rows.append(seeded)
    else:
        rows.append(incremental)

    # Ratios at equal history: full-length rows, or the capped pair.
    lg_full = incremental if not capped else seeded
    lg_db = incremental if not capped else ({"db_bytes": projected["db_bytes"]} if projected else None)
    kiln_for_incremental = kiln_full if not capped else kiln_cap
    ratios = {
        "append_vs_openai": target_check(ratio(openai, kiln_full, "append_per_turn_us")),
        "read_vs_openai": target_check(ratio(openai, kiln_full, "read_per_op_us")),
        "append_vs_langgraph": target_check(ratio(lg_full, kiln_full, "append_per_turn_us")),
        "read_vs_langgraph": target_check(ratio(lg_full, kiln_full, "read_per_op_us")),
        "db_smaller_than_langgraph": target_check(ratio(lg_db, kiln_full, "db_bytes")),
    }
    if capped:
        ratios["db_smaller_than_langgraph"]["basis"] = "LangGraph DB projected to the full history"
        ratios["at_langgraph_cap"] = {
            "turns": incremental["turns"],
            "append_vs_langgraph": ratio(incremental, kiln_for_incremental, "append_per_turn_us"),
            "read_vs_langgraph": ratio(incremental, kiln_for_incremental, "read_per_op_us"),
            "db_smaller_than_langgraph": ratio(incremental, kiln_for_incremental, "db_bytes"),
        }

    summary = {
        "workload": {
            "turns": args.turns,
            "messages_per_turn": 2,
            "user_chars": list(USER_LEN),
            "assistant_chars": list(ASSISTANT_LEN),
            "reads": args.reads,
            "read_limit": args.read_limit,
            "fork_at": args.fork_at,
            "seed": args.seed,
            "content_bytes": sum(len(u) + len(a) for u, a in generate_turns(args.seed, args.turns)),
        },
        "durability": {**WANTED, "statement": "every side sets journal_mode=WAL and synchronous=NORMAL on its own "
                       "connections; each row shows what its connections reported back"},  # fmt: skip
        "environment": {
            "python": platform.python_version(),
            "sqlite_python": sqlite3.sqlite_version,
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
            "packages": lib_versions,
        },
        "results": {
            "kiln": kiln_full,
            "kiln_at_langgraph_cap": kiln_cap,
            "openai_agents_sqlite_session": openai,
            "langgraph_sqlite_saver": incremental,
            "langgraph_sqlite_saver_seeded": seeded,
            "langgraph_projected": projected,
        },
        "ratios_kiln_faster_or_smaller": ratios,
    }

    print(f"\n## Session stores, {args.turns:,} turns, durability: journal_mode=WAL, synchronous=NORMAL on every side\n")
    print("packages: " + ", ".join(f"{k}=={v}" for k, v in lib_versions.items()))
    print(f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version} (Python side), {os.cpu_count()} cpus\n")
    print(render_table(rows))
    if capped and projected:
        print(
            f"\nLangGraph stores the whole message list in every checkpoint ({incremental['checkpoints']:,} "
            f"checkpoints for {incremental['turns']:,} turns), so its DB grows quadratically; projected at "
            f"{args.turns:,} turns: {projected['db_bytes']:,} bytes."
        )
    print("\nKiln faster / smaller by (target ≥ 10×):\n")
    for name, check in ratios.items():
        if name == "at_langgraph_cap":
            parts = ", ".join(f"{k} " + ("n/a" if v is None else f"{v:,.1f}×") for k, v in check.items() if k != "turns")
            print(f"- at LangGraph's {check['turns']:,} turns: {parts}")
            continue
        verdict = "n/a (kiln not run)" if check["ratio"] is None else f"{check['ratio']:,.1f}× " + ("met" if check["met"] else "NOT met")
        print(f"- {name}: {verdict}")
    print("\n```json")
    print(json.dumps(summary, indent=2))
    print("```")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2) + "\n")
        log(f"summary written to {args.json_out}")
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=10_000, help="turns to append (default 10000)")
    parser.add_argument("--reads", type=int, default=1000, help="reads of the last items (default 1000)")
    parser.add_argument("--read-limit", type=int, default=20, help="items per read (default 20)")
    parser.add_argument("--fork-at", type=int, default=None, help="turn to fork at (default turns/2)")
    parser.add_argument("--seed", type=int, default=42, help="workload seed (default 42)")
    parser.add_argument("--venv", help="reuse (or create and keep) this virtual environment")
    parser.add_argument("--keep-venv", action="store_true", help="keep the temporary virtual environment")
    parser.add_argument("--work-dir", help="put the databases here and keep them (default: a temp dir, removed)")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary databases")
    parser.add_argument("--kiln-bin", help="kiln binary (default $KILN_BIN, then target/release/kiln)")
    parser.add_argument("--no-build", action="store_true", help="do not cargo build kiln when it is missing")
    parser.add_argument("--kiln-timeout", type=int, default=3600, help="seconds before giving up on kiln")
    parser.add_argument(
        "--langgraph-max-turns", type=int, default=1000,
        help="stop LangGraph's one-invoke-per-turn run here (0: no cap). Its DB grows quadratically: "
        "~1.8 GB at 1000 turns, ~180 GB projected at 10000 (default 1000)",
    )  # fmt: skip
    parser.add_argument("--langgraph-tail", type=int, default=10, help="timed invokes per seeded window (default 10)")
    parser.add_argument(
        "--langgraph-seeded-reads", type=int, default=None,
        help="reads at the full history on the seeded LangGraph thread; each deserializes the whole history "
        "(default: --reads)",
    )  # fmt: skip
    parser.add_argument("--no-langgraph-seeded", action="store_true", help="skip the seeded full-history LangGraph measurement")
    parser.add_argument("--json-out", help="also write the JSON summary to this file")
    parser.add_argument("--worker", choices=("openai", "langgraph", "versions"), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.worker == "versions":
        print(json.dumps(versions()))
        return 0
    if args.worker:
        run = worker_openai if args.worker == "openai" else worker_langgraph
        print(json.dumps(run(args)))
        return 0
    return main_orchestrator(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
