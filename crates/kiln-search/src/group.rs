//! Hits grouped per session in two passes that never read the doc store: `top_sessions` ranks
//! sessions by their best document (session read from its fast-field ordinal, only for
//! documents that could still change the page), then `best_hits` scores only the documents
//! of the page's sessions (found through the session term's postings) and keeps the best few
//! of each. Both stop when the search's deadline passes.

use std::collections::HashMap;
use std::time::Instant;

use tantivy::query::Weight;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocAddress, DocId, DocSet, Score, Searcher, TERMINATED, Term};

/// Documents scored between two looks at the clock.
const CHECK_EVERY: u32 = 4096;

/// The search ran past its deadline.
#[derive(Debug)]
pub(crate) enum Stop {
    Late,
    Index(tantivy::TantivyError),
}

impl From<tantivy::TantivyError> for Stop {
    fn from(e: tantivy::TantivyError) -> Self {
        Stop::Index(e)
    }
}

impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Self {
        Stop::Index(e.into())
    }
}

/// Looks at the clock every `CHECK_EVERY` calls.
struct Clock {
    deadline: Option<Instant>,
    n: u32,
}

impl Clock {
    fn tick(&mut self) -> Result<(), Stop> {
        self.n = self.n.wrapping_add(1);
        if self.n.is_multiple_of(CHECK_EVERY) {
            self.now()?;
        }
        Ok(())
    }

    fn now(&self) -> Result<(), Stop> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(Stop::Late),
            _ => Ok(()),
        }
    }
}

/// Best first; ties by session (ordinals sort like the session ids they stand for).
fn ranked(a: &(Score, u64), b: &(Score, u64)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// The `k` best sessions of one segment by their best document.
struct SegmentSessions {
    k: usize,
    /// Sessions that may still be among the `k` best, with their best score so far.
    best: Vec<(Score, u64)>,
    /// Session ordinal → index in `best`.
    index: HashMap<u64, usize>,
    /// The `k`-th best (score, session) once `k` sessions were seen: a document ranking
    /// below it cannot change the `k` best (its session is either already above it or cannot
    /// climb past).
    bar: (Score, u64),
    /// The last session seen: neighbouring documents mostly share one.
    last: Option<(u64, usize)>,
}

impl SegmentSessions {
    fn new(k: usize) -> Self {
        Self {
            k,
            best: Vec::new(),
            index: HashMap::new(),
            bar: (Score::NEG_INFINITY, u64::MAX),
            last: None,
        }
    }

    fn collect(&mut self, ord: u64, score: Score) {
        let slot = match self.last {
            Some((o, i)) if o == ord => Some(i),
            _ => self.index.get(&ord).copied(),
        };
        match slot {
            Some(i) => {
                if score > self.best[i].0 {
                    self.best[i].0 = score;
                }
                self.last = Some((ord, i));
            }
            None => {
                let i = self.best.len();
                self.best.push((score, ord));
                self.index.insert(ord, i);
                self.last = Some((ord, i));
                if self.best.len() >= self.k.saturating_mul(2).max(64) {
                    self.shrink();
                }
            }
        }
    }

    /// Keeps the `k` best and raises the bar to the `k`-th.
    fn shrink(&mut self) {
        if self.best.len() > self.k {
            self.best.select_nth_unstable_by(self.k - 1, ranked);
            self.best.truncate(self.k);
        }
        if self.best.len() == self.k
            && let Some(kth) = self.best.iter().copied().max_by(ranked)
        {
            self.bar = kth;
        }
        self.index = self
            .best
            .iter()
            .enumerate()
            .map(|(i, (_, o))| (*o, i))
            .collect();
        self.last = None;
    }
}

/// The `k` best sessions matching `weight`, by their best document, best first (ties by id).
///
/// Every match is scored, but a session is looked up only for a document scoring at least
/// the `k`-th best session seen so far, and only the `k` best of each segment are named: a
/// thinly spread word costs a scoring pass, not a session lookup per match.
pub(crate) fn top_sessions(
    searcher: &Searcher,
    weight: &dyn Weight,
    field: &str,
    k: usize,
    deadline: Option<Instant>,
) -> Result<Vec<(String, Score)>, Stop> {
    let k = k.max(1);
    let mut clock = Clock { deadline, n: 0 };
    let mut all: HashMap<String, Score> = HashMap::new();
    for reader in searcher.segment_readers() {
        clock.now()?;
        let sessions = reader.fast_fields().str(field)?.ok_or_else(|| {
            tantivy::TantivyError::SchemaError(format!("{field} is not a fast field"))
        })?;
        let ords = sessions.ords();
        let alive = reader.alive_bitset();
        let mut seg = SegmentSessions::new(k);
        let mut scorer = weight.scorer(reader, 1.0)?;
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            let score = scorer.score();
            // Below the bar, or tied with it by a later session (constant-score queries such
            // as prefixes tie everywhere): nothing to do.
            if score >= seg.bar.0
                && alive.is_none_or(|a| a.is_alive(doc))
                && let Some(ord) = ords.first(doc)
                && (score > seg.bar.0 || ord < seg.bar.1)
            {
                seg.collect(ord, score);
            }
            clock.tick()?;
            doc = scorer.advance();
        }
        seg.shrink();
        seg.best.sort_unstable_by_key(|b| b.1);
        let wanted: Vec<u64> = seg.best.iter().map(|b| b.1).collect();
        let mut names = Vec::with_capacity(wanted.len());
        let resolved = sessions.dictionary().sorted_ords_to_term_cb(&wanted, |b| {
            names.push(String::from_utf8_lossy(b).into_owned());
        })?;
        if !resolved || names.len() != wanted.len() {
            return Err(Stop::Index(tantivy::TantivyError::InternalError(
                "session ordinals did not resolve".into(),
            )));
        }
        for (name, (score, _)) in names.into_iter().zip(seg.best) {
            let best = all.entry(name).or_insert(score);
            if score > *best {
                *best = score;
            }
        }
    }
    let mut out: Vec<(String, Score)> = all.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.truncate(k);
    Ok(out)
}

/// The best `per` documents of one session, best first once sorted.
#[derive(Default)]
struct Top {
    docs: Vec<(Score, DocAddress)>,
    /// The lowest score in `docs` once it is full.
    floor: Score,
}

impl Top {
    fn push(&mut self, per: usize, score: Score, addr: DocAddress) {
        if self.docs.len() < per {
            self.docs.push((score, addr));
            if self.docs.len() == per {
                self.floor = lowest(&self.docs).1;
            }
            return;
        }
        // Documents come in order, so on a tie the earlier one stays.
        if score <= self.floor {
            return;
        }
        let (i, _) = lowest(&self.docs);
        self.docs[i] = (score, addr);
        self.floor = lowest(&self.docs).1;
    }
}

/// The worst of `docs` (on a tie, the later document).
fn lowest(docs: &[(Score, DocAddress)]) -> (usize, Score) {
    docs.iter()
        .enumerate()
        .fold((0, Score::INFINITY), |worst, (i, (s, a))| {
            if *s < worst.1 || (*s == worst.1 && *a > docs[worst.0].1) {
                (i, *s)
            } else {
                worst
            }
        })
}

/// The best `per` documents matching `weight` of each of `page`'s sessions, in `page`'s order,
/// each best first (ties by document).
///
/// Only the page's sessions' documents are visited: their doc ids come from the session
/// term's postings, and the scorer is moved to each in turn, so the scores are exactly those
/// `top_sessions` ranked by, and sessions not on the page cost nothing.
pub(crate) fn best_hits(
    searcher: &Searcher,
    weight: &dyn Weight,
    field: Field,
    page: &[String],
    per: usize,
    deadline: Option<Instant>,
) -> Result<Vec<Vec<(Score, DocAddress)>>, Stop> {
    let per = per.max(1);
    let mut clock = Clock { deadline, n: 0 };
    let mut tops: Vec<Top> = page.iter().map(|_| Top::default()).collect();
    for (segment, reader) in searcher.segment_readers().iter().enumerate() {
        clock.now()?;
        let inverted = reader.inverted_index(field)?;
        // (doc, index in page), in doc order: the scorer only moves forward.
        let mut docs: Vec<(DocId, usize)> = Vec::new();
        let mut lists = 0;
        for (i, sid) in page.iter().enumerate() {
            let term = Term::from_field_text(field, sid);
            let Some(mut postings) = inverted.read_postings(&term, IndexRecordOption::Basic)?
            else {
                continue;
            };
            lists += 1;
            let mut d = postings.doc();
            while d != TERMINATED {
                docs.push((d, i));
                d = postings.advance();
            }
        }
        if docs.is_empty() {
            continue;
        }
        if lists > 1 {
            docs.sort_unstable_by_key(|d| d.0);
        }
        let segment = u32::try_from(segment).unwrap_or(u32::MAX);
        let alive = reader.alive_bitset();
        let mut scorer = weight.scorer(reader, 1.0)?;
        for (d, i) in docs {
            clock.tick()?;
            let mut at = scorer.doc();
            if at == TERMINATED {
                break;
            }
            if at < d {
                at = scorer.seek(d);
            }
            if at == d && alive.is_none_or(|a| a.is_alive(d)) {
                tops[i].push(per, scorer.score(), DocAddress::new(segment, d));
            }
        }
    }
    Ok(tops
        .into_iter()
        .map(|t| {
            let mut docs = t.docs;
            docs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            docs
        })
        .collect())
}

#[cfg(test)]
mod tests {
    //! Both passes against an exhaustive walk over a real index in a temp dir, several
    //! segments, many exact score ties and one session that repeats the word.

    use tantivy::collector::Count;
    use tantivy::query::{EnableScoring, Query, QueryParser};
    use tantivy::schema::{FAST, STORED, STRING, Schema, TEXT};
    use tantivy::{Index, doc};

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        index: Index,
        session: Field,
        text: Field,
    }

    /// 60 sessions over four segments; session `s07` says `zircon` 3,000 times; most
    /// `zircon` documents are one of a few texts, so many scores tie exactly.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Schema::builder();
        let session = b.add_text_field("session", STRING | STORED | FAST);
        let text = b.add_text_field("text", TEXT | STORED);
        let index = Index::create_in_dir(dir.path(), b.build()).unwrap();
        let mut w = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let texts = [
            "zircon",
            "zircon basalt",
            "zircon zircon basalt",
            "basalt olivine",
            "a long note about zircon and basalt and olivine",
        ];
        let mut x: u64 = 7;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as usize
        };
        for seg in 0..4 {
            for _ in 0..400 {
                let s = next() % 60;
                let t = texts[next() % texts.len()];
                w.add_document(doc!(session => format!("s{s:02}"), text => t))
                    .unwrap();
            }
            if seg == 1 {
                for i in 0..3000 {
                    let t = if i % 2 == 0 {
                        "zircon"
                    } else {
                        "zircon basalt"
                    };
                    w.add_document(doc!(session => "s07", text => t)).unwrap();
                }
            }
            w.commit().unwrap();
        }
        // A deleted document must not be counted.
        w.delete_term(Term::from_field_text(session, "s59"));
        w.commit().unwrap();
        Fixture {
            _dir: dir,
            index,
            session,
            text,
        }
    }

    impl Fixture {
        fn searcher(&self) -> Searcher {
            let searcher = self.index.reader().unwrap().searcher();
            assert!(searcher.segment_readers().len() >= 2, "several segments");
            searcher
        }

        fn query(&self, q: &str) -> Box<dyn Query> {
            QueryParser::for_index(&self.index, vec![self.text])
                .parse_query(q)
                .unwrap()
        }

        /// Every live match as (session, score, address), best first, ties by session then
        /// document: what the two passes must agree with.
        fn exhaustive(&self, q: &str) -> Vec<(String, Score, DocAddress)> {
            let searcher = self.searcher();
            let weight = self
                .query(q)
                .weight(EnableScoring::enabled_from_searcher(&searcher))
                .unwrap();
            let mut all = Vec::new();
            for (seg, reader) in searcher.segment_readers().iter().enumerate() {
                let col = reader.fast_fields().str("session").unwrap().unwrap();
                let mut scorer = weight.scorer(reader, 1.0).unwrap();
                let mut d = scorer.doc();
                while d != TERMINATED {
                    if reader.alive_bitset().is_none_or(|a| a.is_alive(d)) {
                        let mut name = String::new();
                        col.ord_to_str(col.ords().first(d).unwrap(), &mut name)
                            .unwrap();
                        all.push((name, scorer.score(), DocAddress::new(seg as u32, d)));
                    }
                    d = scorer.advance();
                }
            }
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)).then(a.2.cmp(&b.2)));
            all
        }
    }

    fn ranking(all: &[(String, Score, DocAddress)]) -> Vec<(String, Score)> {
        let mut out: Vec<(String, Score)> = Vec::new();
        for (s, score, _) in all {
            if !out.iter().any(|(o, _)| o == s) {
                out.push((s.clone(), *score));
            }
        }
        out
    }

    #[test]
    fn sessions_are_ranked_as_an_exhaustive_walk_ranks_them() {
        let f = fixture();
        let searcher = f.searcher();
        for q in [
            "zircon",
            "basalt",
            "zircon basalt",
            "\"zircon basalt\"",
            "olivine -zircon",
        ] {
            let all = ranking(&f.exhaustive(q));
            assert!(all.len() > 20, "{q}: {}", all.len());
            assert!(
                all.iter().all(|(s, _)| s != "s59"),
                "deleted documents stay out"
            );
            let weight = f
                .query(q)
                .weight(EnableScoring::enabled_from_searcher(&searcher))
                .unwrap();
            for k in [1, 2, 3, 5, 11, 40, 1000] {
                let got = top_sessions(&searcher, &*weight, "session", k, None).unwrap();
                let want: Vec<_> = all.iter().take(k).cloned().collect();
                assert_eq!(got, want, "{q}, k = {k}");
            }
        }
    }

    #[test]
    fn a_page_gets_each_of_its_sessions_best_documents_and_nothing_else() {
        let f = fixture();
        let searcher = f.searcher();
        for q in ["zircon", "zircon basalt", "olivine -zircon"] {
            let all = f.exhaustive(q);
            let weight = f
                .query(q)
                .weight(EnableScoring::enabled_from_searcher(&searcher))
                .unwrap();
            let page: Vec<String> = vec!["s07".into(), "s03".into(), "s59".into(), "s44".into()];
            for per in [1, 3, 5] {
                let got = best_hits(&searcher, &*weight, f.session, &page, per, None).unwrap();
                assert_eq!(got.len(), page.len());
                for (sid, docs) in page.iter().zip(&got) {
                    let want: Vec<(Score, DocAddress)> = all
                        .iter()
                        .filter(|(s, _, _)| s == sid)
                        .take(per)
                        .map(|(_, score, a)| (*score, *a))
                        .collect();
                    assert_eq!(docs, &want, "{q}, {sid}, per = {per}");
                }
            }
        }
        // The busy session's 3,000 matches fill its hits and never another session's.
        let weight = f
            .query("zircon")
            .weight(EnableScoring::enabled_from_searcher(&searcher))
            .unwrap();
        let hits = best_hits(&searcher, &*weight, f.session, &["s07".into()], 5, None).unwrap();
        assert_eq!(hits[0].len(), 5);
        let ranked = top_sessions(&searcher, &*weight, "session", 10, None).unwrap();
        assert_eq!(ranked.len(), 10);
        assert!(searcher.search(&*f.query("zircon"), &Count).unwrap() > 3000);
    }

    #[test]
    fn a_deadline_already_past_stops_both_passes() {
        let f = fixture();
        let searcher = f.searcher();
        let weight = f
            .query("zircon")
            .weight(EnableScoring::enabled_from_searcher(&searcher))
            .unwrap();
        let past = Some(Instant::now());
        assert!(matches!(
            top_sessions(&searcher, &*weight, "session", 10, past),
            Err(Stop::Late)
        ));
        assert!(matches!(
            best_hits(&searcher, &*weight, f.session, &["s07".into()], 5, past),
            Err(Stop::Late)
        ));
    }
}
