//! `Analysis`: everything Kiln computes about one formula, in the shape the tool and CLI emit.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::amount::Amount;
use crate::composition::{
    ElementShare, anonymized_formula, chemical_system, hill_formula, molar_mass, reduced_formula,
    shares,
};
use crate::descriptors::{Descriptors, descriptors};
use crate::element::Element;
use crate::error::Result;
use crate::oxidation::{OxidationGuess, oxidation_state_guesses};
use crate::parse::{Formula, parse};
use crate::validity::{Validity, validate_with};

/// How many oxidation-state guesses an analysis keeps.
pub const GUESSES_KEPT: usize = 5;

/// Element amounts, serialised as a JSON object `{"Li": 1, "Fe": 1, ...}` in formula order.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementAmounts(pub Vec<(Element, Amount)>);

impl Serialize for ElementAmounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (e, a) in &self.0 {
            map.serialize_entry(e.symbol(), a)?;
        }
        map.end()
    }
}

/// The best guess as `{"Fe": 2, "O": -2}` (mean state per element, so 2.667 for Fe3O4).
#[derive(Debug, Clone, PartialEq)]
pub struct BestStates(pub Vec<(Element, f64)>);

impl Serialize for BestStates {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (e, v) in &self.0 {
            if v.fract() == 0.0 && v.abs() < 1e6 {
                map.serialize_entry(e.symbol(), &(*v as i64))?;
            } else {
                map.serialize_entry(e.symbol(), v)?;
            }
        }
        map.end()
    }
}

/// The full analysis of one formula.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// The formula as written (trimmed).
    pub formula: String,
    pub reduced_formula: String,
    pub reduction_factor: f64,
    pub hill_formula: String,
    pub anonymized_formula: String,
    pub chemical_system: String,
    /// g/mol, from IUPAC abridged standard atomic weights.
    pub molar_mass: f64,
    pub num_atoms: f64,
    pub elements: ElementAmounts,
    pub composition: Vec<ElementShare>,
    /// The best guess, element → mean state; `None` when nothing balances.
    pub oxidation_states: Option<BestStates>,
    pub oxidation_state_guesses: Vec<OxidationGuess>,
    pub mixed_valence: bool,
    /// The SMACT-like verdict.
    pub valid: bool,
    pub reasons: Vec<String>,
    pub screen: Validity,
    pub descriptors: Descriptors,
}

/// Parses and analyses a formula.
pub fn analyze(input: &str) -> Result<Analysis> {
    Ok(analyze_formula(&parse(input)?))
}

/// Analyses an already parsed formula.
pub fn analyze_formula(f: &Formula) -> Analysis {
    let guesses = oxidation_state_guesses(f, GUESSES_KEPT);
    let best = guesses.first();
    let screen = validate_with(f, Some(&guesses));
    let (reduced, factor) = reduced_formula(f);
    Analysis {
        formula: f.text().to_owned(),
        reduced_formula: reduced,
        reduction_factor: factor,
        hill_formula: hill_formula(f),
        anonymized_formula: anonymized_formula(f),
        chemical_system: chemical_system(f),
        molar_mass: molar_mass(f),
        num_atoms: f.num_atoms(),
        elements: ElementAmounts(f.elements().to_vec()),
        composition: shares(f),
        oxidation_states: best
            .map(|g| BestStates(g.elements.iter().map(|e| (e.element, e.average)).collect())),
        mixed_valence: best.is_some_and(|g| g.mixed_valence),
        valid: screen.valid,
        reasons: screen.reasons.clone(),
        descriptors: descriptors(f, best),
        oxidation_state_guesses: guesses,
        screen,
    }
}

impl Analysis {
    /// Returns a one-line summary, e.g. `LiFePO4: molar mass 157.755 g/mol, Li+1 Fe+2 P+5 O-2, valid`.
    pub fn summary(&self) -> String {
        let states = match &self.oxidation_states {
            Some(s) => {
                s.0.iter()
                    .map(|(e, v)| {
                        if v.fract() == 0.0 {
                            format!("{e}{:+}", *v as i64)
                        } else {
                            format!("{e}{v:+.2}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            None => "no charge-balanced oxidation states".to_owned(),
        };
        let verdict = if self.valid {
            "valid".to_owned()
        } else {
            format!("invalid ({})", self.reasons.join("; "))
        };
        format!(
            "{}: molar mass {:.3} g/mol, {}, {}",
            self.reduced_formula, self.molar_mass, states, verdict
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_element_list_analyses_consistently(
            parts in proptest::collection::vec((1u8..=103, 1u32..13), 1..6)
        ) {
            let text: String = parts
                .iter()
                .filter_map(|(z, n)| Some(format!("{}{n}", Element::from_z(*z)?)))
                .collect();
            let a = analyze(&text);
            prop_assert!(a.is_ok(), "{text}");
            let a = a.unwrap_or_else(|_| unreachable!());
            let w: f64 = a.composition.iter().map(|s| s.weight_fraction).sum();
            prop_assert!(a.molar_mass > 0.0 && (w - 1.0).abs() < 1e-9);
            // Every reported guess balances charge.
            for g in &a.oxidation_state_guesses {
                let q: f64 = g.elements.iter().zip(&a.composition).map(|(e, s)| e.average * s.amount).sum();
                prop_assert!(q.abs() < 1e-6, "{text}: {g:?}");
            }
            let _ = crate::similar_str(&text, 3);
        }
    }

    #[test]
    fn lifepo4_end_to_end() {
        let a = analyze("LiFePO4").unwrap_or_else(|e| panic!("{e}"));
        assert!((a.molar_mass - 157.757).abs() < 0.003);
        assert_eq!(
            a.summary(),
            "LiFePO4: molar mass 157.755 g/mol, Li+1 Fe+2 P+5 O-2, valid"
        );
        let json = serde_json::to_value(&a).unwrap_or_default();
        assert_eq!(json["elements"]["O"], 4);
        assert_eq!(json["oxidation_states"]["Fe"], 2);
        assert_eq!(json["valid"], true);
        assert_eq!(json["chemical_system"], "Fe-Li-O-P");
    }

    #[test]
    fn magnetite_summary_shows_mixed_valence() {
        let a = analyze("Fe3O4").unwrap_or_else(|e| panic!("{e}"));
        assert!(a.mixed_valence && !a.valid);
        assert!(
            a.summary()
                .starts_with("Fe3O4: molar mass 231.531 g/mol, Fe+2.67 O-2, invalid")
        );
        let json = serde_json::to_value(&a).unwrap_or_default();
        assert!((json["oxidation_states"]["Fe"].as_f64().unwrap_or(0.0) - 8.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn nmc_fractional_analysis() {
        let a = analyze("LiNi1/3Mn1/3Co1/3O2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.screen.screened_as.as_deref(), Some("Li3NiMnCoO6"));
        assert!(a.valid);
        assert!((a.num_atoms - 4.0).abs() < 1e-12);
        assert!((a.molar_mass - 96.46).abs() < 0.01, "{}", a.molar_mass);
    }
}
