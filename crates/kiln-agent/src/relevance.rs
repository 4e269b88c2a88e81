//! Lexical relevance between a query and a text: the share of the query's content words the
//! text contains, in 0..=1. Used for past findings in the context window and by the session
//! search tool until the full-text index takes over.

use std::collections::BTreeSet;

const STOPWORDS: &[&str] = &[
    "the", "and", "for", "are", "was", "were", "with", "what", "about", "this", "that", "these",
    "those", "its", "it's", "from", "into", "show", "tell", "have", "has", "had", "not", "but",
    "can", "could", "would", "should", "there", "their", "them", "they", "you", "your", "our",
    "how", "why", "when", "where", "which", "who", "does", "did", "any", "some", "more", "most",
    "than", "then", "also", "seems", "seem", "like", "very", "much", "many", "me", "my", "is",
    "of", "to", "in", "on", "a", "an", "as", "at", "by", "be", "or", "it", "we", "i",
];

/// Returns the content words of `text`: lowercase alphanumeric runs (keeping `+`, `-` inside
/// species such as `Li+`), two or more characters, without stopwords.
pub fn terms(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '+' || c == '-'))
        .map(|w| w.trim_matches('-').to_lowercase())
        .filter(|w| w.chars().count() >= 2 && !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// Returns the share of the query's terms found in `text` (0 when the query has none).
pub fn score(query_terms: &BTreeSet<String>, text: &str) -> f64 {
    if query_terms.is_empty() {
        return 0.0;
    }
    let have = terms(text);
    let hits = query_terms.iter().filter(|t| have.contains(*t)).count();
    hits as f64 / query_terms.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_the_share_of_query_terms() {
        let q = terms("Why is the olivine structure good for Li+ mobility?");
        assert!(q.contains("olivine") && q.contains("li+") && !q.contains("the"));
        let full = score(
            &q,
            "The olivine structure seems crucial for Li+ mobility; good.",
        );
        assert!((full - 1.0).abs() < 1e-9, "{full}");
        let part = score(&q, "olivine phosphates");
        assert!(part > 0.0 && part < 0.5, "{part}");
        assert_eq!(score(&q, "nothing relevant here"), 0.0);
        assert_eq!(score(&terms("the and of"), "anything"), 0.0);
    }
}
