#!/usr/bin/env python3
"""Side-by-side quality and speed check of kiln-bayesopt against scikit-optimize.

Creates a temporary virtual environment with pinned scikit-optimize and its dependencies,
runs skopt.gp_minimize on Branin (2-D), Hartmann-6 (6-D) and a mixed problem (one real, one
integer, one categorical variable) for N seeds with 10 initial points and 60 evaluations, runs
Kiln's optimiser through `cargo run --release -p kiln-bayesopt --example bench_problems -- --json`,
and reports median and quartiles of simple regret after 30 and 60 evaluations, plus random
search. It also times gp_minimize's ask step with 100 observations in 6-D.

Usage: python3 scripts/bayesopt_compare.py [--seeds 20] [--venv /tmp/venv-kiln-bo] [--out FILE]
The script re-executes itself inside the venv; nothing is installed outside it.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

PINS = ["numpy==1.26.4", "scipy==1.13.1", "scikit-learn==1.5.2", "scikit-optimize==0.10.2"]
N_INIT = 10
BUDGET = 60
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ensure_venv(venv):
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
        subprocess.check_call([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        subprocess.check_call([py, "-m", "pip", "install", "--quiet", *PINS])
    return py


def branin(x):
    a, b, c = 1.0, 5.1 / (4 * math.pi ** 2), 5.0 / math.pi
    r, s, t = 6.0, 10.0, 1.0 / (8 * math.pi)
    return a * (x[1] - b * x[0] ** 2 + c * x[0] - r) ** 2 + s * (1 - t) * math.cos(x[0]) + s


HA = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
HP = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886], [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
      [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650], [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]
HALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(x):
    return -sum(HALPHA[i] * math.exp(-sum(HA[i][j] * (x[j] - HP[i][j]) ** 2 for j in range(6))) for i in range(4))


SHIFT = {"a": 1.0, "b": -2.0, "c": 2.5}
BASE = {"a": 0.5, "b": 0.0, "c": 0.8}


def mixed(x):
    xr, k, c = float(x[0]), int(x[1]), x[2]
    return (xr - SHIFT[c]) ** 2 / 4 + ((k - 6) / 3) ** 2 + BASE[c] + 0.2 * math.sin(3 * xr)


def quartiles(values):
    v = sorted(values)
    n = len(v)

    def q(p):
        pos = p * (n - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, n - 1)
        return v[lo] + (v[hi] - v[lo]) * (pos - lo)

    return q(0.25), q(0.5), q(0.75)


def best_trace(ys, f_min):
    best, out = math.inf, []
    for y in ys:
        best = min(best, y)
        out.append(best - f_min)
    return out


def run_skopt(seeds, kiln_results):
    import numpy as np  # noqa: F401  (import inside the venv)
    from skopt import gp_minimize
    from skopt.space import Categorical, Integer, Real

    problems = {
        "branin": (branin, [Real(-5.0, 10.0), Real(0.0, 15.0)]),
        "hartmann6": (hartmann6, [Real(0.0, 1.0) for _ in range(6)]),
        "mixed": (mixed, [Real(-5.0, 5.0), Integer(0, 10), Categorical(["a", "b", "c"])]),
    }
    out = {}
    for name, (f, dims) in problems.items():
        f_min = kiln_results[name]["f_min"]
        traces, times = [], []
        for seed in range(seeds):
            t = time.perf_counter()
            res = gp_minimize(f, dims, n_calls=BUDGET, n_initial_points=N_INIT, random_state=seed)
            times.append((time.perf_counter() - t) / (BUDGET - N_INIT))
            traces.append(best_trace(list(res.func_vals), f_min))
            print(f"  skopt {name} seed {seed}: regret@60 {traces[-1][-1]:.3e}", file=sys.stderr, flush=True)
        out[name] = {"traces": traces, "mean_ask_seconds": sum(times) / len(times)}
    return out


def ask_time_100_6d():
    """Median wall time of one gp_minimize-equivalent ask (fit + acquisition) with 100 points in 6-D."""
    import numpy as np
    from skopt import Optimizer
    from skopt.space import Real

    rng = np.random.RandomState(0)
    x = rng.uniform(size=(100, 6)).tolist()
    y = [hartmann6(p) for p in x]
    times, cpus = [], []
    for rep in range(3):
        opt = Optimizer([Real(0.0, 1.0) for _ in range(6)], base_estimator="GP", n_initial_points=10,
                        acq_optimizer="lbfgs", random_state=rep)
        # tell() with fit=False, then one timed tell of the last point: fit + acquisition search,
        # which is what gp_minimize does per iteration.
        opt.tell(x[:-1], y[:-1], fit=False)
        t, c = time.perf_counter(), time.process_time()
        opt.tell(x[-1], y[-1], fit=True)
        opt.ask()
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return sorted(times)[1], sorted(cpus)[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--venv", default="/tmp/venv-kiln-bo")
    ap.add_argument("--out", default=None, help="write the full JSON results here")
    ap.add_argument("--reuse-skopt", default=None, metavar="FILE",
                    help="take skopt's traces from an earlier --out FILE (skopt is deterministic per seed) instead of rerunning it")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if not args.inside:
        py = ensure_venv(args.venv)
        cmd = [py, os.path.abspath(__file__), "--inside", "--seeds", str(args.seeds)]
        if args.out:
            cmd += ["--out", args.out]
        if args.reuse_skopt:
            cmd += ["--reuse-skopt", args.reuse_skopt]
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        sys.exit(subprocess.call(cmd, env=env))

    print("running kiln (cargo run --release -p kiln-bayesopt --example bench_problems)...", file=sys.stderr, flush=True)
    kiln = json.loads(subprocess.check_output(
        ["cargo", "run", "--quiet", "--release", "-p", "kiln-bayesopt", "--example", "bench_problems", "--",
         "--json", "--time", "--seeds", str(args.seeds)], cwd=ROOT))
    if args.reuse_skopt:
        with open(args.reuse_skopt) as fh:
            old = json.load(fh)
        sk = old["skopt"]
        if any(len(sk[name]["traces"]) != args.seeds for name in sk):
            sys.exit("--reuse-skopt: the saved run used a different number of seeds")
        print(f"reusing skopt traces from {args.reuse_skopt}", file=sys.stderr)
    else:
        print("running skopt.gp_minimize...", file=sys.stderr, flush=True)
        sk = run_skopt(args.seeds, kiln)
    ask, ask_cpu = ask_time_100_6d()

    rows = []
    verdict = True
    for name in ["branin", "hartmann6", "mixed"]:
        for label, traces in [("kiln", kiln[name]["kiln"]), ("skopt", sk[name]["traces"]), ("random", kiln[name]["random"])]:
            q30 = quartiles([t[29] for t in traces])
            q60 = quartiles([t[BUDGET - 1] for t in traces])
            rows.append((name, label, q30, q60))
        k30 = quartiles([t[29] for t in kiln[name]["kiln"]])[1]
        s30 = quartiles([t[29] for t in sk[name]["traces"]])[1]
        k60 = quartiles([t[BUDGET - 1] for t in kiln[name]["kiln"]])[1]
        s60 = quartiles([t[BUDGET - 1] for t in sk[name]["traces"]])[1]
        r60 = quartiles([t[BUDGET - 1] for t in kiln[name]["random"]])[1]
        verdict &= k30 <= s30 and k60 <= s60 and k60 < r60

    print(f"\nsimple regret, {args.seeds} seeds, {N_INIT} initial points; median [q1, q3]")
    print(f"{'problem':<10} {'optimizer':<8} {'@30':>34} {'@60':>34}")
    for name, label, q30, q60 in rows:
        f = lambda q: f"{q[1]:.3e} [{q[0]:.2e}, {q[2]:.2e}]"
        print(f"{name:<10} {label:<8} {f(q30):>34} {f(q60):>34}")
    print()
    for name in ["branin", "hartmann6", "mixed"]:
        print(f"mean time per iteration (fit + ask), {name}: kiln {kiln[name]['kiln_mean_ask_seconds'] * 1e3:.1f} ms, "
              f"skopt {sk[name]['mean_ask_seconds'] * 1e3:.1f} ms")
    kiln_ask = kiln["fit_suggest_100_6d_seconds"]
    print(f"fit + ask with 100 observations in 6-D, wall clock: skopt {ask * 1e3:.1f} ms (median of 3), "
          f"kiln {kiln_ask * 1e3:.1f} ms (median of 5): {ask / kiln_ask:.1f}x faster")
    kiln_cpu = kiln.get("fit_suggest_100_6d_cpu_seconds")
    if kiln_cpu:
        print(f"same, CPU time (fair on a loaded machine): skopt {ask_cpu * 1e3:.1f} ms, "
              f"kiln {kiln_cpu * 1e3:.1f} ms: {ask_cpu / kiln_cpu:.1f}x faster")
    print(f"quality target (kiln median <= skopt median at 30 and 60 on every problem, below random): "
          f"{'met' if verdict else 'NOT met'}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"kiln": kiln, "skopt": sk, "skopt_ask_100_6d_seconds": ask,
                       "skopt_ask_100_6d_cpu_seconds": ask_cpu}, fh)


if __name__ == "__main__":
    main()
