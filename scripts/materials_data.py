#!/usr/bin/env python3
"""Regenerates crates/kiln-materials/data/ from pymatgen and SMACT (both MIT licensed).

Run inside a virtual environment with `pip install pymatgen smact`:

    python3 -m venv /tmp/venv-mat && /tmp/venv-mat/bin/pip install pymatgen smact
    /tmp/venv-mat/bin/python scripts/materials_data.py

Standard atomic weights are typed in below from the IUPAC/CIAAW abridged table
(2021, with the 2024 revision of zirconium); everything else is read from the packages.
"""
import csv
import gzip
import importlib.metadata as md
import json
import os
import sys

import pymatgen.core
import smact
import smact.screening as scr
from monty.serialization import loadfn

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "kiln-materials", "data")

# IUPAC/CIAAW abridged standard atomic weights (five significant figures), 2021 table,
# Zr revised in 2024. Elements without a standard atomic weight: mass number of the
# longest-lived isotope, as IUPAC prints in brackets.
ABRIDGED = """
H 1.0080 He 4.0026 Li 6.94 Be 9.0122 B 10.81 C 12.011 N 14.007 O 15.999 F 18.998 Ne 20.180
Na 22.990 Mg 24.305 Al 26.982 Si 28.085 P 30.974 S 32.06 Cl 35.45 Ar 39.95 K 39.098 Ca 40.078
Sc 44.956 Ti 47.867 V 50.942 Cr 51.996 Mn 54.938 Fe 55.845 Co 58.933 Ni 58.693 Cu 63.546
Zn 65.38 Ga 69.723 Ge 72.630 As 74.922 Se 78.971 Br 79.904 Kr 83.798 Rb 85.468 Sr 87.62
Y 88.906 Zr 91.222 Nb 92.906 Mo 95.95 Tc 97 Ru 101.07 Rh 102.91 Pd 106.42 Ag 107.87 Cd 112.41
In 114.82 Sn 118.71 Sb 121.76 Te 127.60 I 126.90 Xe 131.29 Cs 132.91 Ba 137.33 La 138.91
Ce 140.12 Pr 140.91 Nd 144.24 Pm 145 Sm 150.36 Eu 151.96 Gd 157.25 Tb 158.93 Dy 162.50
Ho 164.93 Er 167.26 Tm 168.93 Yb 173.05 Lu 174.97 Hf 178.49 Ta 180.95 W 183.84 Re 186.21
Os 190.23 Ir 192.22 Pt 195.08 Au 196.97 Hg 200.59 Tl 204.38 Pb 207.2 Bi 208.98 Po 209
At 210 Rn 222 Fr 223 Ra 226 Ac 227 Th 232.04 Pa 231.04 U 238.03 Np 237 Pu 244 Am 243 Cm 247
Bk 247 Cf 251 Es 252 Fm 257 Md 258 No 259 Lr 262
""".split()
WEIGHTS = dict(zip(ABRIDGED[::2], ABRIDGED[1::2]))

SITE = os.path.dirname(pymatgen.core.__file__)
SMACT_DATA = os.path.join(os.path.dirname(smact.__file__), "data")


def states(seq):
    return " ".join(str(int(s)) for s in seq)


def main():
    table = json.load(gzip.open(os.path.join(SITE, "periodic_table.json.gz")))
    smact_ox = scr._get_icsd24_oxidation_dict(include_zero=False, consensus=3, commonality="low")
    cov = {}
    with open(os.path.join(SMACT_DATA, "Covalent_radii.csv")) as fh:
        for row in csv.DictReader(fh):
            cov.setdefault(row["Symbol"].split("(")[0], row["Covalent Radius (pm)"])
    smact_x = {}
    for sym in WEIGHTS:
        try:
            x = smact.Element(sym).pauling_eneg
        except Exception:  # noqa: BLE001 - SMACT raises for elements it does not know
            x = None
        smact_x[sym] = "" if x is None else repr(float(x))

    rows = []
    radii = []
    for z, sym in enumerate(WEIGHTS, start=1):
        el = table[sym]
        assert el["Atomic no"] == z, sym
        x = el.get("X")
        pmg_x = "" if x is None or (isinstance(x, float) and x != x) else repr(float(x))
        rows.append(
            [
                z,
                sym,
                el["Name"],
                WEIGHTS[sym],
                pmg_x,
                smact_x[sym],
                cov.get(sym, ""),
                1 if sym in smact.metals else 0,
                states(smact_ox.get(sym, [])),
                states(el.get("ICSD oxidation states", [])),
                states(el.get("Common oxidation states", [])),
                states(el.get("Oxidation states", [])),
            ]
        )
        for charge, by_cn in sorted((el.get("Shannon radii") or {}).items(), key=lambda kv: int(kv[0] or 0)):
            if not charge.lstrip("-").isdigit():
                continue
            # Prefer octahedral (VI) high-spin, then the nearest coordination number.
            order = ["VI", "VII", "V", "VIII", "IV", "IX", "IVSQ", "X", "III", "XII", "XI", "II", "XIV"]
            cn = next((c for c in order if c in by_cn), None) or sorted(by_cn)[0]
            spins = by_cn[cn]
            spin = "High Spin" if "High Spin" in spins else sorted(spins)[0]
            radii.append([sym, int(charge), cn, spins[spin]["ionic_radius"]])

    with open(os.path.join(OUT, "elements.csv"), "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(
            [
                "z", "symbol", "name", "atomic_weight", "pauling_x", "pauling_x_smact",
                "covalent_radius_pm", "smact_metal", "ox_smact", "ox_icsd", "ox_common", "ox_all",
            ]
        )
        w.writerows(rows)

    with open(os.path.join(OUT, "ionic_radii.csv"), "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["symbol", "charge", "coordination", "ionic_radius_angstrom"])
        w.writerows(radii)

    occ = loadfn(os.path.join(SITE, "icsd_bv.yaml"))["occurrence"]
    with open(os.path.join(OUT, "oxidation_priors.csv"), "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["species", "occurrences"])
        for sp, n in sorted(occ.items()):
            w.writerow([sp, n])

    lam = json.load(open(os.path.join(SMACT_DATA, "lambda.json")))
    with open(os.path.join(OUT, "substitution_lambda.csv"), "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["species_a", "species_b", "lambda"])
        for a, b, v in lam:
            if "D1+" in (a, b):
                continue
            w.writerow([a, b, v])

    print(
        f"pymatgen {md.version('pymatgen')}, smact {md.version('smact')}: "
        f"{len(rows)} elements, {len(radii)} radii, {len(occ)} priors, {len(lam)} lambdas",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
