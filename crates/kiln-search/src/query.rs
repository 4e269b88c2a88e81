//! The user's query text: checked first (so syntax errors come back with a position) and
//! bounded (length, nesting, words), then rewritten for tantivy's parser (prefix words, colons
//! as text).

use std::fmt;

/// Longest accepted query, in bytes (the default of `Limits::max_bytes`).
pub const MAX_QUERY_BYTES: usize = 1000;

/// Bounds on a query, checked before it reaches tantivy's parser: a parser's time may grow
/// with nesting (tantivy 0.25's doubled per level), and every word is a posting list to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest query, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of parentheses.
    pub max_depth: usize,
    /// Most words (each word of a phrase and each `word*` counts; AND, OR, NOT do not).
    pub max_terms: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: MAX_QUERY_BYTES,
            max_depth: 8,
            max_terms: 32,
        }
    }
}

/// A query the user must fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    /// Byte offset in the query, when one place is at fault.
    pub position: Option<usize>,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(f, "{} (at position {p})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn err(message: impl Into<String>, position: Option<usize>) -> SyntaxError {
    SyntaxError {
        message: message.into(),
        position,
    }
}

/// A checked query: the text for tantivy's parser and the word prefixes (`word*`) taken out of
/// it, which become prefix queries of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub text: String,
    pub prefixes: Vec<String>,
}

/// Checks a query and rewrites it for tantivy's query parser:
/// - it must fit `limits` (the error points at the first byte, `(` or word past a limit);
/// - quotes and parentheses must balance (the error names the unmatched one);
/// - `word*` is taken out as a prefix (lower-cased, as the index is);
/// - a colon is text, not a field name (filters are separate parameters).
pub fn prepare(q: &str, limits: &Limits) -> Result<Prepared, SyntaxError> {
    if q.trim().is_empty() {
        return Err(err("the query is empty", None));
    }
    if q.len() > limits.max_bytes {
        return Err(err(
            format!("the query is longer than {} bytes", limits.max_bytes),
            Some(limits.max_bytes),
        ));
    }
    let mut open_quote: Option<usize> = None;
    let mut parens: Vec<usize> = Vec::new();
    for (i, c) in q.char_indices() {
        match c {
            '"' => open_quote = if open_quote.is_some() { None } else { Some(i) },
            '(' if open_quote.is_none() => {
                parens.push(i);
                if parens.len() > limits.max_depth {
                    return Err(err(
                        format!("parentheses nest deeper than {} levels", limits.max_depth),
                        Some(i),
                    ));
                }
            }
            ')' if open_quote.is_none() && parens.pop().is_none() => {
                return Err(err("`)` closes nothing", Some(i)));
            }
            _ => {}
        }
    }
    if let Some(i) = nth_word(q, limits.max_terms) {
        return Err(err(
            format!("the query has more than {} words", limits.max_terms),
            Some(i),
        ));
    }
    if let Some(i) = open_quote {
        return Err(err("this quote is never closed", Some(i)));
    }
    if let Some(i) = parens.pop() {
        return Err(err("this `(` is never closed", Some(i)));
    }
    let mut out = String::with_capacity(q.len() + 8);
    let mut prefixes = Vec::new();
    let mut in_quote = false;
    for token in split_keep(q) {
        if token.starts_with('"') || in_quote {
            in_quote ^= token.matches('"').count() % 2 == 1;
            out.push_str(token);
            continue;
        }
        let word = token.trim_end_matches('*');
        if token.ends_with('*') && !word.is_empty() && word.chars().all(char::is_alphanumeric) {
            prefixes.push(word.to_lowercase());
        } else {
            out.push_str(&token.replace(':', " "));
        }
    }
    Ok(Prepared {
        text: out.trim().to_string(),
        prefixes,
    })
}

/// Returns where the word after the first `n` starts, if there is one. Words are runs of
/// letters and digits, as the index's tokenizer cuts them; the operators AND, OR and NOT
/// outside quotes are not words.
fn nth_word(q: &str, n: usize) -> Option<usize> {
    let mut count = 0;
    let mut in_quote = false;
    let mut start: Option<usize> = None;
    for item in q.char_indices().map(Some).chain([None]) {
        let (i, c) = item.unwrap_or((q.len(), ' '));
        if c.is_alphanumeric() {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            let operator = !in_quote && matches!(&q[s..i], "AND" | "OR" | "NOT");
            if !operator {
                count += 1;
                if count > n {
                    return Some(s);
                }
            }
        }
        if c == '"' {
            in_quote = !in_quote;
        }
    }
    None
}

/// Splits on whitespace, keeping the whitespace as its own pieces.
fn split_keep(q: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in q.char_indices() {
        if c.is_whitespace() != in_space && i > start {
            out.push(&q[start..i]);
            start = i;
        }
        in_space = c.is_whitespace();
    }
    if start < q.len() {
        out.push(&q[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepare(q: &str) -> Result<Prepared, SyntaxError> {
        super::prepare(q, &Limits::default())
    }

    #[test]
    fn unbalanced_quotes_and_parentheses_are_located() {
        assert_eq!(
            prepare(r#"olivine "lithium"#).unwrap_err().position,
            Some(8)
        );
        assert_eq!(prepare("(a OR b").unwrap_err().position, Some(0));
        assert_eq!(prepare("a) b").unwrap_err().position, Some(1));
        assert_eq!(prepare("   ").unwrap_err().position, None);
        assert!(prepare(&"x".repeat(MAX_QUERY_BYTES + 1)).is_err());
        // Parentheses inside quotes are text.
        assert!(prepare(r#""Ca10(PO4" x"#).is_ok());
    }

    #[test]
    fn deep_nesting_and_many_words_are_refused_where_they_pass_the_limit() {
        let limits = Limits {
            max_bytes: 1000,
            max_depth: 3,
            max_terms: 4,
        };
        let p = |q: &str| super::prepare(q, &limits);
        assert!(p("(((a)))").is_ok());
        let e = p("a (b ((((c))))) d").unwrap_err();
        assert_eq!(e.position, Some(7), "the fourth `(`: {e}");
        assert!(e.message.contains("deeper than 3"), "{e}");
        // Inside quotes parentheses are text and do not nest.
        assert!(p(r#""((((x))))""#).is_ok());
        // Operators are not words; phrase words and prefixes are.
        assert!(p("a AND b OR c NOT d").is_ok());
        let e = p(r#"a b "c d" e*"#).unwrap_err();
        assert_eq!(e.position, Some(10), "`e` is the fifth word: {e}");
        assert_eq!(p("a b c d-e").unwrap_err().position, Some(8));
        // The default limits let ordinary queries through and stop the attacks of issue 13.
        let nested = |d: usize| format!("{}x{}", "(".repeat(d), ")".repeat(d));
        assert!(prepare(&nested(8)).is_ok());
        assert_eq!(prepare(&nested(31)).unwrap_err().position, Some(8));
        let words: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
        assert!(prepare(&words[..32].join(" ")).is_ok());
        assert!(prepare(&words.join(" ")).is_err());
    }

    #[test]
    fn prefixes_are_taken_out_and_colons_are_text() {
        let p = prepare("Lith* cathode").unwrap();
        assert_eq!(p.text, "cathode");
        assert_eq!(p.prefixes, ["lith"]);
        assert_eq!(prepare("note: olivine").unwrap().text, "note  olivine");
        let p = prepare(r#""olivine structure" Li*"#).unwrap();
        assert_eq!(p.text, r#""olivine structure""#);
        assert_eq!(p.prefixes, ["li"]);
        assert_eq!(prepare(r#""a: b""#).unwrap().text, r#""a: b""#);
    }
}
