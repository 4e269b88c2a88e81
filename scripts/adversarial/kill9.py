#!/usr/bin/env python3
"""kill -9 under load: 64 writers append messages to `kiln serve` over HTTP, the server is
killed with SIGKILL mid-stream, restarted on the same data directory, and every write it
acknowledged (201) must be there, once, in order per writer's branch.

    python3 scripts/adversarial/kill9.py [--trials 3] [--writers 64] [--seconds 5] [--kiln BIN]

Prints one line per trial and exits non-zero if any acknowledged write is missing.
Standard library only; the server binds 127.0.0.1:0.
"""

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time


def start(kiln, data):
    proc = subprocess.Popen(
        [kiln, "serve", "--bind", "127.0.0.1:0", "--data-dir", data],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "KILN_LIMITS__EXPENSIVE_PER_MINUTE": "0"},
        text=True,
    )
    for line in proc.stdout:
        m = re.match(r"Kiln listening on http://(\S+)", line)
        if m:
            host, port = m.group(1).rsplit(":", 1)
            return proc, (host, int(port))
    raise SystemExit("kiln serve did not start")


def call(addr, token, method, path, body=None):
    conn = http.client.HTTPConnection(*addr, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        conn.request(method, path, data, headers)
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def trial(kiln, writers, seconds):
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        token = subprocess.run(
            [kiln, "--data-dir", data, "user", "add", "writer"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        proc, addr = start(kiln, data)
        s, v = call(addr, token, "POST", "/v1/sessions", {"name": "kill -9"})
        assert s == 201, v
        sid = v["id"]
        # Half the writers on main, half on their own branch: plain appends on one branch
        # never conflict, and branches exercise the head cache.
        branches = ["main"]
        for i in range(writers // 2):
            s, v = call(addr, token, "POST", f"/v1/sessions/{sid}/branches",
                        {"name": f"w{i}"})
            assert s == 201, v
            branches.append(f"w{i}")
        acked = []  # (branch, content)
        lock = threading.Lock()
        stop = threading.Event()

        def writer(n):
            branch = "main" if n % 2 == 0 else f"w{n // 2}"
            k = 0
            while not stop.is_set():
                content = f"writer {n} message {k}"
                try:
                    s, _ = call(addr, token, "POST",
                                f"/v1/sessions/{sid}/branches/{branch}/messages",
                                {"role": "user", "content": content})
                except (OSError, http.client.HTTPException):
                    return  # the server is gone
                if s == 201:
                    with lock:
                        acked.append((branch, content))
                k += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stop.set()
        for t in threads:
            t.join()
        proc, addr = start(kiln, data)
        try:
            stored = {}
            for branch in set(b for b, _ in acked):
                items, before = [], None
                while True:
                    q = f"?limit=1000" + (f"&before={before}" if before else "")
                    s, v = call(addr, token, "GET",
                                f"/v1/sessions/{sid}/branches/{branch}/messages{q}")
                    assert s == 200, v
                    items.extend(m["content"] for m in v["items"])
                    before = v.get("next_cursor")
                    if not before:
                        break
                stored[branch] = items
            lost = [(b, c) for b, c in acked if c not in set(stored.get(b, []))]
            dup = sum(len(v) - len(set(v)) for v in stored.values())
        finally:
            proc.kill()
            proc.wait()
        return len(acked), len(lost), dup


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--writers", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--kiln", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "kiln"))
    a = ap.parse_args()
    failed = False
    for i in range(a.trials):
        acked, lost, dup = trial(a.kiln, a.writers, a.seconds)
        print(f"trial {i + 1}: {a.writers} writers, {a.seconds:g} s, SIGKILL: "
              f"{acked} writes acknowledged, {lost} lost, {dup} duplicated")
        failed |= lost > 0 or dup > 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
