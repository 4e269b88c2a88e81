#!/usr/bin/env python3
"""Screenshots of every web page at 1400 px and 390 px wide, light and dark, for a reviewer.

Starts `kiln serve` on a fresh data directory (offline model), fills one session with a
realistic campaign over the HTTP API (analyses, a comparison, an optimizer with experiments and
a suggestion, notebook metrics, hypotheses, a branch with a checkpoint), then drives Debian's
headless Chromium over WebDriver (chromedriver; plain HTTP, no Python packages needed) through
the sign-in page, the sessions page, each tab of the session workspace, the share page and the
settings page. Pictures go to target/screenshots/<page>-<width>-<theme>.png.

    scripts/screenshots.py [--kiln target/debug/kiln] [--out target/screenshots]
"""

import argparse
import base64
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None, accept="application/json"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", accept)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw and accept == "application/json" else raw)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw


class Kiln:
    def __init__(self, binary, workdir):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [binary, "serve", "--bind", f"127.0.0.1:{self.port}", "--data-dir", str(workdir / "data")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=workdir,
        )
        self.token = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line.strip().startswith("kiln_"):
                self.token = line.strip()
            if "listening" in line.lower():
                break
        if not self.token:
            raise SystemExit("kiln serve did not print its first token")

    def api(self, method, path, body=None):
        status, out = http(method, self.base + path, body, self.token)
        if status >= 400:
            raise SystemExit(f"{method} {path}: {status} {out}")
        return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def seed(k):
    s = k.api("POST", "/v1/sessions", {"name": "Olivine cathode screen", "project": "cathodes",
                                       "tags": ["olivine", "lfp"],
                                       "description": "Can Na or Mn on the Li/Fe sites keep the olivine stable?"})
    sid = s["id"]
    for q in ["Analyse LiFePO4", "Compare LiFePO4 and LiMnPO4", "what could replace Fe in LiFePO4?"]:
        k.api("POST", f"/v1/sessions/{sid}/query", {"message": q})
    k.api("POST", f"/v1/sessions/{sid}/branches/main/messages", {"role": "note", "content":
          "## Plan\n\n1. Screen **Mn** and **Co** substitutions\n2. Sinter at 600–900 °C\n\n| dopant | target |\n|---|---|\n| Mn | 4.1 V |\n| Co | 4.8 V |"})
    tool = lambda args: k.api("POST", f"/v1/sessions/{sid}/tools/bayesian_optimizer", {"arguments": args})
    tool({"action": "define_space",
          "variables": [{"name": "temperature", "type": "real", "bounds": [600, 900], "unit": "°C"},
                        {"name": "time", "type": "real", "bounds": [1, 10], "unit": "h"}],
          "objective": {"name": "capacity", "goal": "maximize"}})
    rows = [{"inputs": {"temperature": t, "time": h}, "output": 150 - ((t - 780) / 40) ** 2 - (h - 6) ** 2}
            for t, h in [(600, 2), (650, 8), (700, 4), (750, 6), (800, 3), (850, 9), (900, 5), (720, 7)]]
    tool({"action": "add_experiments", "experiments": rows})
    tool({"action": "suggest", "q": 3})
    for i in range(12):
        k.api("POST", f"/v1/sessions/{sid}/tools/notebook",
              {"arguments": {"action": "log_metric", "name": "capacity", "value": 120 + 2.5 * i}})
    k.api("POST", f"/v1/sessions/{sid}/tools/notebook",
          {"arguments": {"action": "log", "message": "furnace 2 recalibrated", "level": "warn"}})
    for ev in [{"kind": "hypothesis", "statement": "Mn on the Fe site raises the voltage", "status": "open"},
               {"kind": "hypothesis", "statement": "Na on the Li site keeps the olivine", "status": "supported"},
               {"kind": "task", "description": "XRD of the 780 °C batch", "status": "pending"}]:
        k.api("POST", f"/v1/sessions/{sid}/branches/main/events", ev)
    k.api("POST", f"/v1/sessions/{sid}/checkpoints", {"name": "after-screen"})
    k.api("POST", f"/v1/sessions/{sid}/branches", {"name": "sodium", "from": {"branch": "main"}})
    k.api("POST", f"/v1/sessions/{sid}/query", {"message": "Analyse NaFePO4", "branch": "sodium"})
    k.api("POST", "/v1/me/memory", {"content": "I work at 1 atm unless I say otherwise", "kind": "preference"})
    k.api("POST", "/v1/me/memory", {"content": "Report capacities in mAh/g"})
    batch = k.api("POST", f"/v1/sessions/{sid}/batches", {
        "request": "Analyse {formula}",
        "items": [{"formula": f} for f in ["LiFePO4", "LiMnPO4", "LiCoO2", "LiNiO2", "NaFePO4", "Xx9"]]})
    time.sleep(2)
    share = k.api("POST", f"/v1/sessions/{sid}/shares", {"expires_in_days": 7})
    k.api("POST", "/v1/sessions", {"name": "Perovskite PL campaign", "project": "pv"})
    return sid, share["path"], batch["id"]


class Browser:
    """The few WebDriver commands the pictures need."""

    def __init__(self, driver_url, chromium):
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--hide-scrollbars", "--window-size=1400,900"]}}}}
        status, out = http("POST", driver_url + "/session", caps)
        if status != 200:
            raise SystemExit(f"chromedriver: {out}")
        self.url = driver_url + "/session/" + out["value"]["sessionId"]

    def cmd(self, method, path, body=None):
        status, out = http(method, self.url + path, body)
        if status != 200:
            raise SystemExit(f"webdriver {path}: {out}")
        return out["value"]

    def go(self, url):
        self.cmd("POST", "/url", {"url": url})

    def size(self, w, h):
        self.cmd("POST", "/window/rect", {"width": w, "height": h})

    def js(self, script):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": []})

    def click(self, css):
        e = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        self.cmd("POST", f"/element/{list(e.values())[0]}/click", {})

    def cookie(self, name, value):
        self.cmd("POST", "/cookie", {"cookie": {"name": name, "value": value, "path": "/"}})

    def shot(self, path):
        path.write_bytes(base64.b64decode(self.cmd("GET", "/screenshot")))

    def quit(self):
        http("DELETE", self.url)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kiln", default=str(ROOT / "target" / "debug" / "kiln"))
    ap.add_argument("--out", default=str(ROOT / "target" / "screenshots"))
    ap.add_argument("--chromedriver", default=os.environ.get("KILN_CHROMEDRIVER", "/usr/bin/chromedriver"))
    ap.add_argument("--chromium", default=os.environ.get("KILN_CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="kiln-shots-"))
    kiln = Kiln(args.kiln, work)
    dport = free_port()
    driver = subprocess.Popen([args.chromedriver, f"--port={dport}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    browser = None
    try:
        sid, share, batch = seed(kiln)
        time.sleep(1)
        browser = Browser(f"http://127.0.0.1:{dport}", args.chromium)
        browser.go(kiln.base + "/login")
        browser.shot(out / "login-1400-light.png")
        browser.go(f"{kiln.base}/login?token={kiln.token}")
        browser.click("form[action='/login'] button")
        time.sleep(0.5)
        pages = [("sessions", "/"), ("search", "/?q=olivine")]
        pages += [(f"session-{t}", f"/web/sessions/{sid}/{t}") for t in
                  ["state", "branches", "optimizer", "notebook", "audit", "sharing"]]
        pages += [("session-sodium", f"/web/sessions/{sid}?branch=sodium"), ("share", share),
                  ("settings", "/web/settings"), ("memory", "/web/memory"),
                  ("batch", f"/web/sessions/{sid}/batches/{batch}")]
        for theme in ["light", "dark"]:
            browser.cookie("kiln_theme", theme)
            for width, height in [(1400, 900), (390, 844)]:
                browser.size(width, height)
                for name, path in pages:
                    browser.go(kiln.base + path)
                    time.sleep(0.3)
                    # The whole page, not just the first screen.
                    full = browser.js("return Math.max(document.documentElement.scrollHeight, "
                                      "document.body.scrollHeight)")
                    browser.size(width, min(max(height, int(full)), 6000))
                    browser.shot(out / f"{name}-{width}-{theme}.png")
                    browser.size(width, height)
        print(f"{len(list(out.glob('*.png')))} screenshots in {out}")
    finally:
        if browser:
            browser.quit()
        driver.terminate()
        kiln.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
