//! Printing results: aligned plain-text tables for people, JSON for programs.

use serde::Serialize;

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
    out
}

/// Shortens text to `max` characters on one line, marking the cut with `…`.
pub fn clip(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
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
    fn clip_cuts_on_characters_not_bytes() {
        assert_eq!(clip("héllo wörld", 6), "héllo…");
        assert_eq!(clip("a\nb", 10), "a b");
        assert_eq!(short("0193abcd-ef"), "0193abcd");
        assert_eq!(short("ab"), "ab");
    }
}
