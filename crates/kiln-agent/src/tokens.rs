//! Token counting with a real tokenizer (tiktoken's cl100k_base, ranks embedded in the
//! binary), loaded once per process.

use std::sync::{Mutex, OnceLock};

use kiln_llm::ChatMessage;
use tiktoken_rs::CoreBPE;

/// Tokens every chat message costs beyond its text (role and separators, as OpenAI counts).
pub const PER_MESSAGE: u32 = 4;

fn bpe() -> Option<&'static CoreBPE> {
    static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().ok()).as_ref()
}

/// Returns the number of tokens in `text`.
///
/// Falls back to four characters a token only if the embedded ranks failed to load, which
/// the tests rule out.
pub fn count(text: &str) -> u32 {
    let n = match bpe() {
        Some(b) => b.encode_ordinary(text).len(),
        None => text.len().div_ceil(4),
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Returns the tokens of a text that is the same on most calls (the system prompt), counting
/// it only when it changes.
pub fn count_cached(text: &str) -> u32 {
    static LAST: Mutex<Option<(String, u32)>> = Mutex::new(None);
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match last.as_ref() {
        Some((t, n)) if t == text => *n,
        _ => {
            let n = count(text);
            *last = Some((text.to_owned(), n));
            n
        }
    }
}

/// Returns the tokens one chat message costs in a request.
pub fn message(m: &ChatMessage) -> u32 {
    let text = m.text().map_or(0, count);
    let calls: u32 = m
        .tool_calls()
        .iter()
        .map(|c| count(&c.name) + count(&c.arguments) + 3)
        .sum();
    PER_MESSAGE + text + calls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_with_the_real_tokenizer() {
        assert!(
            bpe().is_some(),
            "cl100k_base must load from the embedded ranks"
        );
        // Known cl100k_base counts.
        assert_eq!(count("hello world"), 2);
        assert_eq!(count(""), 0);
        let long = "LiFePO4 ".repeat(100);
        assert!(count(&long) > 100);
        assert_eq!(message(&ChatMessage::user("hello world")), PER_MESSAGE + 2);
        assert_eq!(count_cached("hello world"), 2);
        assert_eq!(count_cached("hello world"), 2);
        assert_eq!(count_cached(&long), count(&long));
    }
}
