#!/usr/bin/env python3
"""Another user's append latency while clients import large exports in a loop (issue 13, item 9).

Starts `KILN serve` on a fresh data directory, has bob build a session of about --export-mb
of messages and export it, then measures alice's appends (one at a time, each awaited) alone
and while --importers threads import bob's export over and over. Prints p50/p99 per phase as
JSON. Standard library only; every loop is bounded in time; only 127.0.0.1 is contacted.

    python3 scripts/bench_import_contention.py --kiln target/release/kiln --seconds 30
"""

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def request(conn, method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, raw


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def appends(port, token, session, seconds, out):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    path = f"/v1/sessions/{session}/branches/main/messages"
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        t = time.perf_counter()
        st, raw = request(conn, "POST", path, token, {"role": "user", "content": f"note {i}"})
        out.append((time.perf_counter() - t) * 1000)
        if st != 201:
            raise SystemExit(f"append failed: {st} {raw[:200]!r}")
        i += 1


def importer(port, token, body, stop, counts, statuses):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while not stop.is_set():
        st, _ = request(conn, "POST", "/v1/sessions/import", token, body)
        counts.append(1)
        statuses[st] = statuses.get(st, 0) + 1


def summary(xs):
    return {
        "appends": len(xs),
        "p50_ms": round(statistics.median(xs), 2),
        "p99_ms": round(percentile(xs, 99), 2),
        "max_ms": round(max(xs), 2),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True, help="the kiln binary to measure")
    ap.add_argument("--port", type=int, default=18917)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    ap.add_argument("--importers", type=int, default=4)
    ap.add_argument("--export-mb", type=float, default=1.8)
    args = ap.parse_args()
    data = tempfile.mkdtemp(prefix="kiln-contention-")
    env = dict(os.environ, KILN_LOG="warn")
    try:
        tok = lambda name: subprocess.run(  # noqa: E731
            [args.kiln, "--data-dir", data, "user", "add", name],
            check=True, capture_output=True, text=True, env=env,
        ).stdout.strip()
        alice, bob = tok("alice"), tok("bob")
        server = subprocess.Popen(
            [args.kiln, "--data-dir", data, "serve", "--bind", f"127.0.0.1:{args.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        try:
            conn = None
            for _ in range(200):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
                    request(conn, "GET", "/v1/health", alice)
                    break
                except OSError:
                    time.sleep(0.05)
            st, raw = request(conn, "POST", "/v1/sessions", bob, {"name": "big"})
            big = json.loads(raw)["id"]
            chunk = "lorem ipsum dolor sit amet " * 150  # about 4 KB
            n = int(args.export_mb * 1024 * 1024 / (len(chunk) + 400))
            for i in range(n):
                request(conn, "POST", f"/v1/sessions/{big}/branches/main/messages", bob,
                        {"role": "user" if i % 2 == 0 else "assistant", "content": f"{i} {chunk}"})
            st, body = request(conn, "GET", f"/v1/sessions/{big}/export", bob)
            assert st == 200, body[:200]
            st, raw = request(conn, "POST", "/v1/sessions", alice, {"name": "small"})
            small = json.loads(raw)["id"]
            quiet = []
            appends(args.port, alice, small, args.seconds, quiet)
            stop, counts, statuses = threading.Event(), [], {}
            threads = [
                threading.Thread(target=importer, args=(args.port, bob, body, stop, counts, statuses))
                for _ in range(args.importers)
            ]
            db = os.path.join(data, "kiln.db")
            size = lambda: sum(  # noqa: E731
                os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))
            before = size()
            for t in threads:
                t.start()
            busy = []
            t0 = time.monotonic()
            appends(args.port, alice, small, args.seconds, busy)
            stop.set()
            for t in threads:
                t.join(timeout=120)
            elapsed = time.monotonic() - t0
            print(json.dumps({
                "kiln": args.kiln,
                "export_bytes": len(body),
                "importers": args.importers,
                "alone": summary(quiet),
                "while_importing": summary(busy),
                "imports": len(counts),
                "import_statuses": statuses,
                "seconds": round(elapsed, 1),
                "db_growth_mb": round((size() - before) / 1e6, 1),
                "load": os.getloadavg(),
            }, indent=2))
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
