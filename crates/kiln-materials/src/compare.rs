//! Comparison of two compositions: shared and distinct elements, fraction and descriptor deltas.

use serde::Serialize;

use crate::analysis::{Analysis, analyze};
use crate::descriptors::Stat;
use crate::element::Element;
use crate::error::Result;

/// One element's atomic fraction in each composition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FractionDelta {
    pub element: Element,
    pub a: f64,
    pub b: f64,
    /// b − a.
    pub delta: f64,
}

/// Differences of descriptor means, b − a (`None` where either side lacks the value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DescriptorDeltas {
    pub molar_mass: f64,
    pub num_atoms: f64,
    pub num_elements: i64,
    pub electronegativity_mean: Option<f64>,
    pub atomic_weight_mean: f64,
    pub covalent_radius_mean: Option<f64>,
    pub ionic_radius_mean: Option<f64>,
}

/// The comparison of two formulas, with both analyses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub a: Analysis,
    pub b: Analysis,
    pub shared_elements: Vec<Element>,
    pub only_in_a: Vec<Element>,
    pub only_in_b: Vec<Element>,
    pub atomic_fractions: Vec<FractionDelta>,
    pub same_reduced_formula: bool,
    pub same_anonymized_formula: bool,
    pub same_chemical_system: bool,
    pub deltas: DescriptorDeltas,
}

fn mean_delta(a: Option<Stat>, b: Option<Stat>) -> Option<f64> {
    Some(b?.mean - a?.mean)
}

/// Parses, analyses and compares two formulas.
pub fn compare(a: &str, b: &str) -> Result<Comparison> {
    Ok(compare_analyses(analyze(a)?, analyze(b)?))
}

/// Compares two analyses.
pub fn compare_analyses(a: Analysis, b: Analysis) -> Comparison {
    let frac = |x: &Analysis, e: Element| {
        x.composition
            .iter()
            .find(|s| s.element == e)
            .map_or(0.0, |s| s.atomic_fraction)
    };
    let in_a: Vec<Element> = a.composition.iter().map(|s| s.element).collect();
    let in_b: Vec<Element> = b.composition.iter().map(|s| s.element).collect();
    let shared_elements = in_a.iter().copied().filter(|e| in_b.contains(e)).collect();
    let only_in_a = in_a.iter().copied().filter(|e| !in_b.contains(e)).collect();
    let only_in_b: Vec<Element> = in_b.iter().copied().filter(|e| !in_a.contains(e)).collect();
    let atomic_fractions = in_a
        .iter()
        .chain(&only_in_b)
        .map(|&element| {
            let (fa, fb) = (frac(&a, element), frac(&b, element));
            FractionDelta {
                element,
                a: fa,
                b: fb,
                delta: fb - fa,
            }
        })
        .collect();
    let (da, db) = (&a.descriptors, &b.descriptors);
    let deltas = DescriptorDeltas {
        molar_mass: b.molar_mass - a.molar_mass,
        num_atoms: b.num_atoms - a.num_atoms,
        num_elements: db.num_elements as i64 - da.num_elements as i64,
        electronegativity_mean: mean_delta(da.electronegativity, db.electronegativity),
        atomic_weight_mean: db.atomic_weight.mean - da.atomic_weight.mean,
        covalent_radius_mean: mean_delta(da.covalent_radius_pm, db.covalent_radius_pm),
        ionic_radius_mean: mean_delta(da.ionic_radius, db.ionic_radius),
    };
    Comparison {
        shared_elements,
        only_in_a,
        only_in_b,
        atomic_fractions,
        same_reduced_formula: a.reduced_formula == b.reduced_formula,
        same_anonymized_formula: a.anonymized_formula == b.anonymized_formula,
        same_chemical_system: a.chemical_system == b.chemical_system,
        deltas,
        a,
        b,
    }
}

/// `+1.23`, `−0.91` (a true minus sign), `0.00`.
fn signed(x: f64) -> String {
    let text = format!("{:.2}", x.abs());
    if text == "0.00" {
        text
    } else if x < 0.0 {
        format!("−{text}")
    } else {
        format!("+{text}")
    }
}

impl Comparison {
    /// Returns a one-line summary of the differences.
    pub fn summary(&self) -> String {
        let list = |v: &[Element]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.iter().map(|e| e.symbol()).collect::<Vec<_>>().join(", ")
            }
        };
        format!(
            "{} vs {}: shared {}; only in {}: {}; only in {}: {}; molar mass difference ({} − {}) {} g/mol{}",
            self.a.reduced_formula,
            self.b.reduced_formula,
            list(&self.shared_elements),
            self.a.reduced_formula,
            list(&self.only_in_a),
            self.b.reduced_formula,
            list(&self.only_in_b),
            self.b.reduced_formula,
            self.a.reduced_formula,
            signed(self.deltas.molar_mass),
            if self.same_anonymized_formula {
                "; same prototype formula"
            } else {
                ""
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifepo4_vs_limnpo4() {
        let c = compare("LiFePO4", "LiMnPO4").unwrap_or_else(|e| panic!("{e}"));
        let sym = |v: &[Element]| v.iter().map(|e| e.symbol()).collect::<Vec<_>>();
        assert_eq!(sym(&c.shared_elements), ["Li", "P", "O"]);
        assert_eq!(sym(&c.only_in_a), ["Fe"]);
        assert_eq!(sym(&c.only_in_b), ["Mn"]);
        assert!(c.same_anonymized_formula && !c.same_chemical_system);
        assert!((c.deltas.molar_mass - (54.938 - 55.845)).abs() < 1e-9);
        let fe = c
            .atomic_fractions
            .iter()
            .find(|d| d.element.symbol() == "Fe");
        assert!(fe.is_some_and(|d| (d.delta + 1.0 / 7.0).abs() < 1e-12));
        assert!(
            c.summary().contains("only in LiMnPO4: Mn"),
            "{}",
            c.summary()
        );
        // The number says what it is a difference of, and which way.
        assert!(
            c.summary()
                .contains("molar mass difference (LiMnPO4 − LiFePO4) −0.91 g/mol"),
            "{}",
            c.summary()
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(compare("LiFePO4", "Xx").is_err());
    }
}
