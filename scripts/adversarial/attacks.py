#!/usr/bin/env python3
"""The adversarial pass of issue 13, replayed against a real `kiln serve`.

Each attack is the one that stalled, leaked or crashed Kiln before the hardening, sent the same
way (raw sockets, plain HTTP) to a freshly started server on 127.0.0.1:0, and each asserts what
the server must do now. Quick by default (CI runs it from scripts/test in about a minute); the
load attacks (slow clients, concurrent turns, searches, import floods) run longer and bigger
with --seconds and --busy:

    python3 scripts/adversarial/attacks.py [--kiln BIN] [--only 1,2,10] [--seconds 3]
                                           [--busy 3000]

    # the scale of the original findings (a few minutes):
    python3 scripts/adversarial/attacks.py --kiln target/release/kiln --seconds 20 --busy 150000

Numbers follow the issue's items. Item 7 (storage faults) needs root to mount a small tmpfs
under the search index and is skipped otherwise (crates/kiln-server/tests/search.rs covers it
with injected faults). kill -9 durability is scripts/adversarial/kill9.py.

Standard library only. Prints one line per attack; exits non-zero if any fails.
"""

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

KILN = None
SECONDS = 3.0
BUSY = 3000


# --- a server and a client ---------------------------------------------------------------


class Server:
    """`kiln serve` on a fresh data directory, with users made by `kiln user add`."""

    def __init__(self, env=None, users=("alice", "bob", "carol"), data=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="kiln-adv-")
        self.data = data or os.path.join(self.tmp.name, "data")
        self.tokens = {}
        for u in users:
            self.tokens[u] = subprocess.run(
                [KILN, "--data-dir", self.data, "user", "add", u],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
        self.env = {**os.environ, **(env or {})}
        self.proc, self.addr = None, None
        self.start()

    def start(self):
        self.log = open(os.path.join(self.tmp.name, "serve.log"), "a")
        self.proc = subprocess.Popen(
            [KILN, "serve", "--bind", "127.0.0.1:0", "--data-dir", self.data],
            stdout=subprocess.PIPE, stderr=self.log, env=self.env, text=True,
        )
        deadline = time.monotonic() + 30
        for line in self.proc.stdout:
            m = re.match(r"Kiln listening on http://(\S+)", line)
            if m:
                host, port = m.group(1).rsplit(":", 1)
                self.addr = (host, int(port))
                # Keep reading stdout so the server never blocks on a full pipe.
                threading.Thread(target=self.proc.stdout.read, daemon=True).start()
                return
            if time.monotonic() > deadline:
                break
        raise AssertionError("kiln serve did not start: " + self.logtail())

    def logtail(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()[-2000:]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def close(self):
        self.stop()
        self.tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, user, method, path, body=None, raw=None, timeout=30, headers=None):
        """One request on its own connection: (status, JSON body or text, headers)."""
        conn = http.client.HTTPConnection(*self.addr, timeout=timeout)
        try:
            h = dict(headers or {})
            if user:
                h["Authorization"] = f"Bearer {self.tokens[user]}"
            data = raw
            if body is not None:
                data = json.dumps(body)
                h["Content-Type"] = "application/json"
            conn.request(method, path, data, h)
            r = conn.getresponse()
            text = r.read().decode("utf-8", "replace")
            try:
                v = json.loads(text) if text else None
            except ValueError:
                v = text
            return r.status, v, dict(r.getheaders())
        finally:
            conn.close()

    def post_big(self, user, path, data):
        """POST a large body the way a client that reads early answers does: the server may
        refuse (429, 413) before reading it and close. Returns (status, JSON body or None)."""
        sock = socket.create_connection(self.addr, timeout=60)
        try:
            head = (f"POST {path} HTTP/1.1\r\nHost: kiln\r\nAuthorization: Bearer "
                    f"{self.tokens[user]}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n").encode()
            try:
                sock.sendall(head + data)
            except OSError:
                pass  # refused before the body was read; the answer may still be there
            buf = b""
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                    h, sep, rest = buf.partition(b"\r\n\r\n")
                    m = re.search(rb"content-length: *(\d+)", h.lower())
                    if sep and m and len(rest) >= int(m.group(1)):
                        break
            except OSError:
                pass
            if not buf.startswith(b"HTTP/1.1 "):
                return None, None
            h, _, rest = buf.partition(b"\r\n\r\n")
            try:
                v = json.loads(rest) if rest else None
            except ValueError:
                v = rest
            return int(buf[9:12]), v
        finally:
            sock.close()

    def ok(self, user, method, path, body=None, want=(200, 201)):
        s, v, _ = self.call(user, method, path, body)
        assert s in want, f"{method} {path}: {s} {v}"
        return v

    def session(self, user, name, **extra):
        return self.ok(user, "POST", "/v1/sessions", {"name": name, **extra})["id"]

    def say(self, user, sid, text, branch="main"):
        return self.ok(user, "POST", f"/v1/sessions/{sid}/branches/{branch}/messages",
                       {"role": "user", "content": text})


def error(v, code, recoverable=None):
    """Asserts `v` is the JSON error body with `code`."""
    assert isinstance(v, dict) and "error" in v, f"not the JSON error body: {v!r}"
    e = v["error"]
    assert e.get("code") == code, f"want {code}, got {e}"
    assert isinstance(e.get("message"), str) and e["message"], e
    if recoverable is not None:
        assert e.get("recoverable") is recoverable, e


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def ms(x):
    return f"{x * 1000:.1f} ms"


def closed_within(sock, seconds):
    """Whether the server closes `sock` within `seconds` (whatever it sends before)."""
    sock.settimeout(0.2)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def raw_socket(addr):
    s = socket.create_connection(addr, timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


# --- the attacks -------------------------------------------------------------------------


def attack_1_idle_and_slow_connections():
    """1,100 idle sockets against 1,024 descriptors made every request time out; half-sent
    heads and bodies were never cut off. Here: a cap of 64, 300 idle sockets, slow clients."""
    env = {
        "KILN_SERVER__MAX_CONNECTIONS": "64",
        "KILN_SERVER__HEADER_TIMEOUT_SECS": "2",
        "KILN_SERVER__BODY_TIMEOUT_SECS": "2",
        "KILN_SERVER__IDLE_TIMEOUT_SECS": "2",
    }
    with Server(env) as srv:
        idle = []
        for _ in range(300):
            try:
                idle.append(socket.create_connection(srv.addr, timeout=5))
            except OSError:
                break  # the backlog is full: that is the server refusing, as it may
        took, (s, v, _) = timed(lambda: srv.call("alice", "GET", "/v1/sessions", timeout=10))
        assert s == 200, (s, v)
        assert took < 5, f"a real client waited {took:.1f} s behind {len(idle)} idle sockets"

        # A slowloris head (one header byte a second) and a slow body are cut off.
        head = raw_socket(srv.addr)
        head.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        body = raw_socket(srv.addr)
        body.sendall(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 1000\r\n\r\n{\"name\":")
        kept = raw_socket(srv.addr)
        kept.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        drip_end = time.monotonic() + max(SECONDS, 4)
        head_closed = body_closed = False
        while time.monotonic() < drip_end and not (head_closed and body_closed):
            for sock, which in ((head, "head"), (body, "body")):
                try:
                    sock.sendall(b"X")
                except OSError:
                    if which == "head":
                        head_closed = True
                    else:
                        body_closed = True
            # A real client is served the whole time.
            s, _, _ = srv.call(None, "GET", "/v1/health", timeout=5)
            assert s == 200
            time.sleep(1)
        head_closed = head_closed or closed_within(head, 3)
        body_closed = body_closed or closed_within(body, 3)
        assert head_closed, "a head sent one byte a second was never cut off"
        assert body_closed, "a body sent one byte a second was never cut off"
        assert closed_within(kept, 5), "an idle kept-alive connection was never closed"
        # The idle ones were evicted to make room or timed out (the original: 40 of 40 still
        # open after 95 s).
        still_open = sum(not closed_within(s, 0.2) for s in idle[:40])
        for s in idle + [head, body, kept]:
            s.close()
        assert still_open == 0, f"{still_open} of 40 idle sockets still open"
        return (f"{len(idle)} idle sockets, cap 64: real request in {ms(took)}; slow head, slow "
                f"body and idle keep-alive closed")


def attack_2_nested_query():
    """31 levels of parentheses ran for an hour; two depth-22 queries froze /v1/health 9.5 s."""
    with Server({"KILN_LIMITS__EXPENSIVE_PER_MINUTE": "0"}) as srv:
        sid = srv.session("alice", "olivine")
        srv.say("alice", sid, "olivine cathodes anneal at 700 C")
        for depth in (22, 31, 200):
            q = "(" * depth + "olivine" + ")" * depth
            took, (s, v, _) = timed(lambda: srv.call(
                "alice", "GET", "/v1/search?q=" + q.replace("(", "%28").replace(")", "%29")))
            assert s == 400, (depth, s, v)
            error(v, "invalid_query")
            assert took < 2, f"depth {depth} took {took:.1f} s to refuse"
        for q in ("olivine " * 40, "x" * 5000):
            s, v, _ = srv.call("alice", "GET", "/v1/search?q=" + q.replace(" ", "+"))
            assert s in (400, 414), (s, v)
        # Queries at the bounds, in a loop from four clients, while health is timed.
        allowed = "%28" * 8 + "olivine+OR+anneal" + "%29" * 8
        stop = threading.Event()
        codes = []

        def hammer():
            while not stop.is_set():
                s, _, _ = srv.call("alice", "GET", "/v1/search?q=" + allowed)
                codes.append(s)

        ts = [threading.Thread(target=hammer) for _ in range(4)]
        for t in ts:
            t.start()
        health = []
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            took, (s, _, _) = timed(lambda: srv.call(None, "GET", "/v1/health"))
            assert s == 200
            health.append(took)
            time.sleep(0.02)
        stop.set()
        for t in ts:
            t.join()
        assert set(codes) <= {200}, f"searches at the bounds answered {set(codes)}"
        p99 = percentile(health, 99)
        assert p99 < 1.0, f"/v1/health p99 {ms(p99)} while searching"
        return (f"depth 22/31/200 refused 400 at once; {len(codes)} searches at the bounds, "
                f"/v1/health p99 {ms(p99)} meanwhile")


def attack_3_template_code():
    """A saved template rendered its hypotheses through minijinja: `{{ 7*7 }}` became 49 and a
    nested range(100000) loop ran for minutes."""
    with Server() as srv:
        sid = srv.session("alice", "jinja")
        loop = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
        for ev in (
            {"kind": "hypothesis", "statement": "{{ 7*7 }} and {material}", "status": "open"},
            {"kind": "task", "description": loop, "status": "pending"},
            {"kind": "context_pin", "key": "k", "value": "{{ range(10)|list }}"},
        ):
            srv.ok("alice", "POST", f"/v1/sessions/{sid}/branches/main/events", ev)
        srv.ok("alice", "POST", "/v1/templates", {"name": "jinja", "from_session": sid})
        took, (s, v, _) = timed(lambda: srv.call(
            "alice", "POST", "/v1/sessions", {"template": "jinja", "parameters": {}},
            timeout=30))
        assert s == 201, (s, v)
        assert took < 5, f"instantiating took {took:.1f} s"
        state = srv.ok("alice", "GET", f"/v1/sessions/{v['id']}/branches/main/state")
        text = json.dumps(state)
        assert "{{ 7*7 }} and {material}" in text, f"the hypothesis was evaluated: {text[:500]}"
        assert "49 and" not in text and loop in text, text[:500]
        return f"template code kept as text, created in {ms(took)}"


def attack_4_template_leak():
    """A read-only collaborator saved a private session as a template, and a user with no
    access read its hypotheses from GET /v1/templates and instantiated it."""
    with Server() as srv:
        sid = srv.session("alice", "Secret cathode", description="unpublished")
        srv.ok("alice", "POST", f"/v1/sessions/{sid}/branches/main/events",
               {"kind": "hypothesis", "statement": "Mn doping lifts capacity 12%",
                "status": "open"})
        srv.ok("alice", "POST", f"/v1/sessions/{sid}/collaborators",
               {"user": "bob", "permissions": ["read"]})
        s, v, _ = srv.call("bob", "POST", "/v1/templates", {"name": "stolen", "from_session": sid})
        assert s in (403, 404), f"a reader saved the session as a template: {s} {v}"
        srv.ok("alice", "POST", "/v1/templates", {"name": "mine", "from_session": sid})
        for user in ("bob", "carol"):
            listing = json.dumps(srv.ok(user, "GET", "/v1/templates"))
            assert "Mn doping" not in listing and "Secret cathode" not in listing, listing[:300]
            s, v, _ = srv.call(user, "GET", "/v1/templates/mine@alice")
            assert s == 404, (user, s, v)
            s, v, _ = srv.call(user, "POST", "/v1/sessions",
                               {"template": "mine@alice", "parameters": {}})
            assert s == 404, (user, s, v)
        return "reader cannot save; private template invisible and unusable to bob and carol"


def attack_5_import_anything():
    """An import with duration_days 2^32-1 panicked the scheduler on every tick; NUL, empty
    and megabyte names and context_window 0 were stored."""
    # Validation is what is attacked here, not the rate limit (an import costs 10 of a burst
    # of 30, so the fourth would be refused 429 before its body is read).
    with Server({"KILN_LIMITS__EXPENSIVE_PER_MINUTE": "0"}) as srv:
        sid = srv.session("alice", "source")
        srv.say("alice", sid, "a message to carry")
        export = srv.ok("alice", "GET", f"/v1/sessions/{sid}/export")

        def with_(edit):
            e = json.loads(json.dumps(export))
            edit(e)
            return e

        def cfg(key, val):
            return lambda e: e["session"]["config"].__setitem__(key, val)

        def research(e):
            e["session"]["session_type"] = "research"
            e["session"]["config"]["duration_days"] = 4294967295

        def name(val):
            return lambda e: e["session"].__setitem__("name", val)

        def window(val):
            return lambda e: e["session"]["config"]["context"].__setitem__("context_window", val)

        bad = {
            "duration_days 2^32-1": research,
            "empty name": name(""),
            "NUL in name": name("a\u0000b"),
            "control characters in name": name("\u001b[31mred"),
            "1.5 MB name": name("n" * 1_500_000),
            "context_window 0": window(0),
            "context_window 2^32-1": window(4294967295),
            "100 KB checkpoint name": lambda e: e["checkpoints"].append(
                {"name": "c" * 100_000, "branch": "main", "node": e["branches"][0]["head"]}),
        }
        before = srv.ok("alice", "GET", "/v1/sessions")
        refused = 0
        for what, edit in bad.items():
            s, v = srv.post_big("alice", "/v1/sessions/import",
                                json.dumps(with_(edit)).encode())
            assert 400 <= s < 500 and s not in (401, 403, 404), f"{what}: {s} {str(v)[:200]}"
            assert isinstance(v, dict) and "error" in v, f"{what}: {str(v)[:200]}"
            refused += 1
        after = srv.ok("alice", "GET", "/v1/sessions")
        assert len(json.dumps(after)) == len(json.dumps(before)), "a refused import left a trace"
        # The scheduler survives whatever is stored: a research session past its time.
        s, v, _ = srv.call(None, "GET", "/v1/health")
        assert s == 200 and srv.proc.poll() is None
        return f"{refused} malformed imports refused 4xx, nothing stored, server up"


def attack_6_numeric_panics():
    """`context/cleanup {"older_than_days": 4000000000}` panicked before the access check."""
    with Server() as srv:
        sid = srv.session("alice", "numbers")
        stranger = "01a241da-0e05-7510-a9b9-218edf51b025"
        for n in (4000000000, 2**63, -1, 1e308):
            body = {"older_than_days": n}
            s, v, _ = srv.call("alice", "POST", f"/v1/sessions/{sid}/context/cleanup", body)
            assert s == 400, (n, s, v)
            assert isinstance(v, dict) and "error" in v, v
            s, v, _ = srv.call("bob", "POST", f"/v1/sessions/{sid}/context/cleanup", body)
            assert s in (400, 404), ("bob, no access", n, s, v)
            s, v, _ = srv.call("alice", "POST",
                               f"/v1/sessions/{stranger}/context/cleanup", body)
            assert s in (400, 404), ("no such session", n, s, v)
        for path, body in (
            (f"/v1/sessions/{sid}/branches/main/messages?limit=18446744073709551616", None),
            (f"/v1/sessions/{sid}/shares", {"expires_in_days": 4000000000}),
            (f"/v1/sessions/{sid}/context/compress", {"keep_last": 2**64}),
        ):
            s, v, _ = srv.call("alice", "POST" if body else "GET", path, body)
            assert 400 <= s < 500, (path, s, v)
            assert isinstance(v, dict) and "error" in v, (path, v)
        assert srv.proc.poll() is None
        return "huge, negative and float numbers: 400 JSON errors, access checked first"


def attack_7_storage_fault():
    """After ENOSPC the index writer died: every search 500 until restart, health still ok."""
    if os.geteuid() != 0:
        return "skipped (needs root to mount a small tmpfs)"
    tmp = tempfile.mkdtemp(prefix="kiln-adv-enospc-")
    data = os.path.join(tmp, "data")
    index = os.path.join(data, "search")
    os.makedirs(index)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", index],
                      capture_output=True).returncode != 0:
        os.rmdir(index)
        return "skipped (mount -t tmpfs is not allowed here)"
    try:
        with Server(data=data) as srv:
            sid = srv.session("alice", "garnet")
            srv.say("alice", sid, "garnet electrolytes")
            s, v, _ = srv.call("alice", "GET", "/v1/search?q=garnet")
            assert s == 200, (s, v)
            filler = os.path.join(index, "filler")
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * (1 << 16))
                        f.flush()
                except OSError:
                    pass
            # Enough new text that the index must write a segment.
            for i in range(20):
                srv.say("alice", sid, f"garnet sintering run {i} " + "lithium " * 200)
            s, v, _ = srv.call("alice", "GET", "/v1/search?q=garnet")
            assert s in (503, 507), f"search on a full disk answered {s} {v}"
            error(v, "insufficient_storage" if s == 507 else "storage_unavailable", True)
            s, h, _ = srv.call(None, "GET", "/v1/health")
            assert s == 200 and h["status"] == "degraded", h
            assert "/" not in json.dumps(h), f"a path in health: {h}"
            os.remove(filler)
            deadline = time.monotonic() + 10
            while True:
                s, v, _ = srv.call("alice", "GET", "/v1/search?q=sintering")
                if s == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert s == 200, f"search did not recover once space returned: {s} {v}"
            assert v["items"], f"what was written during the fault is found: {v}"
            s, h, _ = srv.call(None, "GET", "/v1/health")
            assert h["status"] == "ok", h
            log = srv.logtail()
        faults = log.count("no space") + log.count("No space")
        assert faults <= 6, f"the fault was logged {faults} times, not once per change"
        return "full index disk: 507 + health degraded; space back: search 200, health ok"
    finally:
        subprocess.run(["umount", index], capture_output=True)
        subprocess.run(["rm", "-rf", tmp])


def attack_8_two_servers():
    """A second `kiln serve` on one data directory silently split the index."""
    with Server() as srv:
        out = subprocess.run(
            [KILN, "serve", "--bind", "127.0.0.1:0", "--data-dir", srv.data],
            capture_output=True, text=True, timeout=30,
        )
        assert out.returncode != 0, "a second server started on the same data directory"
        assert f"process {srv.proc.pid}" in out.stderr, out.stderr
        s, _, _ = srv.call(None, "GET", "/v1/health")
        assert s == 200
        return f"second server refused: {out.stderr.strip().splitlines()[-1][:90]}"


def attack_9_import_flood():
    """4 connections importing a 2 MB export in a loop pushed another user's append p50 from
    1.9 ms to 895 ms and wrote 610 MB in 70 s."""
    with Server() as srv:
        sid = srv.session("alice", "big")
        # Just under the 2 MiB body limit, like the original 2 MB export.
        for i in range(7):
            srv.say("alice", sid, f"run {i} " + "spectrum " * 30000)
        export = json.dumps(srv.ok("alice", "GET", f"/v1/sessions/{sid}/export")).encode()
        bob = srv.session("bob", "bench")
        stop = threading.Event()
        codes = []

        def flood():
            while not stop.is_set():
                s, v = srv.post_big("alice", "/v1/sessions/import", export)
                codes.append(s)
                if s == 429 and v is not None:
                    error(v, "rate_limited", True)

        ts = [threading.Thread(target=flood) for _ in range(4)]
        for t in ts:
            t.start()
        lat = []
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            took, _ = timed(lambda: srv.say("bob", bob, "an ordinary note"))
            lat.append(took)
        stop.set()
        for t in ts:
            t.join()
        imported = codes.count(201)
        p50 = statistics.median(lat)
        assert 429 in codes, f"no import was refused: {codes[:20]}"
        # What a refused import says (a small body, so the answer is always read).
        s, v, h = srv.call("alice", "POST", "/v1/sessions/import", {"format": "kiln-session"})
        assert s == 429, (s, v)
        error(v, "rate_limited", True)
        assert "retry-after" in {k.lower() for k in h}, h
        assert imported <= 3 + SECONDS / 5, f"{imported} imports of {len(export)} B accepted"
        assert p50 < 0.1, f"bob's append p50 {ms(p50)} under the flood"
    # The per-user storage quota: past it, 413 and nothing earlier lost.
    with Server({"KILN_LIMITS__EXPENSIVE_PER_MINUTE": "0",
                 "KILN_LIMITS__STORAGE_QUOTA_MB": "2"}) as srv:
        sid = srv.session("alice", "quota")
        kept = 0
        for i in range(40):
            s, v, _ = srv.call("alice", "POST", f"/v1/sessions/{sid}/branches/main/messages",
                               {"role": "user", "content": f"{i} " + "x" * 200_000})
            if s == 413:
                error(v, "storage_quota_exceeded", True)
                break
            assert s == 201, (s, v)
            kept += 1
        else:
            raise AssertionError("40 x 200 kB written under a 2 MB quota")
        msgs = srv.ok("alice", "GET", f"/v1/sessions/{sid}/branches/main/messages?limit=100")
        assert len(msgs["items"]) == kept, (len(msgs["items"]), kept)
    return (f"{len(codes)} imports tried, {imported} accepted, rest 429; bob's append p50 "
            f"{ms(p50)}; quota: {kept} writes kept, then 413")


def attack_10_concurrent_turns():
    """16-64 clients asking the agent on one branch: 99.6-100 % of turns failed 409."""
    with Server({"KILN_LIMITS__EXPENSIVE_PER_MINUTE": "0"}) as srv:
        sid = srv.session("alice", "turns")
        results = []
        lock = threading.Lock()

        def ask(i):
            s, v, _ = srv.call("alice", "POST", f"/v1/sessions/{sid}/query",
                               {"message": f"Analyse LiFePO4 ({i})"}, timeout=120)
            with lock:
                results.append((s, v))

        burst = [threading.Thread(target=ask, args=(i,)) for i in range(32)]
        for t in burst:
            t.start()
        for t in burst:
            t.join()
        codes = [s for s, _ in results]
        assert codes.count(200) == 32, f"a burst of 32 turns: {sorted(codes)}"
        # Sustained: 16 clients for SECONDS; every accepted turn completes, none is 409.
        results.clear()
        stop = threading.Event()

        def client(i):
            k = 0
            while not stop.is_set():
                ask(f"{i}.{k}")
                k += 1

        ts = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in ts:
            t.start()
        time.sleep(SECONDS)
        stop.set()
        for t in ts:
            t.join()
        codes = [s for s, _ in results]
        assert 409 not in codes and set(codes) <= {200, 429}, sorted(set(codes))
        answered = codes.count(200)
        # One linear history: every answered turn's question is on the branch, once.
        questions, before = [], None
        while True:
            q = "?limit=1000" + (f"&before={before}" if before else "")
            page = srv.ok("alice", "GET", f"/v1/sessions/{sid}/branches/main/messages{q}")
            questions += [m["content"] for m in page["items"] if m["role"] == "user"]
            before = page.get("next_cursor")
            if not before:
                break
        assert len(questions) == len(set(questions)) == 32 + answered, (len(questions), answered)
        return (f"burst of 32: 32 answered; 16 clients for {SECONDS:g} s: {answered} answered, "
                f"{codes.count(429)} queue-full 429, 0 head_moved")


def attack_11_busy_session_search():
    """One session repeating a word ~150k times made that word's search take 2.5-5.4 s p50 at
    16-64 connections. Here --busy messages (default 3,000) in one session."""
    with Server({"KILN_LIMITS__EXPENSIVE_PER_MINUTE": "0"}) as srv:
        hot = srv.session("alice", "busy")
        others = [srv.session("alice", f"quiet {i}") for i in range(20)]
        for i, sid in enumerate(others):
            srv.say("alice", sid, f"kimberlite sample {i} from the quiet shelf")
        # Fill the busy session fast: one import of a session with BUSY messages would be
        # capped, so append from 8 threads.
        n = [0]
        lock = threading.Lock()

        def fill():
            while True:
                with lock:
                    if n[0] >= BUSY:
                        return
                    n[0] += 1
                    k = n[0]
                srv.say("alice", hot, f"kimberlite pipe {k} logged")

        ts = [threading.Thread(target=fill) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        s, v, _ = srv.call("alice", "GET", "/v1/search?q=kimberlite")
        assert s == 200, (s, v)
        lat = []
        codes = []
        stop = threading.Event()

        def search():
            while not stop.is_set():
                took, (s, _, _) = timed(lambda: srv.call("alice", "GET",
                                                          "/v1/search?q=kimberlite"))
                lat.append(took)
                codes.append(s)

        ts = [threading.Thread(target=search) for _ in range(16)]
        for t in ts:
            t.start()
        time.sleep(SECONDS)
        stop.set()
        for t in ts:
            t.join()
        assert set(codes) == {200}, set(codes)
        p50, p99 = statistics.median(lat), percentile(lat, 99)
        assert p99 < 2.0, f"p99 {ms(p99)} at 16 connections"
        return (f"{BUSY} hits in one session, 16 connections for {SECONDS:g} s: {len(lat)} "
                f"searches, p50 {ms(p50)}, p99 {ms(p99)}")


def attack_13_14_small_ones():
    """405/414 had empty bodies, TRACE got 403; a request refused before its body was read
    closed the connection without `Connection: close`."""
    with Server() as srv:
        s, v, _ = srv.call("alice", "TRACE", "/v1/sessions")
        assert s == 405, s
        error(v, "method_not_allowed")
        s, v, _ = srv.call("alice", "PUT", "/v1/health")
        assert s == 405, s
        error(v, "method_not_allowed")
        s, v, _ = srv.call("alice", "GET", "/v1/search?q=" + "a" * 20000)
        assert s == 414, s
        error(v, "uri_too_long")
        # Refused before the body is read: the response says the connection closes.
        sock = raw_socket(srv.addr)
        sock.sendall(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 100000000\r\n\r\n{")
        sock.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
        sock.close()
        assert head.startswith(b"HTTP/1.1 4"), head[:80]
        assert b"connection: close" in head.lower(), head.decode(errors="replace")
        return "405/414 JSON bodies, TRACE 405, early refusal says Connection: close"


ATTACKS = {
    "1": attack_1_idle_and_slow_connections,
    "2": attack_2_nested_query,
    "3": attack_3_template_code,
    "4": attack_4_template_leak,
    "5": attack_5_import_anything,
    "6": attack_6_numeric_panics,
    "7": attack_7_storage_fault,
    "8": attack_8_two_servers,
    "9": attack_9_import_flood,
    "10": attack_10_concurrent_turns,
    "11": attack_11_busy_session_search,
    "13": attack_13_14_small_ones,
}


def main():
    global KILN, SECONDS, BUSY
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kiln", default=os.environ.get("KILN_BIN") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "debug", "kiln"))
    ap.add_argument("--only", help="comma-separated item numbers, e.g. 1,2,10")
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="how long each load attack runs (default 3)")
    ap.add_argument("--busy", type=int, default=3000,
                    help="messages in the busy session of item 11 (default 3000)")
    a = ap.parse_args()
    KILN, SECONDS, BUSY = a.kiln, a.seconds, a.busy
    chosen = a.only.split(",") if a.only else list(ATTACKS)
    failed = 0
    for key in chosen:
        fn = ATTACKS[key]
        t = time.monotonic()
        try:
            summary = fn()
            print(f"ok   {key:>2} {fn.__name__[len('attack_'):]}: {summary} "
                  f"({time.monotonic() - t:.1f} s)", flush=True)
        except Exception:  # noqa: BLE001 - report every attack, then fail
            failed += 1
            print(f"FAIL {key:>2} {fn.__name__[len('attack_'):]}:", flush=True)
            traceback.print_exc()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
