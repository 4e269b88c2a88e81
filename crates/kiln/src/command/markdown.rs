//! Agent answers in the terminal: the Markdown the agent writes (tables, emphasis, headings,
//! lists) rendered as aligned text, with bold and italics when stdout is a terminal. Streamed
//! text is rendered a line at a time, and a table once its last row has arrived.
//!
//! The text is passed through [`plain`] first, so the only escape sequences printed are the
//! renderer's own.

use super::output::plain;

const BOLD: &str = "\x1b[1m";
const ITALIC: &str = "\x1b[3m";
const RESET: &str = "\x1b[0m";

/// Renders streamed Markdown: feed it with [`Stream::push`], end with [`Stream::finish`].
#[derive(Debug, Default)]
pub struct Stream {
    /// Styles with ANSI bold and italics (a terminal); otherwise the markers are dropped.
    style: bool,
    /// The line being received.
    pending: String,
    /// The rows of a table being received.
    table: Vec<String>,
}

impl Stream {
    pub fn new(style: bool) -> Self {
        Stream {
            style,
            ..Stream::default()
        }
    }

    /// Takes the next piece of the answer; returns what can be printed now.
    pub fn push(&mut self, text: &str) -> String {
        self.pending.push_str(&plain(text));
        let mut out = String::new();
        while let Some(end) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=end).collect();
            self.line(line.trim_end_matches(['\n', '\r']), &mut out);
        }
        out
    }

    /// The rest of the answer, at its end.
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.line(&line, &mut out);
        }
        self.flush_table(&mut out);
        out
    }

    fn line(&mut self, line: &str, out: &mut String) {
        if line.trim_start().starts_with('|') {
            self.table.push(line.trim().to_owned());
            return;
        }
        self.flush_table(out);
        out.push_str(&block_line(line, self.style));
        out.push('\n');
    }

    fn flush_table(&mut self, out: &mut String) {
        if self.table.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.table);
        out.push_str(&table(&rows, self.style));
    }
}

/// Renders a whole Markdown text at once.
#[cfg(test)]
pub fn render(text: &str, style: bool) -> String {
    let mut s = Stream::new(style);
    let mut out = s.push(text);
    out.push_str(&s.finish());
    out
}

/// One line outside a table: headings in bold, list markers as bullets, inline emphasis.
fn block_line(line: &str, style: bool) -> String {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    let hashes = trimmed.chars().take_while(|&c| c == '#').count();
    if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
        let title = inline(trimmed[hashes..].trim(), false);
        return if style {
            format!("{BOLD}{title}{RESET}")
        } else {
            title
        };
    }
    for marker in ["- ", "* ", "+ "] {
        if let Some(rest) = trimmed.strip_prefix(marker) {
            return format!("{indent}• {}", inline(rest, style));
        }
    }
    if trimmed.chars().all(|c| matches!(c, '-' | '*' | '_' | ' ')) && trimmed.len() >= 3 {
        return "─".repeat(40);
    }
    format!("{indent}{}", inline(trimmed, style))
}

/// `**bold**`, `__bold__`, `*italic*`, `_italic_` and `` `code` `` in a line: styled, or with
/// their markers dropped. A marker only opens before a non-space and closes after one, so
/// `2 * 3 * 4` and snake_case names stay as written.
fn inline(text: &str, style: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`'
            && let Some(end) = find(&chars, i + 1, &['`'])
        {
            out.extend(&chars[i + 1..end]);
            i = end + 1;
            continue;
        }
        if c == '*' || c == '_' {
            let double = chars.get(i + 1) == Some(&c);
            let marker: &[char] = if double { &[c, c] } else { &[c] };
            let start = i + marker.len();
            let opens = chars.get(start).is_some_and(|n| !n.is_whitespace())
                && (i == 0 || !chars[i - 1].is_alphanumeric());
            if opens
                && let Some(end) = find(&chars, start, marker)
                && !chars[end - 1].is_whitespace()
                && chars
                    .get(end + marker.len())
                    .is_none_or(|n| !n.is_alphanumeric())
            {
                let inner = inline(&chars[start..end].iter().collect::<String>(), style);
                if style {
                    let on = if double { BOLD } else { ITALIC };
                    out.push_str(&format!("{on}{inner}{RESET}"));
                } else {
                    out.push_str(&inner);
                }
                i = end + marker.len();
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Where `marker` next occurs in `chars` from `from`.
fn find(chars: &[char], from: usize, marker: &[char]) -> Option<usize> {
    (from..chars.len().saturating_sub(marker.len() - 1)).find(|&j| chars[j..].starts_with(marker))
}

/// A Markdown table as aligned columns: the header in bold (or underlined by a rule), the
/// alignment row dropped, numbers right-aligned where the table says so.
fn table(rows: &[String], style: bool) -> String {
    let cells = |row: &str| -> Vec<String> {
        let inner = row.trim().trim_start_matches('|');
        let inner = inner.strip_suffix('|').unwrap_or(inner);
        let mut out = Vec::new();
        let mut cell = String::new();
        let mut escaped = false;
        for c in inner.chars() {
            match c {
                '\\' if !escaped => escaped = true,
                '|' if !escaped => out.push(std::mem::take(&mut cell)),
                _ => {
                    if escaped && c != '|' {
                        cell.push('\\');
                    }
                    escaped = false;
                    cell.push(c);
                }
            }
        }
        out.push(cell);
        out.into_iter().map(|c| c.trim().to_owned()).collect()
    };
    let is_rule = |row: &[String]| {
        !row.is_empty()
            && row.iter().all(|c| {
                !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')) && c.contains('-')
            })
    };
    let parsed: Vec<Vec<String>> = rows.iter().map(|r| cells(r)).collect();
    let rule = parsed.iter().position(|r| is_rule(r));
    let right: Vec<bool> = match rule {
        Some(i) => parsed[i]
            .iter()
            .map(|c| c.ends_with(':') && !c.starts_with(':'))
            .collect(),
        None => Vec::new(),
    };
    let body: Vec<(bool, Vec<String>)> = parsed
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != rule)
        .map(|(i, r)| {
            let header = rule.is_some_and(|k| i < k);
            (header, r.iter().map(|c| inline(c, false)).collect())
        })
        .collect();
    let columns = body.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for (_, r) in &body {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for (header, r) in &body {
        let mut line = String::new();
        for (k, w) in widths.iter().enumerate() {
            let c = r.get(k).map_or("", String::as_str);
            let pad = " ".repeat(w - c.chars().count());
            if k > 0 {
                line.push_str("  ");
            }
            if right.get(k).copied().unwrap_or(false) {
                line.push_str(&pad);
                line.push_str(c);
            } else {
                line.push_str(c);
                if k + 1 < columns {
                    line.push_str(&pad);
                }
            }
        }
        let line = line.trim_end();
        if *header && style {
            out.push_str(&format!("{BOLD}{line}{RESET}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
        if *header && !style {
            let total = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
            out.push_str(&"─".repeat(total));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "**Suggested next experiments** (qEI):\n\n\
        | # | temperature (°C) | time (h) | predicted capacity |\n\
        |---|---:|---:|---|\n\
        | 1 | 712 | 4.5 | 150 ± 6 |\n\
        | 2 | 850 | 10.0 | 141 ± 12 |\n\
        \nRun them and tell me the results.";

    #[test]
    fn tables_become_aligned_columns_without_pipes() {
        let out = render(ANSWER, false);
        assert!(!out.contains('|'), "{out}");
        assert!(!out.contains("---"), "{out}");
        assert!(!out.contains("**"), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        let header = lines.iter().position(|l| l.starts_with('#')).unwrap();
        assert!(
            lines[header + 1].starts_with("───"),
            "a rule under the header: {out}"
        );
        let (a, b) = (lines[header + 2], lines[header + 3]);
        assert_eq!(a.find("712"), b.find("850"), "columns align:\n{out}");
        // Right-aligned numbers end in the same column.
        assert_eq!(
            a.find("4.5").map(|i| i + 3),
            b.find("10.0").map(|i| i + 4),
            "{out}"
        );
        assert!(
            out.starts_with("Suggested next experiments (qEI):"),
            "{out}"
        );
        assert!(
            out.trim_end()
                .ends_with("Run them and tell me the results.")
        );
    }

    #[test]
    fn a_terminal_gets_bold_and_italics() {
        let out = render("**LiFePO4** is *valid*; see `notes`", true);
        assert_eq!(
            out,
            "\x1b[1mLiFePO4\x1b[0m is \x1b[3mvalid\x1b[0m; see notes\n"
        );
        let head = render("## Results\n- one\n- **two**", true);
        assert_eq!(head, "\x1b[1mResults\x1b[0m\n• one\n• \x1b[1mtwo\x1b[0m\n");
    }

    #[test]
    fn arithmetic_and_names_are_not_emphasis() {
        for text in ["2 * 3 * 4 = 24", "snake_case_name", "a * b", "5*x"] {
            assert_eq!(render(text, false), format!("{text}\n"), "{text}");
        }
    }

    #[test]
    fn streamed_in_any_pieces_it_renders_as_a_whole() {
        let whole = render(ANSWER, true);
        for size in [1, 2, 3, 7, 13] {
            let mut s = Stream::new(true);
            let chars: Vec<char> = ANSWER.chars().collect();
            let mut out = String::new();
            for piece in chars.chunks(size) {
                out.push_str(&s.push(&piece.iter().collect::<String>()));
            }
            out.push_str(&s.finish());
            assert_eq!(out, whole, "pieces of {size}");
        }
    }

    #[test]
    fn the_models_escape_sequences_never_reach_the_terminal() {
        let out = render(
            "**a**\x1b]0;owned\x07 \x1b[2J| x\x1b[31m |\n|---|\n| 1 |",
            true,
        );
        let ours = out.replace(BOLD, "").replace(RESET, "").replace(ITALIC, "");
        assert!(!ours.contains('\x1b'), "{ours:?}");
        assert!(!ours.contains('\x07'), "{ours:?}");
    }
}
