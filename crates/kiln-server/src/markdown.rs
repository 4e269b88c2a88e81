//! Messages as Markdown on the pages: CommonMark with tables, strikethrough and task lists
//! (pulldown-cmark), raw HTML kept as text, and the result sanitised again (ammonia) so no
//! message, whoever wrote it, can put markup or script on a page.

use std::collections::HashSet;
use std::sync::OnceLock;

use pulldown_cmark::{Event, Options, Parser, TagEnd, html};

/// The sanitiser: ammonia's safe defaults, links only to web and mail addresses, every link
/// marked as not endorsed and opened apart from the page.
fn cleaner() -> &'static ammonia::Builder<'static> {
    static CLEANER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    CLEANER.get_or_init(|| {
        let mut b = ammonia::Builder::default();
        b.url_schemes(HashSet::from(["http", "https", "mailto"]))
            .link_rel(Some("noopener noreferrer nofollow"))
            .add_tag_attributes("input", ["type", "checked", "disabled"])
            .add_tags(["input"]);
        b
    })
}

/// `text` as sanitised HTML. Raw HTML in the source shows as the text it is; tables come
/// wrapped in a horizontally scrolling box so a wide one never breaks a number on a phone.
pub fn to_html(text: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(text, options).map(|ev| match ev {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    html::push_html(&mut out, events);
    let clean = cleaner().clean(&out).to_string();
    // After sanitising, `<table>` can only be a real table: text `<table>` is escaped.
    clean
        .replace("<table>", "<div class=\"scroll\"><table>")
        .replace("</table>", "</table></div>")
}

/// `text` as one line of plain text: the Markdown's words without its marks (search snippets,
/// folded summaries, tool card headings).
pub fn to_plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ev in Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
        match ev {
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                out.push_str(&t)
            }
            Event::SoftBreak
            | Event::HardBreak
            | Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_)
                | TagEnd::TableCell
                | TagEnd::TableRow
                | TagEnd::TableHead,
            ) if !out.ends_with(' ') && !out.is_empty() => out.push(' '),
            _ => {}
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_lists_tables_code_and_links_render() {
        let html = to_html(
            "# Result\n\n- one\n- **two**\n\n| a | b |\n|---|---|\n| 1.5 | 2 |\n\n```\nx = 1\n```\n\n[docs](https://example.org)",
        );
        assert!(html.contains("<h1>Result</h1>"), "{html}");
        assert!(html.contains("<li><strong>two</strong></li>"), "{html}");
        assert!(html.contains("<div class=\"scroll\"><table>"), "{html}");
        assert!(html.contains("<td>1.5</td>"), "{html}");
        assert!(html.contains("<pre><code>x = 1\n</code></pre>"), "{html}");
        assert!(
            html.contains(
                "<a href=\"https://example.org\" rel=\"noopener noreferrer nofollow\">docs</a>"
            ),
            "{html}"
        );
    }

    #[test]
    fn raw_html_and_script_never_reach_the_page() {
        for attack in [
            "<script>alert(1)</script>",
            "hello <img src=x onerror=alert(1)>",
            "[x](javascript:alert(1))",
            "<a href=\"javascript:alert(1)\">x</a>",
            "![p](data:text/html;base64,PHNjcmlwdD4=)",
            "<iframe src=//evil></iframe>",
            "<style>body{display:none}</style>",
        ] {
            let html = to_html(attack);
            // Text is escaped, so every `<` left opens a real tag: check the tags.
            for tag in html
                .split('<')
                .skip(1)
                .map(|t| t.split('>').next().unwrap_or(""))
            {
                let tag = tag.to_ascii_lowercase();
                for bad in [
                    "script",
                    "iframe",
                    "style",
                    "javascript:",
                    "data:",
                    "onerror",
                ] {
                    assert!(!tag.contains(bad), "{attack} -> {html}");
                }
            }
        }
        // The raw HTML shows as text the reader can see.
        assert!(to_html("<b>bold?</b>").contains("&lt;b&gt;bold?&lt;/b&gt;"));
    }

    #[test]
    fn a_table_made_of_text_is_not_wrapped() {
        let html = to_html("`<table>` and &lt;table&gt;");
        assert!(!html.contains("class=\"scroll\""), "{html}");
    }

    #[test]
    fn plain_keeps_the_words() {
        assert_eq!(
            to_plain("## Done\n\nLiFePO4 is **valid** (`157.755` g/mol)."),
            "Done LiFePO4 is valid (157.755 g/mol)."
        );
    }
}
