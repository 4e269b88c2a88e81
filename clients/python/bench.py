"""Client-side overhead per call over the raw HTTP round trip (httpx alone).

Times `s.track(name).append(...)` and `s.ask(...)` (offline model) against the same requests
made with a bare `httpx.Client`, interleaved in rounds so load on the machine hits both alike.

    python bench.py --url http://127.0.0.1:8080 --token TOKEN [--calls 300] [--rounds 5]

Prints the median per-call time of each and the overhead in per cent; then the same calls
answered by a canned response in-process (httpx.MockTransport, no server, no socket), which
isolates the client's own cost per call (models, validation, parsing) from server noise.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import httpx

import kiln


def per_call(fn: Callable[[int], object], n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) / n


def once(fn: Callable[[int], object], i: int) -> float:
    t0 = time.perf_counter()
    fn(i)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--ask-calls", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()

    client = kiln.Client(a.url, a.token)
    s = client.create_session("client overhead bench", project="bench")
    track = s.track("loss")
    raw = httpx.Client(
        base_url=a.url,
        headers={"Authorization": f"Bearer {a.token}", "Accept": "application/json"},
    )
    tool = f"/v1/sessions/{s.id}/tools/notebook"
    query = f"/v1/sessions/{s.id}/query"

    def raw_append(i: int) -> object:
        r = raw.post(tool, json={"arguments": {"action": "log_metric", "name": "loss",
                                               "value": i * 0.5}, "branch": "main"})
        r.raise_for_status()
        return r.json()

    def kiln_append(i: int) -> object:
        return track.append(i * 0.5)

    def raw_ask(i: int) -> object:
        r = raw.post(query, json={"message": "Analyse LiFePO4", "branch": "main"})
        r.raise_for_status()
        return r.json()

    def kiln_ask(i: int) -> object:
        return s.ask("Analyse LiFePO4")

    for fn in (raw_append, kiln_append, raw_ask, kiln_ask):  # warm up
        per_call(fn, 5)
    cases = [("track.append", raw_append, kiln_append, a.calls),
             ("ask (offline)", raw_ask, kiln_ask, a.ask_calls)]
    # Call by call, alternating, so both see the same session (tracks and the conversation
    # grow as the bench runs, and a later call costs the server a little more).
    for name, rawf, kf, n in cases:
        rs, ks = [], []
        for i in range(a.rounds * n):
            rs.append(once(rawf, i))
            ks.append(once(kf, i))
        r, k = statistics.median(rs), statistics.median(ks)
        print(f"{name:14} httpx {r * 1e6:9.1f} µs/call   kiln {k * 1e6:9.1f} µs/call   "
              f"overhead {(k - r) / r * 100:+5.1f} %   (median of {a.rounds * n} alternating "
              f"calls each)")
    # In-process: the server's real answers replayed, so only client code runs.
    canned = {"tool": raw_append(0), "query": raw_ask(0)}

    def handle(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=canned["query" if req.url.path.endswith("query")
                                               else "tool"])

    mock = httpx.MockTransport(handle)
    mraw = httpx.Client(base_url=a.url, transport=mock)
    mclient = kiln.Client(a.url, a.token, transport=mock)
    ms = kiln.Session(mclient, s.data)
    mtrack = ms.track("loss")
    for name, rawf, kf in [
        ("track.append", lambda i: mraw.post(tool, json={"arguments": {
            "action": "log_metric", "name": "raw", "value": i * 0.5}}).json(),
         lambda i: mtrack.append(i * 0.5)),
        ("ask (offline)", lambda i: mraw.post(query, json={"message": "Analyse LiFePO4"}).json(),
         lambda i: ms.ask("Analyse LiFePO4")),
    ]:
        n = 2000
        r = statistics.median(per_call(rawf, n) for _ in range(a.rounds))
        k = statistics.median(per_call(kf, n) for _ in range(a.rounds))
        print(f"{name:14} in-process: httpx {r * 1e6:7.1f} µs/call   kiln {k * 1e6:7.1f} µs/call"
              f"   client's own cost {(k - r) * 1e6:6.1f} µs/call")
    s.archive()
    raw.close()
    client.close()


if __name__ == "__main__":
    main()
