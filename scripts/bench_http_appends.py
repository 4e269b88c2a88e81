#!/usr/bin/env python3
"""HTTP appends with many connections: one SQLite server, one PostgreSQL server, two
PostgreSQL servers on one database (issue 18), side by side in one run.

Each of --connections clients keeps one HTTP/1.1 connection and appends messages to a session
of its own, one request at a time, for --seconds; with two servers, the clients alternate
between them. Prints per setup: appends per second, p50 and p99 latency, and on PostgreSQL the
database's own time per append (pg_stat_statements: every statement's execution time, COMMIT
included, over the appends), from which scaling on more cores can be estimated. Standard
library only; only 127.0.0.1 is contacted.

    scripts/pg run python3 scripts/bench_http_appends.py --kiln target/release/kiln
"""

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time


def request(conn, method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    res = conn.getresponse()
    payload = res.read()
    return res.status, (json.loads(payload) if payload else None)


def start(kiln, data_dir, database_url=None):
    args = [kiln, "serve", "--bind", "127.0.0.1:0", "--data-dir", data_dir]
    if database_url:
        args += ["--database-url", database_url]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    token, addr = None, None
    for line in proc.stdout:
        line = line.strip()
        if line.startswith("kiln_"):
            token = line
        if line.startswith("Kiln listening on http://"):
            addr = line.removeprefix("Kiln listening on http://")
            break
    if addr is None:
        raise SystemExit("kiln serve did not start")
    host, port = addr.rsplit(":", 1)
    return proc, (host, int(port)), token


def psql(url, sql):
    out = subprocess.run(["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def run(kiln, seconds, connections, servers, pg_server):
    tmp = tempfile.mkdtemp(prefix="kiln-bench-http-")
    db_url = None
    if pg_server:
        name = f"kiln_bench_{os.getpid()}_{servers}"
        psql(pg_server, f"DROP DATABASE IF EXISTS {name}")
        psql(pg_server, f"CREATE DATABASE {name}")
        db_url = pg_server.rsplit("/", 1)[0] + "/" + name
    procs, addrs, token = [], [], None
    try:
        for i in range(servers):
            proc, addr, t = start(kiln, os.path.join(tmp, f"s{i}"), db_url)
            procs.append(proc)
            addrs.append(addr)
            token = token or t
        setup = http.client.HTTPConnection(*addrs[0], timeout=30)
        sessions = []
        for i in range(connections):
            st, s = request(setup, "POST", "/v1/sessions", token, {"name": f"bench {i}"})
            assert st == 201, s
            sessions.append(s["id"])
        if db_url:
            psql(db_url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            psql(db_url, "SELECT pg_stat_statements_reset()")
        lat = [[] for _ in range(connections)]
        errors = [0] * connections
        stop = time.monotonic() + seconds
        text = "Sintered at 750 C for 6 h; capacity 152 mAh/g at C/10, olivine phase pure by XRD."

        def client(i):
            conn = http.client.HTTPConnection(*addrs[i % servers], timeout=30)
            path = f"/v1/sessions/{sessions[i]}/branches/main/messages"
            n = 0
            while time.monotonic() < stop:
                t = time.perf_counter()
                st, _ = request(conn, "POST", path, token, {"role": "user", "content": f"{text} #{n}"})
                lat[i].append(time.perf_counter() - t)
                if st != 201:
                    errors[i] += 1
                n += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
        began = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - began
        all_lat = sorted(x for l in lat for x in l)
        n = len(all_lat)
        out = {
            "setup": f"{servers} x {'PostgreSQL' if db_url else 'SQLite'}",
            "connections": connections,
            "appends": n,
            "errors": sum(errors),
            "appends_per_s": round(n / wall, 1),
            "p50_ms": round(statistics.median(all_lat) * 1000, 2),
            "p99_ms": round(all_lat[min(n - 1, int(n * 0.99))] * 1000, 2),
        }
        if db_url:
            # The write lock's statement is timed apart: its time is waiting, not work.
            this_db = "dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            work = float(psql(db_url, "SELECT COALESCE(sum(total_exec_time), 0) FROM pg_stat_statements "
                                      f"WHERE {this_db} AND query NOT LIKE '%pg_advisory_xact_lock%'"))
            wait = float(psql(db_url, "SELECT COALESCE(sum(total_exec_time), 0) FROM pg_stat_statements "
                                      f"WHERE {this_db} AND query LIKE '%pg_advisory_xact_lock%'"))
            out["db_ms_per_append"] = round(work / max(n, 1), 3)
            out["write_lock_wait_ms_per_append"] = round(wait / max(n, 1), 3)
        return out
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        if db_url:
            psql(pg_server, f"DROP DATABASE IF EXISTS {db_url.rsplit('/', 1)[1]} WITH (FORCE)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kiln", default="target/release/kiln")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--pg", default=os.environ.get("KILN_TEST_DATABASE_URL"),
                    help="a PostgreSQL server URL (default: KILN_TEST_DATABASE_URL, as scripts/pg sets)")
    a = ap.parse_args()
    print(json.dumps(run(a.kiln, a.seconds, a.connections, 1, None)), flush=True)
    if a.pg:
        print(json.dumps(run(a.kiln, a.seconds, a.connections, 1, a.pg)), flush=True)
        print(json.dumps(run(a.kiln, a.seconds, a.connections, 2, a.pg)), flush=True)


if __name__ == "__main__":
    main()
