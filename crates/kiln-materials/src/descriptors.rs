//! Composition descriptors: fraction-weighted statistics of element properties and norms.
//!
//! The usual composition features (Ward et al., npj Comput. Mater. 2, 16028, 2016): for each
//! property, the atomic-fraction-weighted mean, min, max, range and mean absolute deviation;
//! and the stoichiometric Lp norms of the atomic fractions.

use serde::Serialize;

use crate::element::Element;
use crate::oxidation::OxidationGuess;
use crate::parse::Formula;

/// Weighted statistics of one property over a composition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub range: f64,
    /// Σ fᵢ |xᵢ − mean|.
    pub mean_abs_dev: f64,
}

/// Stoichiometric Lp norms of the atomic fractions (L0 is the number of elements).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Norms {
    pub l0: f64,
    pub l2: f64,
    pub l3: f64,
    pub l5: f64,
    pub l7: f64,
    pub l10: f64,
}

/// The descriptor set; a property statistic is `None` when some element lacks the value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Descriptors {
    pub num_elements: usize,
    pub num_atoms: f64,
    pub stoichiometry: Norms,
    pub electronegativity: Option<Stat>,
    pub atomic_weight: Stat,
    pub covalent_radius_pm: Option<Stat>,
    /// Shannon radii (Å) of the best oxidation-state guess, weighted by sites.
    pub ionic_radius: Option<Stat>,
    /// Largest electronegativity difference between two elements present.
    pub max_electronegativity_difference: Option<f64>,
}

/// Computes weighted statistics of `(weight, value)` pairs (weights summing to one).
pub fn stat(pairs: &[(f64, f64)]) -> Option<Stat> {
    if pairs.is_empty() {
        return None;
    }
    let mean: f64 = pairs.iter().map(|(w, x)| w * x).sum();
    let min = pairs.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max = pairs.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let mean_abs_dev = pairs.iter().map(|(w, x)| w * (x - mean).abs()).sum();
    Some(Stat {
        mean,
        min,
        max,
        range: max - min,
        mean_abs_dev,
    })
}

fn property(formula: &Formula, f: impl Fn(Element) -> Option<f64>) -> Option<Stat> {
    let atoms = formula.num_atoms();
    let pairs: Option<Vec<(f64, f64)>> = formula
        .elements()
        .iter()
        .map(|(e, a)| Some((a.to_f64() / atoms, f(*e)?)))
        .collect();
    stat(&pairs?)
}

fn ionic(guess: Option<&OxidationGuess>) -> Option<Stat> {
    let g = guess?;
    let total: u64 = g
        .elements
        .iter()
        .flat_map(|e| &e.sites)
        .map(|s| s.count)
        .sum();
    let mut pairs = Vec::new();
    for e in &g.elements {
        for s in &e.sites {
            let r = e.element.ionic_radius(s.state)?;
            pairs.push((s.count as f64 / total as f64, r));
        }
    }
    stat(&pairs)
}

/// Computes the descriptors, using `guess` (the best oxidation-state guess) for ionic radii.
pub fn descriptors(formula: &Formula, guess: Option<&OxidationGuess>) -> Descriptors {
    let atoms = formula.num_atoms();
    let fractions: Vec<f64> = formula
        .elements()
        .iter()
        .map(|(_, a)| a.to_f64() / atoms)
        .collect();
    let norm = |p: i32| {
        fractions
            .iter()
            .map(|x| x.powi(p))
            .sum::<f64>()
            .powf(1.0 / f64::from(p))
    };
    let xs: Option<Vec<f64>> = formula
        .elements()
        .iter()
        .map(|(e, _)| e.electronegativity())
        .collect();
    let max_dx = xs.and_then(|xs| {
        let lo = xs.iter().copied().reduce(f64::min)?;
        let hi = xs.iter().copied().reduce(f64::max)?;
        Some(hi - lo)
    });
    Descriptors {
        num_elements: formula.elements().len(),
        num_atoms: atoms,
        stoichiometry: Norms {
            l0: fractions.len() as f64,
            l2: norm(2),
            l3: norm(3),
            l5: norm(5),
            l7: norm(7),
            l10: norm(10),
        },
        electronegativity: property(formula, Element::electronegativity),
        atomic_weight: property(formula, |e| Some(e.atomic_weight())).unwrap_or(Stat {
            mean: 0.0,
            min: 0.0,
            max: 0.0,
            range: 0.0,
            mean_abs_dev: 0.0,
        }),
        covalent_radius_pm: property(formula, Element::covalent_radius),
        ionic_radius: ionic(guess),
        max_electronegativity_difference: max_dx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oxidation::oxidation_state_guesses;
    use crate::parse::parse;

    #[test]
    fn nacl_descriptors() {
        let f = parse("NaCl").unwrap_or_else(|e| panic!("{e}"));
        let g = oxidation_state_guesses(&f, 1);
        let d = descriptors(&f, g.first());
        let x = d
            .electronegativity
            .unwrap_or_else(|| panic!("no electronegativity"));
        assert!((x.mean - (0.93 + 3.16) / 2.0).abs() < 1e-12);
        assert!((x.range - 2.23).abs() < 1e-12);
        assert!((x.mean_abs_dev - 1.115).abs() < 1e-12);
        assert!((d.stoichiometry.l2 - 0.5f64.sqrt()).abs() < 1e-12);
        let r = d.ionic_radius.unwrap_or_else(|| panic!("no ionic radius"));
        assert!((r.mean - (1.02 + 1.81) / 2.0).abs() < 1e-12, "{r:?}");
        assert_eq!(d.num_elements, 2);
    }

    #[test]
    fn missing_values_give_none() {
        let f = parse("XeF2").unwrap_or_else(|e| panic!("{e}"));
        let d = descriptors(&f, None);
        assert!(d.ionic_radius.is_none());
        assert!(d.atomic_weight.mean > 0.0);
    }
}
