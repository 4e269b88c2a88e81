//! The placeholder syntax of session templates: `{name}` is replaced by the value of parameter
//! `name`, `{{` is a literal `{`, and nothing else is special (a `}` is always literal). Plain
//! substitution in one pass: no expressions, no filters, no loops, and a value is never read as
//! a template itself.

use std::collections::BTreeMap;

/// The longest parameter name.
pub(crate) const MAX_NAME: usize = 64;

/// One part of a template text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Param(&'a str),
}

/// Whether `s` can name a parameter: an ASCII letter or `_`, then letters, digits or `_`.
pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= MAX_NAME
}

/// Splits a text into literal runs and placeholders; a `{` that is neither `{{` nor the start
/// of `{name}` is an error naming its position.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('{') {
        if at > 0 {
            out.push(Piece::Text(&rest[..at]));
        }
        let after = &rest[at + 1..];
        if let Some(after_escape) = after.strip_prefix('{') {
            out.push(Piece::Text("{"));
            rest = after_escape;
            continue;
        }
        match after.find('}').map(|end| &after[..end]) {
            Some(name) if is_name(name) => {
                out.push(Piece::Param(name));
                rest = &after[name.len() + 1..];
            }
            _ => {
                let position = text[..text.len() - rest.len() + at].chars().count() + 1;
                return Err(format!(
                    "the `{{` at character {position} starts no `{{parameter}}`; write `{{{{` \
                     for a literal `{{`"
                ));
            }
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// The parameter names a text uses, in order (checking its syntax).
pub(crate) fn names(text: &str) -> Result<Vec<&str>, String> {
    Ok(pieces(text)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Param(name) => Some(name),
            Piece::Text(_) => None,
        })
        .collect())
}

/// Fills a text's placeholders from `values`; a name without a value is an error.
pub(crate) fn fill(text: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Param(name) => match values.get(name) {
                Some(v) => out.push_str(v),
                None => return Err(format!("`{{{name}}}` names no parameter of this template")),
            },
        }
    }
    Ok(out)
}

/// Escapes literal text so that it fills to itself.
pub(crate) fn escape(text: &str) -> String {
    text.replace('{', "{{")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("material".to_string(), "LiFePO4".to_string()),
            ("p".to_string(), "{material} {{ 7*7 }}".to_string()),
        ])
    }

    #[test]
    fn placeholders_fill_and_everything_else_is_text() {
        let v = values();
        for (text, want) in [
            ("{material} discovery", "LiFePO4 discovery"),
            ("{material}{material}", "LiFePO4LiFePO4"),
            ("no placeholders", "no placeholders"),
            ("", ""),
            ("{{material}", "{material}"),
            ("{{{material}", "{LiFePO4"),
            ("a } b }} c", "a } b }} c"),
            ("{{ 7*7 }}", "{ 7*7 }}"),
            ("{{% for i in range(9) %}", "{% for i in range(9) %}"),
            // A value is never read again, so template text in it stays text.
            ("[{p}]", "[{material} {{ 7*7 }}]"),
            ("é{material}ü", "éLiFePO4ü"),
        ] {
            assert_eq!(fill(text, &v).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn stray_braces_and_unknown_names_are_errors() {
        let v = values();
        for (text, says) in [
            ("{ material }", "character 1"),
            ("ab{", "character 3"),
            ("é{7}", "character 2"),
            ("{material", "character 1"),
            ("{}", "character 1"),
            ("{a-b}", "character 1"),
            ("{% if x %}", "character 1"),
            ("{unknown}", "`{unknown}` names no parameter"),
        ] {
            let err = fill(text, &v).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
        assert!(
            fill(&format!("{{{}}}", "a".repeat(MAX_NAME + 1)), &v).is_err(),
            "over-long names are not names"
        );
    }

    #[test]
    fn escaped_text_fills_to_itself() {
        for text in [
            "{{ 7*7 }}",
            "{x}",
            "{",
            "}{",
            "{{{",
            "plain",
            "{% for %}{{ a }}",
        ] {
            let escaped = escape(text);
            assert_eq!(names(&escaped), Ok(vec![]), "{text}");
            assert_eq!(fill(&escaped, &BTreeMap::new()).as_deref(), Ok(text));
        }
    }

    #[test]
    fn names_lists_placeholders_in_order() {
        assert_eq!(names("{b} {{a} {a} {_c9}"), Ok(vec!["b", "a", "_c9"]));
    }
}
