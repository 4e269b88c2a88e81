//! `Element`: a chemical element (Z = 1..=103) and its tabulated properties.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::data::{ElementRow, NUM_ELEMENTS, TABLES, symbol_key};

/// A chemical element, H (Z = 1) to Lr (Z = 103). Serialises as its symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Element(u8);

impl Element {
    /// Returns the element with atomic number `z`, if it is in the table.
    pub fn from_z(z: u8) -> Option<Element> {
        (1..=NUM_ELEMENTS)
            .contains(&usize::from(z))
            .then_some(Element(z))
    }

    /// Returns the element whose symbol is exactly `symbol` (case-sensitive, `Fe`).
    pub fn from_symbol(symbol: &str) -> Option<Element> {
        match *symbol.as_bytes() {
            [a] => Self::from_bytes(a, 0),
            [a, b] => Self::from_bytes(a, b),
            _ => None,
        }
    }

    /// Looks a one- or two-byte symbol up without allocating (`second` = 0 for one letter).
    pub(crate) fn from_bytes(first: u8, second: u8) -> Option<Element> {
        if !first.is_ascii() || !second.is_ascii() {
            return None;
        }
        let z = TABLES
            .by_symbol
            .get(symbol_key(first, second))
            .copied()
            .unwrap_or(0);
        (z > 0).then_some(Element(z))
    }

    /// Iterates over every element in the table, by atomic number.
    pub fn all() -> impl Iterator<Item = Element> {
        (1..=NUM_ELEMENTS as u8).map(Element)
    }

    fn row(self) -> &'static ElementRow {
        // Element values are only built from valid atomic numbers.
        &TABLES.rows[usize::from(self.0) - 1]
    }

    /// Returns the atomic number.
    pub fn z(self) -> u8 {
        self.0
    }

    /// Returns the symbol, e.g. `Fe`.
    pub fn symbol(self) -> &'static str {
        self.row().symbol
    }

    /// Returns the English name, e.g. `Iron`.
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// Returns the IUPAC abridged standard atomic weight (g/mol); for elements without one,
    /// the mass number of the longest-lived isotope.
    pub fn atomic_weight(self) -> f64 {
        self.row().atomic_weight
    }

    /// Returns the Pauling electronegativity (pymatgen's table), if known.
    pub fn electronegativity(self) -> Option<f64> {
        self.row().pauling_x
    }

    /// Returns the Pauling electronegativity in SMACT's table, used by the validity screen.
    pub fn electronegativity_smact(self) -> Option<f64> {
        self.row().pauling_x_smact
    }

    /// Returns the covalent radius in pm, if known.
    pub fn covalent_radius(self) -> Option<f64> {
        self.row().covalent_radius_pm
    }

    /// Returns whether SMACT counts the element as a metal (its alloy shortcut).
    pub fn is_metal(self) -> bool {
        self.row().smact_metal
    }

    /// Returns SMACT 4's default oxidation states (ICSD 2024, ≥ 3 reports, zero excluded).
    pub fn smact_oxidation_states(self) -> &'static [i8] {
        &self.row().ox_smact
    }

    /// Returns pymatgen's ICSD oxidation states, falling back to its common states.
    pub fn icsd_oxidation_states(self) -> &'static [i8] {
        let row = self.row();
        if row.ox_icsd.is_empty() {
            &row.ox_common
        } else {
            &row.ox_icsd
        }
    }

    /// Returns pymatgen's common oxidation states.
    pub fn common_oxidation_states(self) -> &'static [i8] {
        &self.row().ox_common
    }

    /// Returns every oxidation state pymatgen lists (very inclusive).
    pub fn all_oxidation_states(self) -> &'static [i8] {
        &self.row().ox_all
    }

    /// Returns the Shannon ionic radius (Å, octahedral where tabulated) for a charge.
    pub fn ionic_radius(self, charge: i8) -> Option<f64> {
        self.row()
            .ionic_radii
            .iter()
            .find(|(c, _)| *c == charge)
            .map(|&(_, r)| r)
    }

    /// Returns how many ICSD compounds report this oxidation state (0 when unseen).
    pub fn oxidation_prior(self, charge: i8) -> f64 {
        self.row()
            .priors
            .iter()
            .find(|(c, _)| *c == charge)
            .map_or(0.0, |&(_, n)| n)
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl Serialize for Element {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.symbol())
    }
}

/// Formats a species label the way the substitution table writes it: `Fe2+`, `O2-`, `Li+`.
pub fn species_label(element: Element, charge: i8) -> String {
    let sign = if charge < 0 { '-' } else { '+' };
    match charge.unsigned_abs() {
        1 => format!("{element}{sign}"),
        n => format!("{element}{n}{sign}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_round_trip_for_every_element() {
        for el in Element::all() {
            assert_eq!(Element::from_symbol(el.symbol()), Some(el));
        }
        assert_eq!(Element::from_symbol("Xx"), None);
        assert_eq!(Element::from_symbol("fe"), None);
        assert_eq!(Element::from_symbol(""), None);
        assert_eq!(Element::from_z(0), None);
        assert_eq!(Element::from_z(104), None);
    }

    #[test]
    fn current_iupac_weights_not_the_old_conventional_ones() {
        let w = |s| Element::from_symbol(s).map(Element::atomic_weight);
        assert_eq!(w("Li"), Some(6.94));
        assert_eq!(w("O"), Some(15.999));
        assert_eq!(w("Zn"), Some(65.38));
        assert_eq!(w("H"), Some(1.008));
    }

    #[test]
    fn species_labels_match_the_substitution_table() {
        let fe = Element::from_symbol("Fe");
        let o = Element::from_symbol("O");
        assert_eq!(fe.map(|e| species_label(e, 2)).as_deref(), Some("Fe2+"));
        assert_eq!(o.map(|e| species_label(e, -2)).as_deref(), Some("O2-"));
        assert_eq!(
            Element::from_symbol("Li")
                .map(|e| species_label(e, 1))
                .as_deref(),
            Some("Li+")
        );
    }
}
