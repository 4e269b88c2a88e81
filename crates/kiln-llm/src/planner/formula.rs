//! Recognition of chemical formulas in free text (a recogniser, not a parser: kiln-materials
//! owns chemistry; this only decides which words to hand to the materials tool).

/// Element symbols, Z = 1..=118.
const ELEMENTS: [&str; 118] = [
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl",
    "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As",
    "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In",
    "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb",
    "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl",
    "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk",
    "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh",
    "Fl", "Mc", "Lv", "Ts", "Og",
];

/// Words that read as formulas but, in a researcher's sentence, almost never are.
const NOT_FORMULAS: [&str; 22] = [
    "I", "In", "As", "No", "He", "Be", "At", "Am", "Es", "OK", "PI", "UCB", "BO", "CV", "US", "IP",
    "SI", "NB", "PS", "PP", "HI", "ON",
];

fn is_element(symbol: &str) -> bool {
    ELEMENTS.contains(&symbol)
}

/// Returns true when `token` is written like a chemical formula: element symbols with optional
/// integer or decimal counts, brackets, and hydrate dots (`CuSO4·5H2O`). A lone symbol without
/// count counts only if it is not an everyday word (`In`, `As`, `I`).
pub fn looks_like_formula(token: &str) -> bool {
    if token.is_empty() || token.len() > 64 || NOT_FORMULAS.contains(&token) {
        return false;
    }
    let chars: Vec<char> = token.chars().collect();
    if !chars
        .first()
        .is_some_and(|c| c.is_ascii_uppercase() || matches!(c, '(' | '['))
    {
        return false;
    }
    let mut depth = 0i32;
    let mut elements = 0usize;
    let mut has_count_or_group = false;
    let mut i = 0usize;
    while let Some(&c) = chars.get(i) {
        match c {
            'A'..='Z' => {
                let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
                let one = c.to_string();
                if two.len() == 2 && two.chars().nth(1).is_some_and(|d| d.is_ascii_lowercase()) {
                    if !is_element(&two) {
                        return false;
                    }
                    i += 2;
                } else if is_element(&one) {
                    i += 1;
                } else {
                    return false;
                }
                elements += 1;
            }
            '0'..='9' | '.' => {
                // A dot is a decimal point only between digits, or a hydrate dot before a digit
                // or an element; either way it must sit next to something meaningful.
                if c == '.' && !chars.get(i + 1).is_some_and(|d| d.is_ascii_alphanumeric()) {
                    return false;
                }
                has_count_or_group = true;
                i += 1;
            }
            '(' | '[' => {
                depth += 1;
                has_count_or_group = true;
                i += 1;
            }
            ')' | ']' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
                i += 1;
            }
            '·' | '•' | '∙' | '*' => {
                has_count_or_group = true;
                i += 1;
            }
            _ => return false,
        }
    }
    depth == 0 && elements > 0 && (elements > 1 || has_count_or_group || chars.len() == 2)
}

/// Returns the formulas written in `text`, in order, without duplicates. Trailing punctuation,
/// possessives (`LiFePO4's`) and ion charges (`Li+`) are stripped before testing a word.
pub fn find_formulas(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for raw in text.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '/' | '"' | '`')) {
        let word = raw
            .strip_suffix("'s")
            .or_else(|| raw.strip_suffix("’s"))
            .unwrap_or(raw);
        let word = word.trim_end_matches(['.', '?', '!', ':', '\'', '’']);
        let word = trim_unbalanced(word);
        if word.ends_with(['+', '-']) {
            continue;
        }
        if looks_like_formula(word) && !found.iter().any(|known| known == word) {
            found.push(word.to_owned());
        }
    }
    found
}

/// The materials a sentence names, sorted by what they can be.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Mentions {
    /// Formulas of compounds (or counted elements, `O2`), in order.
    pub compounds: Vec<String>,
    /// Lone element symbols (`Co` in "the oxidation state of Co"), in order.
    pub elements: Vec<String>,
    /// Words written like formulas that use a symbol no element has.
    pub unknown: Vec<UnknownFormula>,
    /// Lab shorthands read as their formulas (`("NMC811", "LiNi0.8Mn0.1Co0.1O2")`); the
    /// formulas are in `compounds` too.
    pub aliases: Vec<(String, String)>,
    /// Capital-and-digit names that are not formulas and not known shorthands (`NMC9055`):
    /// a material was named, but not one the tools can read.
    pub abbreviations: Vec<String>,
}

/// Names researchers use for common battery and electrolyte materials, and the formulas they
/// stand for.
pub(crate) const SHORTHANDS: [(&str, &str); 20] = [
    ("NMC811", "LiNi0.8Mn0.1Co0.1O2"),
    ("NMC622", "LiNi0.6Mn0.2Co0.2O2"),
    ("NMC532", "LiNi0.5Mn0.3Co0.2O2"),
    ("NMC111", "LiNi0.33Mn0.33Co0.33O2"),
    ("NCM811", "LiNi0.8Co0.1Mn0.1O2"),
    ("NCM622", "LiNi0.6Co0.2Mn0.2O2"),
    ("NCA", "LiNi0.8Co0.15Al0.05O2"),
    ("LFP", "LiFePO4"),
    ("LMFP", "LiMn0.6Fe0.4PO4"),
    ("LCO", "LiCoO2"),
    ("LMO", "LiMn2O4"),
    ("LNMO", "LiNi0.5Mn1.5O4"),
    ("LTO", "Li4Ti5O12"),
    ("LLZO", "Li7La3Zr2O12"),
    ("LATP", "Li1.3Al0.3Ti1.7(PO4)3"),
    ("LAGP", "Li1.5Al0.5Ge1.5(PO4)3"),
    ("MAPbI3", "CH3NH3PbI3"),
    ("MAPbBr3", "CH3NH3PbBr3"),
    ("FAPbI3", "CH(NH2)2PbI3"),
    ("MAPbCl3", "CH3NH3PbCl3"),
];

/// A formula-shaped word with unknown element symbols (`LiCo3Xx2O9`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UnknownFormula {
    /// The word as written.
    pub word: String,
    /// The symbols that are not elements (`Xx`).
    pub symbols: Vec<String>,
}

impl Mentions {
    /// Returns the words of `text` that are formulas, elements or broken formulas.
    pub(crate) fn scan(text: &str) -> Mentions {
        let mut mentions = Mentions::default();
        for word in words(text) {
            if word.ends_with(['+', '-']) {
                continue;
            }
            if let Some((alias, formula)) = SHORTHANDS
                .iter()
                .find(|(alias, _)| alias.eq_ignore_ascii_case(word))
            {
                if !mentions.compounds.iter().any(|known| known == formula) {
                    mentions.compounds.push((*formula).to_owned());
                    mentions
                        .aliases
                        .push(((*alias).to_owned(), (*formula).to_owned()));
                }
                continue;
            }
            if is_abbreviation(word) {
                if !mentions.abbreviations.iter().any(|known| known == word) {
                    mentions.abbreviations.push(word.to_owned());
                }
                continue;
            }
            if looks_like_formula(word) {
                let list = if is_lone_element(word) {
                    &mut mentions.elements
                } else {
                    &mut mentions.compounds
                };
                if !list.iter().any(|known| known == word) {
                    list.push(word.to_owned());
                }
            } else if let Some(symbols) = unknown_symbols(word)
                && !mentions.unknown.iter().any(|known| known.word == word)
            {
                mentions.unknown.push(UnknownFormula {
                    word: word.to_owned(),
                    symbols,
                });
            }
        }
        mentions
    }
}

/// The words of a sentence with sentence punctuation, possessives and quotes removed.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '/' | '"' | '`'))
        .map(|raw| {
            let word = raw
                .strip_suffix("'s")
                .or_else(|| raw.strip_suffix("’s"))
                .unwrap_or(raw);
            let word = word.trim_end_matches(['.', '?', '!', ':', '\'', '’']);
            trim_unbalanced(word)
        })
}

/// Two or more capitals then a digit, with no small letter (`NMC9055`, `CR2032`): a name, never
/// a formula (a formula's two-letter symbols have a small letter; `CO2` and `NO2` read as
/// formulas).
fn is_abbreviation(word: &str) -> bool {
    let caps = word.chars().take_while(char::is_ascii_uppercase).count();
    caps >= 2
        && word[caps..].starts_with(|c: char| c.is_ascii_digit())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && !looks_like_formula(word)
}

/// A single element symbol with no count or group: `Co`, `Fe`.
fn is_lone_element(word: &str) -> bool {
    is_element(word)
}

/// The unknown symbols of a word written like a formula (symbols of one capital and at most
/// one small letter, counts, brackets) with at least one count, or `None` when the word is
/// not formula-shaped or all its symbols are elements. All-capital words (`NMC811`,
/// `CR2032`) are abbreviations, not formulas.
fn unknown_symbols(word: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = word.chars().collect();
    if chars.len() > 64
        || !chars.iter().any(char::is_ascii_digit)
        || !chars.iter().any(char::is_ascii_lowercase)
        || !chars
            .first()
            .is_some_and(|c| c.is_ascii_uppercase() || *c == '(')
    {
        return None;
    }
    let mut unknown = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            'A'..='Z' => {
                let symbol: String = match chars.get(i + 1) {
                    Some(small) if small.is_ascii_lowercase() => {
                        if chars.get(i + 2).is_some_and(char::is_ascii_lowercase) {
                            return None;
                        }
                        [c, *small].iter().collect()
                    }
                    _ => c.to_string(),
                };
                i += symbol.len();
                if !is_element(&symbol) && !unknown.contains(&symbol) {
                    unknown.push(symbol);
                }
            }
            '0'..='9' | '.' | '(' | ')' | '[' | ']' | '·' | '*' => i += 1,
            _ => return None,
        }
    }
    (!unknown.is_empty()).then_some(unknown)
}

/// Strips a leading `(` or trailing `)` that belongs to the sentence, not the formula.
fn trim_unbalanced(word: &str) -> &str {
    let mut word = word;
    loop {
        let opens = word.matches(['(', '[']).count();
        let closes = word.matches([')', ']']).count();
        if opens > closes && word.starts_with(['(', '[']) {
            word = &word[1..];
        } else if closes > opens && word.ends_with([')', ']']) {
            word = &word[..word.len() - 1];
        } else if word.len() > 2
            && word.starts_with(['(', '['])
            && word.ends_with([')', ']'])
            && balanced(&word[1..word.len() - 1])
        {
            // "(LiMn2O4)": brackets of the sentence around a whole formula.
            word = &word[1..word.len() - 1];
        } else {
            return word;
        }
    }
}

fn balanced(text: &str) -> bool {
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recognises_formulas_and_rejects_words() {
        let cases = [
            ("LiFePO4", true),
            ("LiCoO2", true),
            ("Fe2O3", true),
            ("Ca(OH)2", true),
            ("CuSO4·5H2O", true),
            ("Li0.5CoO2", true),
            ("NaCl", true),
            ("Fe", true),
            ("CO", true),
            ("Show", false),
            ("What", false),
            ("Analyse", false),
            ("Record", false),
            ("I", false),
            ("In", false),
            ("OK", false),
            ("UCB", false),
            ("Ca(OH", false),
            ("Xx2", false),
            ("lifepo4", false),
            ("H2O.", false),
            ("", false),
        ];
        for (token, expected) in cases {
            assert_eq!(looks_like_formula(token), expected, "{token}");
        }
    }

    #[test]
    fn finds_formulas_in_sentences() {
        let cases = [
            ("Analyse LiFePO4", vec!["LiFePO4"]),
            ("Compare LiFePO4 and LiCoO2.", vec!["LiFePO4", "LiCoO2"]),
            ("What about LiFePO4's oxidation states?", vec!["LiFePO4"]),
            ("Is it better than (LiMn2O4)?", vec!["LiMn2O4"]),
            ("Record that olivine matters for Li+ mobility", vec![]),
            ("What about its oxidation states?", vec![]),
            ("Fe2O3, Fe2O3 and Fe3O4", vec!["Fe2O3", "Fe3O4"]),
            ("salts (NH4)2SO4 and Ca(OH)2.", vec!["(NH4)2SO4", "Ca(OH)2"]),
        ];
        for (text, expected) in cases {
            assert_eq!(find_formulas(text), expected, "{text}");
        }
    }

    #[test]
    fn sorts_compounds_elements_and_unknown_symbols() {
        let m = Mentions::scan("the oxidation state of Co in LiCoO2, not LiCo3Xx2O9 or NMC9055");
        assert_eq!(m.compounds, vec!["LiCoO2"]);
        assert_eq!(m.abbreviations, vec!["NMC9055"]);
        assert_eq!(m.elements, vec!["Co"]);
        assert_eq!(
            m.unknown,
            vec![UnknownFormula {
                word: "LiCo3Xx2O9".into(),
                symbols: vec!["Xx".into()]
            }]
        );
        assert_eq!(Mentions::scan("Qq2O3").unknown[0].symbols, vec!["Qq"]);
        assert!(
            Mentions::scan("Run3 at CR2032 with Mg2+")
                .unknown
                .is_empty()
        );
        // Shorthands read as their formulas; CO2 and NO2 stay formulas.
        let m = Mentions::scan("NMC811 vs lfp, with CO2 and NO2");
        assert_eq!(
            m.compounds,
            vec!["LiNi0.8Mn0.1Co0.1O2", "LiFePO4", "CO2", "NO2"]
        );
        assert_eq!(
            m.aliases[0],
            ("NMC811".into(), "LiNi0.8Mn0.1Co0.1O2".into())
        );
        assert!(m.abbreviations.is_empty());
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,80}") {
            let _ = find_formulas(&text);
            let _ = Mentions::scan(&text);
        }
    }
}
