#!/usr/bin/env python3
"""Cross-checks `kiln materials analyze --json` against pymatgen and SMACT.

    python3 scripts/materials_crosscheck.py [--list scripts/data/compounds.txt] [--kiln-bench]

Creates a temporary virtual environment with pymatgen and smact (or reuses the one named by
$KILN_XCHECK_VENV), builds the kiln binary, runs it on the compound list and compares:

  * molar mass: relative difference <= 2e-4 (Kiln uses current IUPAC abridged weights,
    pymatgen older conventional ones), plus how many are within 0.01 g/mol;
  * reduced formula: identical strings;
  * validity: Kiln's `valid` vs smact_validity(), on integer formulas (SMACT truncates
    fractional amounts, so agreement there is not meaningful and is reported separately).

Each disagreement is listed with its explanation. It then times pymatgen + SMACT doing the same
work on the same list; with --kiln-bench it also runs the criterion bench and prints the ratio.
Not part of the test suite (it needs the network for pip).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL_TOL = 2e-4
PER_FORMULA_LIMIT = 2.0


def ensure_venv():
    """Re-executes this script inside a venv that has pymatgen and smact."""
    try:
        import pymatgen.core  # noqa: F401
        import smact  # noqa: F401

        return
    except ImportError:
        pass
    venv = os.environ.get("KILN_XCHECK_VENV") or tempfile.mkdtemp(prefix="kiln-xcheck-")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    subprocess.check_call([py, "-m", "pip", "install", "-q", "pymatgen", "smact"])
    os.execv(py, [py, *sys.argv])


def pymatgen_formula(f):
    """Rewrites a formula for pymatgen, which rejects `·` and `1/3` and misreads `.5H2O`:
    adducts A·nB become A(B)n (with Kiln's rule for `.`), fractions become decimals."""
    f = re.sub(r"(\d+)/(\d+)", lambda m: f"{int(m.group(1)) / int(m.group(2)):.10f}", f)
    parts, start, i = [], 0, 0
    while i < len(f):
        ch = f[i]
        sep = ch in "·*•∙⋅"
        if ch == ".":
            before = re.search(r"(\d+)$", f[:i])
            after = f[i + 1 :]
            water = re.match(r"\d+H2O(?![a-z0-9])", after)
            sep = not (before and after[:1].isdigit()) or (water and before.group(1) != "0")
        if sep:
            parts.append(f[start:i].strip())
            start = i + 1
        i += 1
    parts.append(f[start:].strip())
    out = parts[0]
    for p in parts[1:]:
        m = re.match(r"^(\d+(?:\.\d+)?)?\s*(.*)$", p)
        out += f"({m.group(2)}){m.group(1) or ''}"
    return out


def kiln_binary():
    subprocess.check_call(["cargo", "build", "-q", "-p", "kiln"], cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "debug", "kiln")


def is_integer(amounts):
    return all(abs(v - round(v)) < 1e-9 for v in amounts.values())


def kiln_weights():
    """Kiln's atomic weights, read from the crate's data file."""
    import csv

    path = os.path.join(ROOT, "crates", "kiln-materials", "data", "elements.csv")
    with open(path) as fh:
        return {r["symbol"]: float(r["atomic_weight"]) for r in csv.DictReader(fh)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--list", default=os.path.join(ROOT, "scripts", "data", "compounds.txt"))
    ap.add_argument("--kiln-bench", action="store_true", help="also run the criterion bench")
    args = ap.parse_args()
    ensure_venv()

    import warnings

    warnings.filterwarnings("ignore")
    import importlib.metadata as md

    from pymatgen.core import Composition, Element
    from smact.screening import smact_validity

    formulas = [l.strip() for l in open(args.list) if l.strip() and not l.startswith("#")]
    kiln = kiln_binary()
    weights = kiln_weights()
    run = subprocess.run(
        [kiln, "materials", "analyze", "--json", "-"],
        input="\n".join(formulas) + "\n",
        capture_output=True,
        text=True,
    )
    results = [json.loads(l) for l in run.stdout.splitlines()]
    assert len(results) == len(formulas), (len(results), len(formulas))

    print(f"pymatgen {md.version('pymatgen')}, smact {md.version('smact')}, {len(formulas)} formulas")
    kiln_errors, pmg_errors = [], []
    mass_ok = mass_abs_ok = mass_n = 0
    red_ok = red_n = 0
    val_ok = val_n = 0
    frac_val_ok = frac_val_n = 0
    mass_bad, red_bad, val_bad, frac_val_bad = [], [], [], []
    abs_causes = {}

    for f, k in zip(formulas, results):
        if "error" in k:
            kiln_errors.append((f, k["error"]["message"]))
            continue
        try:
            c = Composition(pymatgen_formula(f))
        except Exception as e:  # noqa: BLE001
            pmg_errors.append((f, f"{type(e).__name__}: {e}"))
            continue
        pmg_amounts = {str(el): float(n) for el, n in c.get_el_amt_dict().items()}
        kiln_amounts = {el: float(n) for el, n in k["elements"].items()}
        if set(pmg_amounts) != set(kiln_amounts) or any(
            abs(pmg_amounts[e] - kiln_amounts[e]) > 1e-6 for e in pmg_amounts
        ):
            pmg_errors.append((f, f"pymatgen reads {c.formula}, Kiln {kiln_amounts}"))
            continue

        mass_n += 1
        pm = float(c.weight)
        rel = abs(k["molar_mass"] - pm) / pm
        mass_abs_ok += abs(k["molar_mass"] - pm) <= 0.01
        if abs(k["molar_mass"] - pm) > 0.01:
            cause = max(
                kiln_amounts,
                key=lambda e: kiln_amounts[e] * abs(weights[e] - float(Element(e).atomic_mass)),
            )
            abs_causes[cause] = abs_causes.get(cause, 0) + 1
        if rel <= REL_TOL:
            mass_ok += 1
        else:
            worst = max(
                kiln_amounts,
                key=lambda e: kiln_amounts[e] * abs(weights[e] - float(Element(e).atomic_mass)),
            )
            mass_bad.append(
                (f, k["molar_mass"], pm, rel, worst, weights[worst], float(Element(worst).atomic_mass))
            )

        red_n += 1
        if k["reduced_formula"] == c.reduced_formula:
            red_ok += 1
        else:
            red_bad.append((f, k["reduced_formula"], c.reduced_formula))

        sv = bool(smact_validity(c))
        if is_integer(kiln_amounts):
            val_n += 1
            if sv == k["valid"]:
                val_ok += 1
            else:
                val_bad.append((f, k["valid"], sv, k["reasons"]))
        else:
            frac_val_n += 1
            if sv == k["valid"]:
                frac_val_ok += 1
            else:
                frac_val_bad.append((f, k["valid"], sv, k["reasons"]))

    def pct(a, b):
        return f"{a}/{b} ({100.0 * a / b:.1f}%)" if b else "0/0"

    print("\n== agreement")
    print(f"molar mass within {REL_TOL:g} relative: {pct(mass_ok, mass_n)}")
    print(f"molar mass within 0.01 g/mol:       {pct(mass_abs_ok, mass_n)}")
    causes = ", ".join(f"{e} {n}" for e, n in sorted(abs_causes.items(), key=lambda kv: -kv[1]))
    print(f"  beyond 0.01 g/mol, element whose weight differs most (IUPAC vs pymatgen): {causes}")
    print(f"reduced formula identical:          {pct(red_ok, red_n)}")
    print(f"validity = smact_validity (integer):    {pct(val_ok, val_n)}")
    print(f"validity = smact_validity (fractional): {pct(frac_val_ok, frac_val_n)} (not a target)")

    print(f"\n== inputs Kiln rejects ({len(kiln_errors)})")
    for f, m in kiln_errors:
        print(f"  {f}: {m}")
    print(f"\n== inputs pymatgen rejects or reads differently ({len(pmg_errors)})")
    for f, m in pmg_errors:
        print(f"  {f}: {m}")
    print(f"\n== molar mass disagreements ({len(mass_bad)})")
    for f, km, pm, rel, el, wk, wp in mass_bad:
        print(
            f"  {f}: kiln {km:.4f} pymatgen {pm:.4f} ({rel:.1e}); {el}: IUPAC abridged {wk} "
            f"vs pymatgen {wp} ({abs(wk - wp) / wp:.1e})"
        )
    print(f"\n== reduced formula disagreements ({len(red_bad)})")
    for f, kr, pr in red_bad:
        print(f"  {f}: kiln {kr} pymatgen {pr}")
    print(f"\n== validity disagreements on integer formulas ({len(val_bad)})")
    for f, kv, sv, reasons in val_bad:
        print(f"  {f}: kiln {kv} smact {sv}: {'; '.join(reasons)}")
    print(f"\n== validity disagreements on fractional formulas ({len(frac_val_bad)})")
    for f, kv, sv, reasons in frac_val_bad:
        print(f"  {f}: kiln {kv} smact {sv} (smact truncates amounts with int()): {'; '.join(reasons)}")

    # Similar materials: pymatgen's SubstitutionPredictor (to_this_composition=True is
    # p(new | original), Kiln's definition), filtered by smact_validity, vs `kiln similar`.
    from pymatgen.analysis.structure_prediction.substitution_probability import (
        SubstitutionPredictor,
    )
    from pymatgen.core import Species

    print("\n== similar materials (top 10) vs pymatgen SubstitutionPredictor + smact_validity")
    predictor = SubstitutionPredictor(threshold=1e-3)
    for f, states in [
        ("LiFePO4", {"Li": 1, "Fe": 2, "P": 5, "O": -2}),
        ("BaTiO3", {"Ba": 2, "Ti": 4, "O": -2}),
        ("NaCl", {"Na": 1, "Cl": -1}),
        ("Fe2O3", {"Fe": 3, "O": -2}),
    ]:
        comp = Composition(f)
        ions = Composition({Species(e, states[e]): comp[e] for e in states})
        want = []
        for p in sorted(
            predictor.composition_prediction(ions, to_this_composition=True),
            key=lambda p: -p["probability"],
        ):
            c = Composition({new.symbol: ions[old] for new, old in p["substitutions"].items()})
            name = c.reduced_formula
            if name != comp.reduced_formula and name not in want and smact_validity(c):
                want.append(name)
        out = subprocess.run(
            [kiln, "materials", "similar", "--json", "--limit", "10", f], capture_output=True, text=True
        )
        got = [c["formula"] for c in json.loads(out.stdout)["candidates"]]
        verdict = "identical" if got == want[:10] else f"differs: pymatgen {want[:10]}"
        print(f"  {f}: kiln {got} -> {verdict}")

    # Throughput: pymatgen + SMACT doing the same work as `kiln_materials::analyze`.
    def work(f):
        c = Composition(pymatgen_formula(f))
        c.reduced_formula, c.hill_formula, c.anonymized_formula, c.chemical_system, c.weight
        for el in c:
            c.get_atomic_fraction(el), c.get_wt_fraction(el)
        if all(float(n).is_integer() for n in c.values()):
            c.oxi_state_guesses()
        smact_validity(c)

    # pymatgen's oxi_state_guesses enumerates every multiset of states, which explodes on
    # large cells (Fe947O1000, Er761Co239): formulas over PER_FORMULA_LIMIT seconds are left
    # out of the timing (this favours pymatgen; Kiln's bench keeps the whole list).
    import signal

    class Timeout(Exception):
        pass

    def on_alarm(*_):
        raise Timeout()

    signal.signal(signal.SIGALRM, on_alarm)
    ok, timed_out = [], []
    for f in formulas:
        signal.setitimer(signal.ITIMER_REAL, PER_FORMULA_LIMIT)
        try:
            work(f)
            ok.append(f)
        except Timeout:
            timed_out.append(f)
        except Exception:  # noqa: BLE001
            pass
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    rounds = 3
    t0 = time.perf_counter()
    for _ in range(rounds):
        for f in ok:
            work(f)
    dt = time.perf_counter() - t0
    py_rate = rounds * len(ok) / dt
    print(f"\n== throughput\npymatgen + smact: {py_rate:.0f} formulas/s ({len(ok)} formulas x {rounds})")
    print(f"left out after {PER_FORMULA_LIMIT} s each ({len(timed_out)}): {' '.join(timed_out)}")

    if args.kiln_bench:
        bench = subprocess.run(
            ["cargo", "bench", "-p", "kiln-materials", "--bench", "analyze", "--", "analyze_list"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        m = re.search(r"thrpt:\s+\[\S+ \S+ (\S+) (\S+)", bench.stdout)
        if m:
            scale = {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6}[m.group(2)]
            rust_rate = float(m.group(1)) * scale
            print(f"kiln (criterion, analyze_list): {rust_rate:.0f} formulas/s")
            print(f"ratio: {rust_rate / py_rate:.0f}x")
        else:
            print(bench.stdout[-2000:], bench.stderr[-2000:])


if __name__ == "__main__":
    main()
