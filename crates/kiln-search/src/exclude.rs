//! Excluded clauses (`-word`, `-"a phrase"`) checked with plain seeks: tantivy 0.27 tests an
//! exclusion with `seek_danger`, and its phrase scorer asserts (debug builds only) an order
//! that `seek_danger` itself does not promise, so `b -"olivine cathode"` panicked there. A
//! wrapped clause answers `seek_danger` with `DocSet`'s default, built on `seek`, which always
//! leaves the scorer valid. Excluded clauses are never scored, so nothing else changes.

use tantivy::query::{BooleanQuery, EnableScoring, Explanation, Occur, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, Term};

/// `q` with every excluded clause, at any depth of nested boolean queries, wrapped.
pub(crate) fn plain_exclusions(q: Box<dyn Query>) -> Box<dyn Query> {
    let Some(b) = q.downcast_ref::<BooleanQuery>() else {
        return q;
    };
    let clauses = b
        .clauses()
        .iter()
        .map(|(occur, sub)| {
            let sub = plain_exclusions(sub.box_clone());
            match occur {
                Occur::MustNot => (*occur, Box::new(PlainSeek(sub)) as Box<dyn Query>),
                _ => (*occur, sub),
            }
        })
        .collect();
    Box::new(BooleanQuery::with_minimum_required_clauses(
        clauses,
        b.get_minimum_number_should_match(),
    ))
}

/// A query whose scorers answer `seek_danger` through `seek`.
#[derive(Debug)]
struct PlainSeek(Box<dyn Query>);

impl Clone for PlainSeek {
    fn clone(&self) -> Self {
        PlainSeek(self.0.box_clone())
    }
}

impl Query for PlainSeek {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(PlainWeight(self.0.weight(scoring)?)))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.0.query_terms(visitor);
    }
}

struct PlainWeight(Box<dyn Weight>);

impl Weight for PlainWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(PlainScorer(self.0.scorer(reader, boost)?)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.0.explain(reader, doc)
    }
}

struct PlainScorer(Box<dyn Scorer>);

impl DocSet for PlainScorer {
    fn advance(&mut self) -> DocId {
        self.0.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.0.seek(target)
    }

    fn doc(&self) -> DocId {
        self.0.doc()
    }

    fn size_hint(&self) -> u32 {
        self.0.size_hint()
    }

    fn cost(&self) -> u64 {
        self.0.cost()
    }
}

impl Scorer for PlainScorer {
    fn score(&mut self) -> Score {
        self.0.score()
    }
}

#[cfg(test)]
mod tests {
    use tantivy::collector::{Count, TopDocs};
    use tantivy::query::QueryParser;
    use tantivy::schema::{Schema, TEXT};
    use tantivy::{Index, doc};

    use super::*;

    /// The fuzz target's corpus, in a temp dir.
    fn index() -> (tempfile::TempDir, Index, tantivy::schema::Field) {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Schema::builder();
        let text = b.add_text_field("text", TEXT);
        let index = Index::create_in_dir(dir.path(), b.build()).unwrap();
        let mut w = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for t in [
            "olivine LiFePO4 cathode",
            "band gap of perovskite CsPbI3",
            "a b c",
            "b olivine cathode",
            "b cathode olivine",
        ] {
            w.add_document(doc!(text => t)).unwrap();
        }
        w.commit().unwrap();
        (dir, index, text)
    }

    #[test]
    fn an_excluded_phrase_excludes_without_panicking() {
        let (_dir, index, text) = index();
        let searcher = index.reader().unwrap().searcher();
        let mut parser = QueryParser::for_index(&index, vec![text]);
        parser.set_conjunction_by_default();
        for (q, want) in [
            // Found by the fuzz target: a panic in debug builds before the wrapping.
            (r#"b -"olivine cathode""#, vec![2, 4]),
            (r#"b -"olivine LiFePO4""#, vec![2, 3, 4]),
            (r#"b -("cathode olivine" a)"#, vec![2, 3, 4]),
            (r#"b -"cathode olivine" -c"#, vec![3]),
            ("b -olivine", vec![2]),
        ] {
            let query = plain_exclusions(parser.parse_query(q).unwrap());
            let mut got: Vec<u32> = searcher
                .search(&*query, &TopDocs::with_limit(10).order_by_score())
                .unwrap()
                .into_iter()
                .map(|(_, a)| a.doc_id)
                .collect();
            got.sort_unstable();
            assert_eq!(got, want, "{q}");
            assert_eq!(searcher.search(&*query, &Count).unwrap(), want.len(), "{q}");
        }
    }
}
