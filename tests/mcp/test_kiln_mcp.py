"""Kiln as an MCP server, driven by the official Python `mcp` SDK: `kiln mcp` over stdio and
`/mcp` over streamable HTTP against a real `kiln serve` on 127.0.0.1:0. Initialize, list the
tools and call each one, read the resources, list and get the prompts, check the effects
through Kiln's HTTP API, and see permission failures come back as MCP errors.

The server is configured with one MCP tool server (tests/fixtures/mcp_units_server.py), so the
external direction shows too: its tools are listed in `GET /v1/tools` as `units.*`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, Implementation, StdioServerParameters
from mcp import MCPError as McpError
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "mcp_units_server.py"

# Kiln's own MCP tools, then the built-in session tools, then the fixture server's.
OWN_TOOLS = {
    "list_sessions", "search_sessions", "create_session", "open_context", "ask_agent",
    "append_note", "record_hypothesis", "create_branch", "create_checkpoint",
    "restore_checkpoint", "merge_branches",
}
SESSION_TOOLS = {
    "materials_analyzer", "bayesian_optimizer", "notebook", "session_search",
    "record_discovery", "link_discoveries", "user_memory",
}
UNITS_TOOLS = {"units.convert", "units.lattice_energy", "units.slow", "units.plot", "units.broken"}


def kiln_bin() -> str:
    b = os.environ.get("KILN_BIN")
    if not b:
        target = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
        b = str(Path(target) / "debug" / "kiln")
    if not Path(b).is_file():
        raise RuntimeError(f"no kiln binary at {b}: build it (cargo build -p kiln) or set KILN_BIN")
    return b


@dataclass
class Server:
    url: str
    data: Path
    config: Path
    proc: subprocess.Popen[bytes]
    tokens: dict[str, str] = field(default_factory=dict)

    def api(self, method: str, path: str, user: str = "alice", body: Any = None) -> Any:
        req = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.tokens[user]}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="kiln-mcp-") as d:
        tmp = Path(d)
        data = tmp / "data"
        config = tmp / "kiln.toml"
        config.write_text(
            "[[mcp.servers]]\n"
            'name = "units"\n'
            f"command = {json.dumps(sys.executable)}\n"
            f"args = [{json.dumps(str(FIXTURE))}]\n"
            "timeout_secs = 30\n"
        )
        tokens = {}
        for u in ["alice", "bob"]:
            out = subprocess.run(
                [kiln_bin(), "--data-dir", str(data), "user", "add", u],
                check=True, capture_output=True, text=True, timeout=60,
            )
            tokens[u] = out.stdout.strip()
        out_file = tmp / "serve.out"
        proc = subprocess.Popen(
            [kiln_bin(), "--config", str(config), "serve", "--bind", "127.0.0.1:0", "--data-dir", str(data)],
            stdout=open(out_file, "wb"),  # noqa: SIM115 - the server holds it open
            stderr=open(tmp / "serve.log", "wb"),  # noqa: SIM115
            env={**os.environ, "KILN_LIMITS__EXPENSIVE_PER_MINUTE": "0"},
        )
        try:
            deadline = time.monotonic() + 60
            url = None
            while time.monotonic() < deadline and url is None:
                found = re.search(r"Kiln listening on (http://\S+)", out_file.read_text())
                if found:
                    url = found.group(1)
                elif proc.poll() is not None:
                    break
                else:
                    time.sleep(0.05)
            if url is None:
                raise RuntimeError("kiln serve did not start: " + (tmp / "serve.log").read_text()[-2000:])
            yield Server(url, data, config, proc, tokens)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def over_stdio(server: Server, user: str, client: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=kiln_bin(),
        args=["--config", str(server.config), "--data-dir", str(server.data), "mcp"],
        env={"KILN_TOKEN": server.tokens[user]},
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, client_info=Implementation(name=client, version="1.0")) as s:
            yield s


@asynccontextmanager
async def over_http(server: Server, user: str, client: str) -> AsyncIterator[ClientSession]:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {server.tokens[user]}"})
    async with http, streamable_http_client(server.url + "/mcp", http_client=http) as (read, write):
        async with ClientSession(read, write, client_info=Implementation(name=client, version="1.0")) as s:
            yield s


TRANSPORTS = {"stdio": over_stdio, "http": over_http}


def structured(result: Any) -> Any:
    assert not result.is_error, result.content
    return result.structured_content


async def call(s: ClientSession, name: str, args: dict[str, Any]) -> Any:
    return structured(await s.call_tool(name, args))


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_every_tool_resource_and_prompt(server: Server, transport: str) -> None:
    client = f"pytest-{transport}"
    async with TRANSPORTS[transport](server, "alice", client) as s:
        init = await s.initialize()
        assert init.server_info.name == "kiln"

        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert OWN_TOOLS | SESSION_TOOLS | UNITS_TOOLS <= set(tools), sorted(tools)
        # A session tool keeps its own schema under `arguments`.
        nb = tools["notebook"].input_schema
        assert nb["required"] == ["session", "arguments"]
        assert "log" in nb["properties"]["arguments"]["properties"]["action"]["enum"]
        assert tools["list_sessions"].annotations.read_only_hint is True

        called: set[str] = set()

        async def run(name: str, args: dict[str, Any]) -> Any:
            called.add(name)
            return await call(s, name, args)

        created = await run("create_session", {"name": f"mcp {transport}", "description": "over MCP"})
        sid = created["id"]
        listed = await run("list_sessions", {"limit": 50})
        assert sid in [x["id"] for x in listed["items"]]

        note = await run("append_note", {"session": sid, "content": f"calcined at 900 C ({transport})"})
        note_id = note["nodes"][0]["id"]
        hyp = await run("record_hypothesis", {"session": sid, "statement": "Doping with Mn raises the voltage"})
        assert hyp["nodes"][0]["data"]["client"] == {"protocol": "mcp", "name": client}
        d1 = await run("record_discovery", {"session": sid, "arguments": {
            "description": "LiFePO4 is stable to 700 C", "materials": ["LiFePO4"], "confidence": 0.8}})
        d2 = await run("record_discovery", {"session": sid, "arguments": {
            "description": "Carbon coating raises its rate capability", "materials": ["LiFePO4"]}})
        assert d1["ok"] and d2["ok"]
        recorded = await s.read_resource(f"kiln://sessions/{sid}/branches/main/state")
        discoveries = json.loads(recorded.contents[0].text)["discoveries"]
        ids = list(discoveries) if isinstance(discoveries, dict) else [d["id"] for d in discoveries]
        assert len(ids) == 2, discoveries
        await run("link_discoveries", {"session": sid, "arguments": {
            "from": ids[1], "to": ids[0], "relationship": "extends"}})
        mat = await run("materials_analyzer", {"session": sid, "arguments": {"action": "analyze", "formula": "LiFePO4"}})
        assert mat["ok"] and mat["result"]["reduced_formula"] == "LiFePO4"
        await run("notebook", {"session": sid, "arguments": {"action": "log", "message": "furnace ramp 5 K/min"}})
        opt = await run("bayesian_optimizer", {"session": sid, "arguments": {
            "action": "define_space",
            "variables": [{"name": "temperature", "type": "real", "bounds": [500, 900], "unit": "C"}],
            "objective": {"name": "capacity", "goal": "maximize"}}})
        assert opt["ok"]
        mem = await run("user_memory", {"session": sid, "arguments": {
            "action": "remember", "content": f"I work at 1 atm ({transport})"}})
        assert "Saved to your memory" in str(mem), mem
        found = await run("session_search", {"session": sid, "arguments": {"query": "furnace"}})
        assert found["ok"]
        conv = await run("units.convert", {"session": sid, "arguments": {"value": 1, "from_unit": "eV", "to_unit": "kJ/mol"}})
        assert abs(conv["result"]["structured"]["value"] - 96.485) < 0.01
        lat = await run("units.lattice_energy", {"session": sid, "arguments": {
            "ions": 2, "charge_cation": 1, "charge_anion": 1, "r_cation_pm": 116, "r_anion_pm": 167}})
        assert "kJ/mol" in lat["text"]
        plot = await run("units.plot", {"session": sid, "arguments": {}})
        assert (server.data / plot["result"]["images"][0]["path"]).read_bytes().startswith(b"\x89PNG")
        await run("units.slow", {"session": sid, "arguments": {"seconds": 0.1}})
        called.add("units.broken")
        broken = await s.call_tool("units.broken", {"session": sid, "arguments": {}})
        assert broken.is_error and "the furnace is off" in broken.content[0].text

        ctx = await run("open_context", {"session": sid})
        assert "parts" in ctx or "messages" in ctx, sorted(ctx)
        answer = await run("ask_agent", {"session": sid, "question": "Analyse LiFePO4"})
        assert answer["answer"], answer
        await run("create_checkpoint", {"session": sid, "name": "before-idea"})
        await run("create_branch", {"session": sid, "name": "idea", "from_checkpoint": "before-idea"})
        await run("append_note", {"session": sid, "branch": "idea", "content": "try Mn doping"})
        merged = await run("merge_branches", {"session": sid, "from": "idea"})
        assert merged, merged
        await run("append_note", {"session": sid, "content": "a note to undo"})
        await run("restore_checkpoint", {"session": sid, "checkpoint": "before-idea", "branch": "idea"})
        hits = await run("search_sessions", {"q": "calcined"})
        if transport == "http":
            assert sid in json.dumps(hits)
        else:
            # `kiln mcp` beside a running `kiln serve` reads the index as the server keeps it
            # (the server catches it up at its next search).
            assert "items" in hits

        missing = (OWN_TOOLS | SESSION_TOOLS | UNITS_TOOLS) - called
        assert not missing, f"not called: {sorted(missing)}"

        # Resources: the index, the session's own, and the shapes for the rest.
        uris = {r.uri for r in (await s.list_resources()).resources}
        for want in ["kiln://sessions", f"kiln://sessions/{sid}", f"kiln://sessions/{sid}/branches",
                     f"kiln://sessions/{sid}/branches/main/state", f"kiln://sessions/{sid}/report"]:
            assert want in {str(u) for u in uris}, want
        templates = {t.uri_template for t in (await s.list_resource_templates()).resource_templates}
        assert "kiln://sessions/{session}/branches/{branch}/state" in templates
        state = json.loads((await s.read_resource(f"kiln://sessions/{sid}/branches/main/state")).contents[0].text)
        assert any("Mn raises the voltage" in json.dumps(h) for h in state["hypotheses"].values()) \
            if isinstance(state["hypotheses"], dict) else "Mn raises the voltage" in json.dumps(state["hypotheses"])
        report = (await s.read_resource(f"kiln://sessions/{sid}/report")).contents[0]
        assert report.mime_type == "text/markdown" and f"mcp {transport}" in report.text
        branches = json.loads((await s.read_resource(f"kiln://sessions/{sid}/branches")).contents[0].text)
        assert {"main", "idea"} <= {b["name"] for b in branches}
        idea = json.loads((await s.read_resource(f"kiln://sessions/{sid}/branches/idea/state")).contents[0].text)
        assert isinstance(idea, dict)

        # Prompts: the session templates.
        prompts = {p.name: p for p in (await s.list_prompts()).prompts}
        assert "materials-discovery" in prompts, sorted(prompts)
        args = {a.name: "LiFePO4" for a in prompts["materials-discovery"].arguments or [] if a.required}
        got = await s.get_prompt("materials-discovery", args)
        assert "create_session" in got.messages[0].content.text

        # Failures are MCP errors, not crashes; the connection keeps working.
        with pytest.raises(McpError):
            await s.read_resource("kiln://sessions/00000000-0000-0000-0000-000000000000/report")
        with pytest.raises(McpError):
            await s.get_prompt("no-such-template", {})
        bad = await s.call_tool("append_note", {"session": sid})
        assert bad.is_error and bad.structured_content["error"]["code"] == "invalid_input"
        with pytest.raises(McpError):
            await s.call_tool("no_such_tool", {})
        assert (await s.list_tools()).tools

    # The effects, through Kiln's HTTP API: the caller is the author, the client is named.
    nodes = server.api("GET", f"/v1/sessions/{sid}/branches/main/messages?limit=200")["items"]
    mine = next(n for n in nodes if n["id"] == note_id)
    assert mine["kind"] == "note" and "calcined" in mine["content"]
    assert mine["data"]["client"] == {"protocol": "mcp", "name": client}
    state = server.api("GET", f"/v1/sessions/{sid}/branches/main/state")
    assert "Mn raises the voltage" in json.dumps(state["hypotheses"])
    assert len(state["discoveries"]) >= 2
    branches = server.api("GET", f"/v1/sessions/{sid}/branches")
    assert "idea" in json.dumps(branches)
    listed = {t["name"]: t for t in server.api("GET", "/v1/tools")["items"]}
    assert UNITS_TOOLS <= set(listed)
    assert listed["units.convert"]["parameters"]["required"] == ["value", "from_unit", "to_unit"]


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_permission_failures_are_mcp_errors(server: Server, transport: str) -> None:
    alice_sid = server.api("POST", "/v1/sessions", body={"name": f"alice only {transport}"})["id"]
    async with TRANSPORTS[transport](server, "bob", "bob's assistant") as s:
        await s.initialize()
        denied = await s.call_tool("append_note", {"session": alice_sid, "content": "sneaky"})
        assert denied.is_error
        assert denied.structured_content["error"]["code"] == "not_found"
        ran = await s.call_tool("notebook", {"session": alice_sid, "arguments": {"action": "log", "message": "x"}})
        assert ran.is_error
        with pytest.raises(McpError):
            await s.read_resource(f"kiln://sessions/{alice_sid}/report")
        listed = structured(await s.call_tool("list_sessions", {}))
        assert alice_sid not in json.dumps(listed)
    nodes = server.api("GET", f"/v1/sessions/{alice_sid}/branches/main/messages")["items"]
    assert not any("sneaky" in n.get("content", "") for n in nodes)


def test_http_needs_a_bearer_token(server: Server) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}}).encode()
    for headers in [{}, {"Authorization": "Bearer kiln_not_a_token"}]:
        req = urllib.request.Request(server.url + "/mcp", data=body, method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 401
        assert json.loads(e.value.read())["error"]["code"] == "unauthorized"


def test_stdio_needs_a_token(server: Server) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KILN_TOKEN"}
    out = subprocess.run([kiln_bin(), "--data-dir", str(server.data), "mcp"], env=env,
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode != 0 and "KILN_TOKEN" in out.stderr
    out = subprocess.run([kiln_bin(), "--data-dir", str(server.data), "mcp"],
                         env={**env, "KILN_TOKEN": "kiln_wrong"},
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode != 0 and "not a Kiln API token" in out.stderr
