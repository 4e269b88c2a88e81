#!/usr/bin/env python3
"""Server-side time of the web pages: seeds one session through the API (N agent turns, an
optimizer with experiments and suggestions, a notebook metric track), signs in by cookie and
times GETs of every tab of the session workspace, the conversation alone (what the script
fetches after a turn) and the sessions page. With --branches, that many branches fork from
points spread along the history (each with a few messages of its own and a checkpoint), so the
Branches tab draws a real tree. Standard library only.

    target/release/kiln --data-dir /tmp/kw serve --bind 127.0.0.1:18081   # prints a token
    python3 scripts/bench_web_pages.py --base http://127.0.0.1:18081 --token kiln_… \
        --turns 30 --experiments 40 --gets 200
    # the issue-15 target: 100k nodes, 50 branches
    python3 scripts/bench_web_pages.py --base … --token kiln_… --messages 100000 --branches 50
"""

import argparse
import http.client
import json
import random
import time
import urllib.request


def call(base, token, path, body=None, cookie=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = cookie
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(base + path, data=data, headers=headers)) as r:
        return r.read()


def timed(base, path, cookie, n):
    ts = []
    size = 0
    for _ in range(n):
        t = time.perf_counter()
        size = len(call(base, None, path, cookie=cookie))
        ts.append((time.perf_counter() - t) * 1000)
    ts.sort()
    pick = lambda q: ts[min(len(ts) - 1, int(q * len(ts)))]
    return size, pick(0.5), pick(0.95), pick(0.99)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:8080")
    ap.add_argument("--token", required=True)
    ap.add_argument("--turns", type=int, default=30)
    ap.add_argument("--experiments", type=int, default=40)
    ap.add_argument("--gets", type=int, default=200)
    ap.add_argument("--messages", type=int, default=0,
                    help="plain messages appended first, to make a long history")
    ap.add_argument("--branches", type=int, default=0,
                    help="branches forked along the history, each with messages and a checkpoint")
    a = ap.parse_args()
    rng = random.Random(7)
    s = json.loads(call(a.base, a.token, "/v1/sessions", {"name": "Web page bench"}))["id"]
    forks = []
    if a.messages:
        # One keep-alive connection: the history is the point here, not HTTP set-up.
        host = a.base.split("//", 1)[1]
        conn = http.client.HTTPConnection(host)
        headers = {"Authorization": f"Bearer {a.token}", "content-type": "application/json"}
        for i in range(a.messages):
            role = "user" if i % 2 == 0 else "assistant"
            body = json.dumps({"role": role, "content": f"message {i} about LiFePO4 " + "x" * 200})
            conn.request("POST", f"/v1/sessions/{s}/branches/main/messages", body, headers)
            r = conn.getresponse()
            out = r.read()
            assert r.status == 201, r.status
            if a.branches and i % max(1, a.messages // a.branches) == 0:
                forks.append(json.loads(out)["head"])
    for i in range(a.turns):
        call(a.base, a.token, f"/v1/sessions/{s}/query", {"message": f"Analyse LiFePO4 and LiCoO2, round {i}"})
    tool = lambda name, args: call(a.base, a.token, f"/v1/sessions/{s}/tools/{name}", {"arguments": args})
    tool("bayesian_optimizer", {"action": "define_space",
         "variables": [{"name": "t", "type": "real", "bounds": [300, 900]},
                       {"name": "x", "type": "real", "bounds": [0, 1]}],
         "objective": {"name": "yield", "goal": "maximize"}})
    tool("bayesian_optimizer", {"action": "add_experiments", "experiments": [
        {"inputs": {"t": 300 + 600 * rng.random(), "x": rng.random()}, "output": rng.random()}
        for _ in range(a.experiments)]})
    tool("bayesian_optimizer", {"action": "suggest", "q": 3, "strategy": "qEI"})
    for i in range(20):
        tool("notebook", {"action": "log_metric", "name": "capacity", "value": 140 + i})
    for i, node in enumerate(forks[: a.branches]):
        name = f"alt-{i:02d}"
        call(a.base, a.token, f"/v1/sessions/{s}/branches", {"name": name, "from": {"node": node}})
        for j in range(3):
            call(a.base, a.token, f"/v1/sessions/{s}/branches/{name}/messages",
                 {"role": "user" if j % 2 == 0 else "assistant", "content": f"on {name}, step {j}"})
        call(a.base, a.token, f"/v1/sessions/{s}/checkpoints", {"name": f"cp-{name}", "branch": name})
        if i % 5 == 4:
            call(a.base, a.token, f"/v1/sessions/{s}/branches/{name}/discard", {})
    # Sign in like a browser: the cookie is the API token (HttpOnly, SameSite=Strict).
    cookie = f"kiln_token={a.token}"
    pages = [(f"tab {t}", f"/web/sessions/{s}/{t}")
             for t in ["state", "branches", "optimizer", "notebook", "audit", "sharing"]]
    pages += [("conversation", f"/web/sessions/{s}?part=conversation"), ("sessions page", "/")]
    for label, path in pages:
        size, p50, p95, p99 = timed(a.base, path, cookie, a.gets)
        print(f"{label:14s} {size:8d} bytes  p50 {p50:5.1f} ms  p95 {p95:5.1f} ms  p99 {p99:5.1f} ms"
              f"  ({a.gets} GETs, {a.messages} messages + {a.turns} turns, {len(forks[:a.branches])} branches)")


if __name__ == "__main__":
    main()
