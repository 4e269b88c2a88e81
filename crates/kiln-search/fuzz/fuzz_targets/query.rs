//! Fuzz target: any query text is either refused by `query::prepare` with a position inside
//! it, or prepared into text that tantivy's parser (exact and with one typo allowed, as a
//! search uses it) parses and runs without panicking, within libFuzzer's timeout.
#![no_main]

use std::sync::LazyLock;

use kiln_search::query::{Limits, prepare};
use libfuzzer_sys::fuzz_target;
use tantivy::collector::Count;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, Schema, TEXT};
use tantivy::{Index, IndexReader, doc};

struct Fixture {
    index: Index,
    reader: IndexReader,
    text: Field,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let mut b = Schema::builder();
    let text = b.add_text_field("text", TEXT);
    let index = Index::create_in_ram(b.build());
    let mut w = index.writer_with_num_threads(1, 15_000_000).unwrap();
    for t in ["olivine LiFePO4 cathode", "band gap of perovskite CsPbI3", "a b c"] {
        w.add_document(doc!(text => t)).unwrap();
    }
    w.commit().unwrap();
    let reader = index.reader().unwrap();
    Fixture {
        index,
        reader,
        text,
    }
});

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let f = &*FIXTURE;
    match prepare(q, &Limits::default()) {
        Err(e) => assert!(e.position.is_none_or(|p| p <= q.len()), "{e} for {q:?}"),
        Ok(p) => {
            assert!(
                p.prefixes
                    .iter()
                    .all(|w| !w.is_empty() && w.chars().all(char::is_alphanumeric)),
                "{p:?}"
            );
            if p.text.is_empty() {
                return;
            }
            let searcher = f.reader.searcher();
            let mut parser = QueryParser::for_index(&f.index, vec![f.text]);
            parser.set_conjunction_by_default();
            if let Ok(query) = parser.parse_query(&p.text) {
                let _ = searcher.search(&*query, &Count);
            }
            parser.set_field_fuzzy(f.text, false, 1, true);
            if let Ok(query) = parser.parse_query(&p.text) {
                let _ = searcher.search(&*query, &Count);
            }
        }
    }
});
