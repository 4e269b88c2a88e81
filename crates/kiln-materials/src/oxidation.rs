//! Oxidation-state guesses ranked by ICSD occurrence, mixed valence included (pymatgen-like).
//!
//! For each element, every multiset of its ICSD oxidation states over its sites is a candidate;
//! the best-scoring multiset for each total charge is found by dynamic programming (pymatgen
//! enumerates them all). Combinations of per-element totals that sum to zero are ranked by the
//! summed occurrence counts of the states used, as `Composition.oxi_state_guesses` does.

use serde::Serialize;

use crate::amount::gcd;
use crate::element::Element;
use crate::parse::Formula;

/// Most sites of one element considered after reduction (bounds the dynamic programme).
pub const MAX_SITES_PER_ELEMENT: u64 = 240;
/// Most element-total combinations examined before the search stops.
const MAX_COMBINATIONS: usize = 200_000;

/// How many sites of an element take one oxidation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SiteCount {
    pub state: i8,
    pub count: u64,
}

/// One element's oxidation states in a guess.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ElementOxidation {
    pub element: Element,
    /// Mean oxidation state over the element's sites (e.g. 8/3 for Fe in Fe3O4).
    pub average: f64,
    /// The states used, with site counts in the integer formula unit `sites_formula`.
    pub sites: Vec<SiteCount>,
}

/// A charge-neutral assignment of oxidation states.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OxidationGuess {
    pub elements: Vec<ElementOxidation>,
    /// Sum over sites of the ICSD occurrence count of the state used (higher is likelier).
    pub score: f64,
    /// Whether some element takes more than one state.
    pub mixed_valence: bool,
}

impl OxidationGuess {
    /// Returns the single state of `element`, or `None` if absent or mixed valence.
    pub fn single_state(&self, element: Element) -> Option<i8> {
        let e = self.elements.iter().find(|e| e.element == element)?;
        match e.sites.as_slice() {
            [only] => Some(only.state),
            _ => None,
        }
    }
}

/// Returns integer site counts proportional to the formula's amounts, in lowest terms:
/// fractional amounts are scaled by the lcm of their denominators (`Li1/3…` → ×3).
/// `None` when the scaled counts would overflow.
pub fn integer_counts(formula: &Formula) -> Option<Vec<u64>> {
    let mut lcm: u64 = 1;
    for (_, a) in formula.elements() {
        lcm = (lcm / gcd(lcm, a.denom())).checked_mul(a.denom())?;
    }
    let counts: Vec<u64> = formula
        .elements()
        .iter()
        .map(|(_, a)| a.numer().checked_mul(lcm / a.denom()))
        .collect::<Option<_>>()?;
    let g = counts.iter().fold(0, |g, &c| gcd(g, c)).max(1);
    Some(counts.into_iter().map(|c| c / g).collect())
}

/// For one element: the best score for each reachable total charge, and the dynamic
/// programme's back-pointers to recover the state counts of the totals actually used.
struct ElementTotals {
    min_total: i64,
    /// Indexed by `total - min_total`; `None` where unreachable.
    best: Vec<Option<f64>>,
    states: &'static [i8],
    lo: i64,
    n: usize,
    width: usize,
    /// `back[j * width + t]`: index of the state added last to reach `t` with `j` sites.
    back: Vec<u8>,
}

impl ElementTotals {
    /// Returns the state counts of the best multiset with total `min_total + t`.
    fn sites(&self, t: usize) -> Vec<SiteCount> {
        let mut counts = vec![0u64; self.states.len()];
        let mut u = t;
        for j in (1..=self.n).rev() {
            let k = usize::from(self.back[j * self.width + u]);
            counts[k] += 1;
            u -= (i64::from(self.states[k]) - self.lo) as usize;
        }
        let mut sites: Vec<SiteCount> = self
            .states
            .iter()
            .zip(counts)
            .filter(|&(_, c)| c > 0)
            .map(|(&state, count)| SiteCount { state, count })
            .collect();
        sites.sort_by_key(|s| s.state);
        sites
    }
}

fn element_totals(element: Element, n: u64) -> Option<ElementTotals> {
    let states = element.icsd_oxidation_states();
    let lo = i64::from(*states.iter().min()?);
    let hi = i64::from(*states.iter().max()?);
    let n_us = usize::try_from(n).ok()?;
    let width = usize::try_from((hi - lo) * i64::try_from(n).ok()?).ok()? + 1;
    let priors: Vec<f64> = states.iter().map(|&s| element.oxidation_prior(s)).collect();
    // dp[t] over j sites: best score with charges summing to j*lo + t; two rolling rows.
    let mut prev = vec![f64::NEG_INFINITY; width];
    let mut cur = vec![f64::NEG_INFINITY; width];
    let mut back = vec![u8::MAX; (n_us + 1) * width];
    prev[0] = 0.0;
    for j in 1..=n_us {
        cur.fill(f64::NEG_INFINITY);
        let reach = (hi - lo) as usize * (j - 1);
        for (t, &base) in prev.iter().enumerate().take(reach + 1) {
            if base == f64::NEG_INFINITY {
                continue;
            }
            for (k, &s) in states.iter().enumerate() {
                let u = t + (i64::from(s) - lo) as usize;
                let score = base + priors[k];
                if score > cur[u] {
                    cur[u] = score;
                    back[j * width + u] = k as u8;
                }
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let best = prev
        .into_iter()
        .map(|s| (s > f64::NEG_INFINITY).then_some(s))
        .collect();
    Some(ElementTotals {
        min_total: lo * i64::try_from(n).ok()?,
        best,
        states,
        lo,
        n: n_us,
        width,
        back,
    })
}

/// Returns up to `max` charge-neutral oxidation-state assignments, best first.
///
/// Empty when an element has no known states, when no assignment balances, or when the
/// formula has more than [`MAX_SITES_PER_ELEMENT`] sites of one element after reduction.
pub fn oxidation_state_guesses(formula: &Formula, max: usize) -> Vec<OxidationGuess> {
    let Some(counts) = integer_counts(formula) else {
        return Vec::new();
    };
    if counts.iter().any(|&c| c > MAX_SITES_PER_ELEMENT) {
        return Vec::new();
    }
    let mut totals = Vec::with_capacity(counts.len());
    for ((el, _), &n) in formula.elements().iter().zip(&counts) {
        match element_totals(*el, n) {
            Some(t) => totals.push(t),
            None => return Vec::new(),
        }
    }
    // Suffix bounds of reachable charge, to prune the search.
    let k = totals.len();
    let mut lo = vec![0i64; k + 1];
    let mut hi = vec![0i64; k + 1];
    for i in (0..k).rev() {
        lo[i] = lo[i + 1] + totals[i].min_total;
        hi[i] = hi[i + 1] + totals[i].min_total + totals[i].best.len() as i64 - 1;
    }
    if max == 0 {
        return Vec::new();
    }
    // Suffix sums of each element's best score: an upper bound on what the rest can add.
    let mut best_rest = vec![0.0f64; k + 1];
    for i in (0..k).rev() {
        let top = totals[i]
            .best
            .iter()
            .flatten()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        best_rest[i] = best_rest[i + 1] + top;
    }
    let mut s = Search {
        totals: &totals,
        lo: &lo,
        hi: &hi,
        best_rest: &best_rest,
        max,
        choice: vec![0usize; k],
        found: Vec::with_capacity(max + 1),
        budget: MAX_COMBINATIONS,
    };
    s.run(0, 0, 0.0);
    s.found
        .into_iter()
        .map(|(score, choice)| {
            let elements: Vec<ElementOxidation> = formula
                .elements()
                .iter()
                .zip(&counts)
                .zip(totals.iter().zip(&choice))
                .map(|(((element, _), &n), (t, &c))| {
                    let sites = t.sites(c);
                    let total = t.min_total + c as i64;
                    ElementOxidation {
                        element: *element,
                        average: total as f64 / n as f64,
                        sites,
                    }
                })
                .collect();
            let mixed_valence = elements.iter().any(|e| e.sites.len() > 1);
            OxidationGuess {
                elements,
                score,
                mixed_valence,
            }
        })
        .collect()
}

/// Branch-and-bound over one total per element, keeping the `max` best solutions.
struct Search<'a> {
    totals: &'a [ElementTotals],
    lo: &'a [i64],
    hi: &'a [i64],
    best_rest: &'a [f64],
    max: usize,
    choice: Vec<usize>,
    /// Best first, at most `max` long.
    found: Vec<(f64, Vec<usize>)>,
    budget: usize,
}

impl Search<'_> {
    /// Whether a partial solution with `bound` as its best possible score can still place.
    fn can_place(&self, bound: f64) -> bool {
        self.found.len() < self.max || self.found.last().is_some_and(|(worst, _)| bound > *worst)
    }

    fn keep(&mut self, score: f64) {
        // Ties keep enumeration order, like pymatgen's stable sort.
        let at = self.found.partition_point(|(s, _)| *s >= score);
        self.found.insert(at, (score, self.choice.clone()));
        self.found.truncate(self.max);
    }

    fn run(&mut self, i: usize, charge: i64, score: f64) {
        if self.budget == 0 || !self.can_place(score + self.best_rest[i]) {
            return;
        }
        self.budget -= 1;
        let t = &self.totals[i];
        if i + 1 == self.totals.len() {
            // The last element's total is forced: look it up.
            let idx = -charge - t.min_total;
            if let Some(Some(s)) = usize::try_from(idx).ok().and_then(|u| t.best.get(u)) {
                let total = score + s;
                if self.can_place(total) {
                    self.choice[i] = idx as usize;
                    self.keep(total);
                }
            }
            return;
        }
        for c in 0..t.best.len() {
            let Some(s) = t.best[c] else { continue };
            let q = charge + t.min_total + c as i64;
            if q + self.lo[i + 1] > 0 || q + self.hi[i + 1] < 0 {
                continue;
            }
            self.choice[i] = c;
            self.run(i + 1, q, score + s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn best(s: &str) -> Vec<(String, f64)> {
        let f = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let g = oxidation_state_guesses(&f, 1);
        g.first()
            .map(|g| {
                g.elements
                    .iter()
                    .map(|e| (e.element.to_string(), e.average))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn assert_states(s: &str, want: &[(&str, f64)]) {
        let got = best(s);
        assert_eq!(got.len(), want.len(), "{s}: {got:?}");
        for ((ge, ga), (we, wa)) in got.iter().zip(want) {
            assert_eq!(ge, we);
            assert!((ga - wa).abs() < 1e-9, "{s}: {ge} {ga} != {wa}");
        }
    }

    #[test]
    fn common_compounds() {
        assert_states(
            "LiFePO4",
            &[("Li", 1.0), ("Fe", 2.0), ("P", 5.0), ("O", -2.0)],
        );
        assert_states("Fe2O3", &[("Fe", 3.0), ("O", -2.0)]);
        assert_states(
            "CuSO4·5H2O",
            &[("Cu", 2.0), ("S", 6.0), ("O", -2.0), ("H", 1.0)],
        );
        assert_states(
            "Ca10(PO4)6(OH)2",
            &[("Ca", 2.0), ("P", 5.0), ("O", -2.0), ("H", 1.0)],
        );
    }

    #[test]
    fn ferrocyanide_ranks_like_pymatgen() {
        // pymatgen 2026.10 ranks Fe3+ with mixed-valence carbon first, Fe2+/C2+ second.
        assert_states(
            "K4[Fe(CN)6]",
            &[("K", 1.0), ("Fe", 3.0), ("C", 11.0 / 6.0), ("N", -3.0)],
        );
        let f = parse("K4[Fe(CN)6]").ok();
        let g = f
            .map(|f| oxidation_state_guesses(&f, 3))
            .unwrap_or_default();
        let fe2 = g.iter().position(|g| {
            g.elements
                .iter()
                .map(|e| e.average)
                .eq([1.0, 2.0, 2.0, -3.0].iter().copied())
        });
        assert_eq!(fe2, Some(1), "{g:?}");
    }

    #[test]
    fn magnetite_is_mixed_valence() {
        let f = parse("Fe3O4").ok();
        let g = f
            .map(|f| oxidation_state_guesses(&f, 3))
            .unwrap_or_default();
        let first = g.first();
        assert!(first.is_some_and(|g| g.mixed_valence));
        let fe = first.and_then(|g| g.elements.first());
        let sites = fe.map(|e| e.sites.clone()).unwrap_or_default();
        assert_eq!(
            sites,
            vec![
                SiteCount { state: 2, count: 1 },
                SiteCount { state: 3, count: 2 }
            ]
        );
        assert!(fe.is_some_and(|e| (e.average - 8.0 / 3.0).abs() < 1e-12));
    }

    #[test]
    fn fractional_formulas_are_scaled_to_integers() {
        // Li3NiMnCoO6 balances with Ni2+, Mn4+, Co3+ or all +3; the averages must balance.
        let f = parse("LiNi1/3Mn1/3Co1/3O2").ok();
        let g = f
            .as_ref()
            .map(|f| oxidation_state_guesses(f, 1))
            .unwrap_or_default();
        let total: f64 = g
            .first()
            .map(|g| {
                g.elements
                    .iter()
                    .zip(f.iter().flat_map(|f| f.elements()))
                    .map(|(e, (_, a))| e.average * a.to_f64())
                    .sum()
            })
            .unwrap_or(f64::NAN);
        assert!(total.abs() < 1e-9, "{g:?}");
        assert_eq!(
            f.and_then(|f| integer_counts(&f)),
            Some(vec![3, 1, 1, 1, 6])
        );
    }

    #[test]
    fn unbalanceable_and_stateless_give_nothing() {
        assert!(best("NaNe").is_empty());
        assert!(best("Na2Cl").is_empty());
    }
}
