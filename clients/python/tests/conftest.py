"""Fixtures: a real `kiln serve` on 127.0.0.1:0 with a fresh data dir, users and clients."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import kiln

REPO = Path(__file__).resolve().parents[3]


def kiln_bin() -> str:
    """KILN_BIN, else the binary `cargo test --workspace` builds."""
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
    proc: subprocess.Popen[bytes]
    tokens: dict[str, str] = field(default_factory=dict)

    def add_user(self, name: str) -> str:
        out = subprocess.run(
            [kiln_bin(), "--data-dir", str(self.data), "user", "add", name],
            check=True, capture_output=True, text=True, timeout=60,
        )
        self.tokens[name] = out.stdout.strip()
        return self.tokens[name]


def start_server(tmp: Path, env: dict[str, str], users: list[str]) -> Server:
    data = tmp / "data"
    tokens = {}
    for u in users:
        out = subprocess.run(
            [kiln_bin(), "--data-dir", str(data), "user", "add", u],
            check=True, capture_output=True, text=True, timeout=60,
        )
        tokens[u] = out.stdout.strip()
    stdout = open(tmp / "serve.out", "wb")  # noqa: SIM115 - the server holds it open
    proc = subprocess.Popen(
        [kiln_bin(), "serve", "--bind", "127.0.0.1:0", "--data-dir", str(data)],
        stdout=stdout,
        stderr=open(tmp / "serve.log", "wb"),  # noqa: SIM115
        env={**os.environ, **env},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = (tmp / "serve.out").read_text()
        found = re.search(r"Kiln listening on (http://\S+)", text)
        if found:
            return Server(found.group(1), data, proc, tokens)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("kiln serve did not start: " + (tmp / "serve.log").read_text()[-2000:])


def stop(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="kiln-py-") as d:
        # The per-user budget for expensive routes would slow the suite down to its rate.
        s = start_server(Path(d), {"KILN_LIMITS__EXPENSIVE_PER_MINUTE": "0"}, ["alice", "bob"])
        yield s
        stop(s)


@pytest.fixture(scope="session")
def limited_server() -> Iterator[Server]:
    """A server allowing one expensive request at once, refilled at 60 a minute."""
    with tempfile.TemporaryDirectory(prefix="kiln-py-limited-") as d:
        env = {"KILN_LIMITS__EXPENSIVE_PER_MINUTE": "60", "KILN_LIMITS__EXPENSIVE_BURST": "1"}
        s = start_server(Path(d), env, ["carol"])
        yield s
        stop(s)


@pytest.fixture
def client(server: Server) -> Iterator[kiln.Client]:
    with kiln.Client(server.url, server.tokens["alice"]) as c:
        yield c


@pytest.fixture
def bob(server: Server) -> Iterator[kiln.Client]:
    with kiln.Client(server.url, server.tokens["bob"]) as c:
        yield c


@pytest.fixture
def s(client: kiln.Client, request: pytest.FixtureRequest) -> kiln.Session:
    """A fresh session named after the test."""
    return client.create_session(request.node.name[:100], project="tests")
