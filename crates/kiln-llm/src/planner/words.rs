//! Text helpers the planner's matchers share: cue lookup, typo-tolerant words, clause
//! cleaning. Pure string work, no knowledge of tools.

/// Words the planner keys on, matched despite one typo (a letter missing, added, changed or
/// two swapped): "anlyse", "oxidaton", "comapre".
const TYPO_TOLERANT: [&str; 24] = [
    "analyse",
    "analyze",
    "oxidation",
    "similar",
    "compare",
    "validate",
    "substitute",
    "substitution",
    "alternative",
    "alternatives",
    "composition",
    "suggest",
    "experiment",
    "experiments",
    "optimise",
    "optimize",
    "optimisation",
    "optimization",
    "predict",
    "search",
    "notebook",
    "balanced",
    "plausible",
    "parameters",
];

/// Returns true when any cue occurs in `text` (already lowercased).
pub(crate) fn has_any(text: &str, cues: &[&str]) -> bool {
    cues.iter().any(|cue| text.contains(cue))
}

/// Returns true when `text` starts with any cue.
pub(crate) fn starts_with_any(text: &str, cues: &[&str]) -> bool {
    cues.iter().any(|cue| text.starts_with(cue))
}

/// Returns `lower` with each word one typo away from a planner keyword replaced by that
/// keyword. Used only to detect what is asked; values are read from the original text.
pub(crate) fn correct_typos(lower: &str) -> String {
    let mut out = String::with_capacity(lower.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.chars().count() >= 5
            && let Some(fixed) = TYPO_TOLERANT
                .iter()
                .find(|cue| **cue != word.as_str() && one_edit_apart(cue, word))
        {
            out.push_str(fixed);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in lower.chars() {
        if c.is_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// True when `a` and `b` differ by one insertion, deletion, substitution or swap of
/// neighbours, and start with the same letter (a changed first letter is another word).
fn one_edit_apart(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.first() != b.first() || a.len().abs_diff(b.len()) > 1 || a == b {
        return false;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..], &b[prefix..]);
    match ra.len().cmp(&rb.len()) {
        std::cmp::Ordering::Equal => {
            ra[1..] == rb[1..]
                || (ra.len() >= 2 && ra[0] == rb[1] && ra[1] == rb[0] && ra[2..] == rb[2..])
        }
        std::cmp::Ordering::Greater => ra[1..] == *rb,
        std::cmp::Ordering::Less => *ra == rb[1..],
    }
}

/// Trims spaces, quotes, dashes and final punctuation.
pub(crate) fn clean_clause(text: &str) -> String {
    text.trim()
        .trim_start_matches(['-', '–', '—', ':', ','])
        .trim()
        .trim_matches(['"', '\'', '“', '”'])
        .trim_end_matches(['.', '!', '?'])
        .trim()
        .to_owned()
}

/// Removes `suffix` (lowercase) from the end of `text`, ignoring case.
pub(crate) fn strip_suffix_ci(text: &str, suffix: &str) -> String {
    let lower = text.to_lowercase();
    if lower.ends_with(suffix) && lower.len() == text.len() {
        text.get(..text.len() - suffix.len())
            .unwrap_or(text)
            .trim_end()
            .to_owned()
    } else {
        text.to_owned()
    }
}

/// Removes the first of `prefixes` (lowercase) that `text` starts with, ignoring case.
pub(crate) fn strip_prefix_ci<'a>(text: &'a str, prefixes: &[&str]) -> Option<&'a str> {
    let lower = text.to_lowercase();
    if lower.len() != text.len() {
        return None;
    }
    prefixes
        .iter()
        .find(|prefix| lower.starts_with(**prefix))
        .and_then(|prefix| text.get(prefix.len()..))
}

/// Upper-cases the first letter.
pub(crate) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A name for a tool argument: lowercase words joined by `_`.
pub(crate) fn snake(words: &[&str]) -> String {
    words
        .iter()
        .map(|word| word.to_lowercase())
        .collect::<Vec<_>>()
        .join("_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_one_edit_away_are_corrected_others_left() {
        assert_eq!(correct_typos("anlyse lifepo4"), "analyse lifepo4");
        assert_eq!(correct_typos("oxidaton states"), "oxidation states");
        assert_eq!(correct_typos("comapre a and b"), "compare a and b");
        assert_eq!(correct_typos("simlar ones"), "similar ones");
        assert_eq!(correct_typos("compute the sum"), "compute the sum");
        assert_eq!(correct_typos("a poem"), "a poem");
    }
}
