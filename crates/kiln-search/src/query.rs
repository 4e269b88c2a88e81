//! The user's query text: checked first (so syntax errors come back with a position), then
//! rewritten for tantivy's parser (prefix words, colons as text).

use std::fmt;

/// Longest accepted query, in bytes.
pub const MAX_QUERY_BYTES: usize = 1000;

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
/// - quotes and parentheses must balance (the error names the unmatched one);
/// - `word*` is taken out as a prefix (lower-cased, as the index is);
/// - a colon is text, not a field name (filters are separate parameters).
pub fn prepare(q: &str) -> Result<Prepared, SyntaxError> {
    if q.trim().is_empty() {
        return Err(err("the query is empty", None));
    }
    if q.len() > MAX_QUERY_BYTES {
        return Err(err(
            format!("the query is longer than {MAX_QUERY_BYTES} bytes"),
            Some(MAX_QUERY_BYTES),
        ));
    }
    let mut open_quote: Option<usize> = None;
    let mut parens: Vec<usize> = Vec::new();
    for (i, c) in q.char_indices() {
        match c {
            '"' => open_quote = if open_quote.is_some() { None } else { Some(i) },
            '(' if open_quote.is_none() => parens.push(i),
            ')' if open_quote.is_none() && parens.pop().is_none() => {
                return Err(err("`)` closes nothing", Some(i)));
            }
            _ => {}
        }
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
