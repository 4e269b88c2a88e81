//! Similar materials by ionic substitution (Hautier et al., Inorg. Chem. 50, 656, 2011).
//!
//! The λ table (pymatgen/SMACT `lambda.json`, MIT) scores pairs of species; unseen pairs get
//! α = −5. The probability that species `s2` in the input is replaced by `s1` is
//! `p(s1 | s2) = e^λ(s1,s2) / Σ_s e^λ(s,s2)`, a candidate's probability is the product over
//! its sites, and candidates below 1e-3 are pruned (pymatgen's `SubstitutionPredictor`
//! defaults). Candidates must stay charge-neutral, keep distinct species on distinct sites, and
//! pass the validity screen.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Serialize;

use crate::composition::reduced_formula;
use crate::data::{LAMBDA_CSV, parse_species};
use crate::element::{Element, species_label};
use crate::error::{Error, Result};
use crate::oxidation::oxidation_state_guesses;
use crate::parse::Formula;
use crate::validity::validate;

/// λ for species pairs never seen substituting.
const ALPHA: f64 = -5.0;
/// Candidates less likely than this are dropped (pymatgen's default threshold).
pub const THRESHOLD: f64 = 1e-3;
/// Search nodes visited at most per query.
const NODE_BUDGET: usize = 200_000;

type Species = (Element, i8);

struct Table {
    species: Vec<Species>,
    index: HashMap<Species, usize>,
    /// For each target species (replaced), the candidates `(replacing species, p)` sorted by
    /// decreasing conditional probability, down to `THRESHOLD`.
    replacements: Vec<Vec<(usize, f64)>>,
}

static TABLE: LazyLock<Table> = LazyLock::new(load);

fn load() -> Table {
    let mut species: Vec<Species> = Vec::new();
    let mut index: HashMap<Species, usize> = HashMap::new();
    let mut pairs: Vec<(usize, usize, f64)> = Vec::new();
    let mut intern = |sp: Species, species: &mut Vec<Species>| {
        *index.entry(sp).or_insert_with(|| {
            species.push(sp);
            species.len() - 1
        })
    };
    for line in LAMBDA_CSV.lines().skip(1) {
        let mut f = line.split(',');
        let (Some(a), Some(b), Some(l)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let parsed = |label: &str| {
            let (sym, charge) = parse_species(label)?;
            Some((Element::from_symbol(sym)?, charge))
        };
        let (Some(a), Some(b), Ok(l)) = (parsed(a), parsed(b), l.parse::<f64>()) else {
            continue;
        };
        let ia = intern(a, &mut species);
        let ib = intern(b, &mut species);
        pairs.push((ia, ib, l));
    }
    let n = species.len();
    let mut lambda = vec![ALPHA; n * n];
    for (a, b, l) in pairs {
        lambda[a * n + b] = l;
        lambda[b * n + a] = l;
    }
    // px(s2) = Σ_s e^λ(s, s2), as pymatgen's SubstitutionProbability computes it.
    let px: Vec<f64> = (0..n)
        .map(|j| (0..n).map(|i| lambda[i * n + j].exp()).sum())
        .collect();
    let replacements = (0..n)
        .map(|j| {
            let mut v: Vec<(usize, f64)> = (0..n)
                .map(|i| (i, lambda[i * n + j].exp() / px[j]))
                .filter(|&(_, p)| p >= THRESHOLD)
                .collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1));
            v
        })
        .collect();
    let index = species.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    Table {
        species,
        index,
        replacements,
    }
}

/// Returns `p(replacement | original)`, the probability that `original` is replaced by
/// `replacement` in a known structure type (0 below [`THRESHOLD`]); `None` when either species
/// is not in the table.
pub fn substitution_probability(replacement: Species, original: Species) -> Option<f64> {
    let t = &*TABLE;
    let (i, j) = (*t.index.get(&replacement)?, *t.index.get(&original)?);
    // Pairs below the threshold are not stored: they never produce candidates.
    Some(
        t.replacements[j]
            .iter()
            .find(|(k, _)| *k == i)
            .map_or(0.0, |&(_, p)| p),
    )
}

/// One site's change in a candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Substitution {
    pub from: String,
    pub to: String,
    pub probability: f64,
    /// Shannon ionic radii (Å) of the two species, where tabulated.
    pub radius_from: Option<f64>,
    pub radius_to: Option<f64>,
}

/// A substitution candidate that passed the validity screen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub formula: String,
    pub probability: f64,
    pub substitutions: Vec<Substitution>,
}

struct Query<'a> {
    sites: &'a [Option<usize>],
    /// The input's oxidation state on each site.
    states: &'a [i8],
    charges: Vec<i64>,
    counts: &'a [u64],
    best_rest: Vec<f64>,
    pick: Vec<usize>,
    found: Vec<(f64, Vec<usize>)>,
    budget: usize,
}

/// Returns up to `limit` substituted compositions, most probable first.
///
/// The input's oxidation states are the best single-valence guess; species missing from the
/// λ table stay in place. Errors when the formula has no single-valence assignment.
pub fn similar(formula: &Formula, limit: usize) -> Result<Vec<Candidate>> {
    let guesses = oxidation_state_guesses(formula, 8);
    let states: Vec<i8> = guesses
        .iter()
        .find_map(|g| {
            formula
                .elements()
                .iter()
                .map(|(e, _)| g.single_state(*e))
                .collect()
        })
        .ok_or_else(|| Error::NoOxidationStates {
            formula: formula.text().to_owned(),
        })?;
    let counts =
        crate::oxidation::integer_counts(formula).ok_or_else(|| Error::NoOxidationStates {
            formula: formula.text().to_owned(),
        })?;
    let t = &*TABLE;
    let originals: Vec<Species> = formula
        .elements()
        .iter()
        .map(|(e, _)| *e)
        .zip(states.iter().copied())
        .collect();
    let sites: Vec<Option<usize>> = originals
        .iter()
        .map(|sp| t.index.get(sp).copied())
        .collect();
    let best: Vec<f64> = sites
        .iter()
        .map(|s| {
            s.and_then(|j| t.replacements[j].first().map(|r| r.1))
                .unwrap_or(1.0)
        })
        .collect();
    let mut best_rest = vec![1.0; best.len() + 1];
    for i in (0..best.len()).rev() {
        best_rest[i] = best_rest[i + 1] * best[i];
    }
    let mut q = Query {
        sites: &sites,
        states: &states,
        charges: t.species.iter().map(|s| i64::from(s.1)).collect(),
        counts: &counts,
        best_rest,
        pick: vec![usize::MAX; sites.len()],
        found: Vec::new(),
        budget: NODE_BUDGET,
    };
    q.run(0, 1.0, 0);
    q.found.sort_by(|a, b| b.0.total_cmp(&a.0));

    let mut out: Vec<Candidate> = Vec::new();
    for (p, pick) in q.found {
        if out.len() >= limit {
            break;
        }
        let is_identity = pick
            .iter()
            .zip(&sites)
            .all(|(k, s)| s.is_none_or(|j| *k == j));
        if is_identity {
            continue;
        }
        let amounts: Vec<(Element, crate::Amount)> = pick
            .iter()
            .zip(formula.elements())
            .zip(&sites)
            .map(|((&k, &(el, a)), s)| (if s.is_some() { t.species[k].0 } else { el }, a))
            .collect();
        let Some(candidate) = Formula::from_amounts(String::new(), &amounts) else {
            continue;
        };
        let (name, _) = reduced_formula(&candidate);
        if out.iter().any(|c| c.formula == name) || !validate(&candidate).valid {
            continue;
        }
        let substitutions = pick
            .iter()
            .zip(&originals)
            .zip(&sites)
            .filter_map(|((&k, &orig), s)| {
                let j = (*s)?;
                (k != j).then(|| {
                    let to = t.species[k];
                    Substitution {
                        from: species_label(orig.0, orig.1),
                        to: species_label(to.0, to.1),
                        probability: t.replacements[j]
                            .iter()
                            .find(|r| r.0 == k)
                            .map_or(0.0, |r| r.1),
                        radius_from: orig.0.ionic_radius(orig.1),
                        radius_to: to.0.ionic_radius(to.1),
                    }
                })
            })
            .collect();
        out.push(Candidate {
            formula: name,
            probability: p,
            substitutions,
        });
    }
    Ok(out)
}

impl Query<'_> {
    fn run(&mut self, i: usize, p: f64, charge: i64) {
        if self.budget == 0 || p * self.best_rest[i] < THRESHOLD {
            return;
        }
        self.budget -= 1;
        if i == self.sites.len() {
            let chosen: Vec<usize> = self
                .pick
                .iter()
                .zip(self.sites)
                .filter_map(|(k, s)| s.map(|_| *k))
                .collect();
            let distinct = chosen
                .iter()
                .enumerate()
                .all(|(a, x)| !chosen[..a].contains(x));
            if charge == 0 && distinct {
                self.found.push((p, self.pick.clone()));
            }
            return;
        }
        let c = self.counts[i] as i64;
        match self.sites[i] {
            None => {
                // Not in the table: the site keeps its species and charge.
                self.pick[i] = usize::MAX;
                self.run(i + 1, p, charge + c * i64::from(self.states[i]));
            }
            Some(j) => {
                for r in 0..TABLE.replacements[j].len() {
                    let (k, pk) = TABLE.replacements[j][r];
                    if p * pk * self.best_rest[i + 1] < THRESHOLD {
                        break;
                    }
                    self.pick[i] = k;
                    self.run(i + 1, p * pk, charge + c * self.charges[k]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn similar_to(s: &str, limit: usize) -> Vec<Candidate> {
        let f = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        similar(&f, limit).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn olivine_family_is_near_the_top_for_lifepo4() {
        let c = similar_to("LiFePO4", 15);
        let names: Vec<&str> = c.iter().map(|c| c.formula.as_str()).collect();
        for want in ["LiMnPO4", "LiCoPO4", "LiNiPO4", "NaFePO4"] {
            let pos = names.iter().position(|n| *n == want);
            assert!(
                pos.is_some_and(|p| p < 10),
                "{want} not in the top 10: {names:?}"
            );
        }
        assert!(!names.contains(&"LiFePO4"));
        assert!(c.windows(2).all(|w| w[0].probability >= w[1].probability));
    }

    #[test]
    fn candidates_are_charge_neutral_and_valid() {
        for cand in similar_to("BaTiO3", 20) {
            let f = parse(&cand.formula).unwrap_or_else(|e| panic!("{}: {e}", cand.formula));
            assert!(validate(&f).valid, "{}", cand.formula);
            assert!(cand.probability >= THRESHOLD);
        }
    }

    #[test]
    fn probabilities_are_conditional_on_the_original() {
        let fe2 = (
            Element::from_symbol("Fe").unwrap_or_else(|| unreachable!()),
            2,
        );
        let mn2 = (
            Element::from_symbol("Mn").unwrap_or_else(|| unreachable!()),
            2,
        );
        let p = substitution_probability(mn2, fe2).unwrap_or(0.0);
        assert!(p > 0.01 && p < 1.0, "{p}");
        let total: f64 = TABLE.replacements[TABLE.index[&fe2]]
            .iter()
            .map(|r| r.1)
            .sum();
        assert!(total <= 1.0 + 1e-9);
    }

    #[test]
    fn species_outside_the_table_stay_in_place() {
        // Ra2+ is not in the λ table; only the other sites may change.
        let c = similar_to("RaBr2", 10);
        assert!(!c.is_empty());
        assert!(c.iter().all(|c| c.formula.starts_with("Ra")), "{c:?}");
    }

    #[test]
    fn mixed_valence_only_formulas_are_refused() {
        let f = parse("Fe3O4").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            similar(&f, 5),
            Err(Error::NoOxidationStates { .. })
        ));
    }
}
