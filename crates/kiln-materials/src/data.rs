//! The embedded element tables: CSV files in `data/`, parsed once on first use.
//!
//! Sources (see `data/README.md`): IUPAC/CIAAW abridged standard atomic weights; Pauling
//! electronegativities, oxidation-state sets, Shannon ionic radii and ICSD oxidation-state
//! occurrences from pymatgen (MIT); SMACT's ICSD-2024 oxidation states, metal list, covalent
//! radii and the Hautier et al. (2011) substitution λ table as shipped by SMACT and pymatgen (MIT).

use std::sync::LazyLock;

const ELEMENTS_CSV: &str = include_str!("../data/elements.csv");
const RADII_CSV: &str = include_str!("../data/ionic_radii.csv");
const PRIORS_CSV: &str = include_str!("../data/oxidation_priors.csv");
pub(crate) const LAMBDA_CSV: &str = include_str!("../data/substitution_lambda.csv");

/// Number of elements in the tables (H..Lr).
pub const NUM_ELEMENTS: usize = 103;

/// One row of `elements.csv` plus the per-element rows of the other tables.
#[derive(Debug, Clone)]
pub(crate) struct ElementRow {
    pub symbol: &'static str,
    pub name: &'static str,
    pub atomic_weight: f64,
    /// Pauling electronegativity as pymatgen gives it (used for formula ordering).
    pub pauling_x: Option<f64>,
    /// Pauling electronegativity as SMACT gives it (used by the validity screen).
    pub pauling_x_smact: Option<f64>,
    pub covalent_radius_pm: Option<f64>,
    pub smact_metal: bool,
    pub ox_smact: Vec<i8>,
    pub ox_icsd: Vec<i8>,
    pub ox_common: Vec<i8>,
    pub ox_all: Vec<i8>,
    /// (charge, ionic radius in Å), Shannon, octahedral where tabulated.
    pub ionic_radii: Vec<(i8, f64)>,
    /// (charge, number of ICSD occurrences) used to rank oxidation-state guesses.
    pub priors: Vec<(i8, f64)>,
}

pub(crate) struct Tables {
    pub rows: Vec<ElementRow>,
    /// Maps an ASCII symbol packed as `first * 128 + second` (second = 0 when absent) to Z.
    pub by_symbol: Vec<u8>,
}

pub(crate) static TABLES: LazyLock<Tables> = LazyLock::new(load);

/// Packs a one- or two-letter ASCII symbol into an index of `Tables::by_symbol`.
pub(crate) fn symbol_key(first: u8, second: u8) -> usize {
    usize::from(first & 0x7f) * 128 + usize::from(second & 0x7f)
}

fn opt_f64(field: &str) -> Option<f64> {
    field.parse().ok()
}

fn states(field: &str) -> Vec<i8> {
    field
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Parses a species label such as `Fe2+`, `O2-`, `Ag+` or `Ag0+` into (symbol, charge).
pub(crate) fn parse_species(label: &str) -> Option<(&str, i8)> {
    let end = label.find(|c: char| !c.is_ascii_alphabetic())?;
    let (symbol, rest) = label.split_at(end);
    let (digits, sign) = rest.split_at(rest.len().checked_sub(1)?);
    let magnitude: i8 = if digits.is_empty() {
        1
    } else {
        digits.parse().ok()?
    };
    match sign {
        "+" => Some((symbol, magnitude)),
        "-" => Some((symbol, -magnitude)),
        _ => None,
    }
}

// The tables are compile-time constants checked by the unit tests below, so a malformed row
// is a build defect, not user input: loading fails loudly rather than silently dropping data.
fn load() -> Tables {
    let mut rows = Vec::with_capacity(NUM_ELEMENTS);
    for line in ELEMENTS_CSV.lines().skip(1) {
        let f: Vec<&'static str> = line.split(',').collect();
        assert_eq!(f.len(), 12, "elements.csv row has 12 fields: {line}");
        rows.push(ElementRow {
            symbol: f[1],
            name: f[2],
            atomic_weight: f[3].parse().expect("atomic weight is a number"),
            pauling_x: opt_f64(f[4]),
            pauling_x_smact: opt_f64(f[5]),
            covalent_radius_pm: opt_f64(f[6]),
            smact_metal: f[7] == "1",
            ox_smact: states(f[8]),
            ox_icsd: states(f[9]),
            ox_common: states(f[10]),
            ox_all: states(f[11]),
            ionic_radii: Vec::new(),
            priors: Vec::new(),
        });
    }
    let mut by_symbol = vec![0u8; 128 * 128];
    for (i, row) in rows.iter().enumerate() {
        let b = row.symbol.as_bytes();
        let key = symbol_key(b[0], b.get(1).copied().unwrap_or(0));
        by_symbol[key] = u8::try_from(i + 1).expect("fewer than 256 elements");
    }
    let index = |symbol: &str| -> Option<usize> {
        let b = symbol.as_bytes();
        match *b {
            [a] | [a, 0] => Some(by_symbol[symbol_key(a, 0)]),
            [a, c] => Some(by_symbol[symbol_key(a, c)]),
            _ => None,
        }
        .filter(|&z| z > 0)
        .map(|z| usize::from(z) - 1)
    };
    for line in RADII_CSV.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let i = index(f[0]).expect("ionic_radii.csv names a known element");
        let charge: i8 = f[1].parse().expect("charge is an integer");
        let radius: f64 = f[3].parse().expect("radius is a number");
        rows[i].ionic_radii.push((charge, radius));
    }
    for line in PRIORS_CSV.lines().skip(1) {
        let (species, count) = line.split_once(',').expect("two fields");
        let (symbol, charge) = parse_species(species).expect("species label");
        if let Some(i) = index(symbol) {
            rows[i]
                .priors
                .push((charge, count.parse().expect("count is a number")));
        }
    }
    Tables { rows, by_symbol }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_load_every_element_with_a_weight() {
        let t = &*TABLES;
        assert_eq!(t.rows.len(), NUM_ELEMENTS);
        assert!(t.rows.iter().all(|r| r.atomic_weight > 0.9));
        assert_eq!(t.rows[25].symbol, "Fe");
        assert_eq!(t.rows[25].ox_icsd, vec![2, 3]);
        assert!(t.rows[25].ionic_radii.contains(&(2, 0.78)));
        assert!(t.rows[7].priors.iter().any(|&(c, n)| c == -2 && n > 1000.0));
    }

    #[test]
    fn species_labels_parse() {
        assert_eq!(parse_species("Fe2+"), Some(("Fe", 2)));
        assert_eq!(parse_species("O2-"), Some(("O", -2)));
        assert_eq!(parse_species("Ag+"), Some(("Ag", 1)));
        assert_eq!(parse_species("Ag0+"), Some(("Ag", 0)));
        assert_eq!(parse_species("Fe"), None);
    }

    #[test]
    fn lambda_table_species_are_known_elements() {
        for line in LAMBDA_CSV.lines().skip(1) {
            let mut f = line.split(',');
            for label in [f.next(), f.next()] {
                let (symbol, _) = parse_species(label.unwrap_or("")).unwrap_or(("?", 0));
                assert!(crate::Element::from_symbol(symbol).is_some(), "{line}");
            }
        }
    }
}
