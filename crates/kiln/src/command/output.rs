//! Printing results: aligned plain-text tables for people, JSON for programs. Everything
//! printed for people passes through [`plain`], so a session name or a message cannot carry
//! terminal escape sequences (recolouring, moving the cursor, rewriting the title, hiding text)
//! onto the reader's screen.

use std::borrow::Cow;

use serde::Serialize;

/// `text` without terminal control characters: C0 controls but newline and tab (so ESC, BEL,
/// backspace, carriage return), DEL, and the C1 controls (U+0080 to U+009F, CSI among them).
pub fn plain(text: &str) -> Cow<'_, str> {
    let control =
        |c: char| (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c);
    if text.chars().any(control) {
        Cow::Owned(text.chars().filter(|c| !control(*c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// `println!` for people: the text is passed through [`plain`].
macro_rules! outln {
    () => { println!() };
    ($($t:tt)*) => { println!("{}", $crate::command::output::plain(&format!($($t)*))) };
}

/// `print!` for people: the text is passed through [`plain`].
macro_rules! out {
    ($($t:tt)*) => { print!("{}", $crate::command::output::plain(&format!($($t)*))) };
}

/// `eprintln!` for people: the text is passed through [`plain`].
macro_rules! errln {
    () => { eprintln!() };
    ($($t:tt)*) => { eprintln!("{}", $crate::command::output::plain(&format!($($t)*))) };
}

pub(crate) use {errln, out, outln};

/// Prints a value as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Renders rows under headers with columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    plain(&out).into_owned()
}

/// Shortens text to `max` characters on one line, marking the cut with `…`.
pub fn clip(text: &str, max: usize) -> String {
    let one_line = plain(&text.replace(['\n', '\r'], " ")).into_owned();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut s: String = one_line.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Returns the first 8 characters of an id, enough to name it on the command line.
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_to_the_widest_cell() {
        let t = table(
            &["id", "name"],
            &[
                vec!["1".into(), "alpha".into()],
                vec!["22222".into(), "b".into()],
            ],
        );
        assert_eq!(t, "id     name\n1      alpha\n22222  b\n");
    }

    #[test]
    fn terminal_controls_never_reach_the_screen() {
        let hostile = "ok\x1b]0;pwned\x07\x1b[2J\x1b[31mred\r\x08\x7f\u{9b}31m\u{85}é\tend\n";
        assert_eq!(plain(hostile), "ok]0;pwned[2J[31mred31mé\tend\n");
        assert!(matches!(plain("plain text\n"), Cow::Borrowed(_)));
        let t = table(&["name"], &[vec!["\x1b[8mhidden".into()]]);
        assert!(!t.contains('\x1b'), "{t:?}");
        assert!(!clip("a\x1b[1mb", 10).contains('\x1b'));
    }

    #[test]
    fn clip_cuts_on_characters_not_bytes() {
        assert_eq!(clip("héllo wörld", 6), "héllo…");
        assert_eq!(clip("a\nb", 10), "a b");
        assert_eq!(short("0193abcd-ef"), "0193abcd");
        assert_eq!(short("ab"), "ab");
    }
}
