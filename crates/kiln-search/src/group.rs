//! Hits grouped per session in one pass: a collector that keeps the best `per` documents of
//! each session, reading the session from its fast-field ordinal (never the doc store), and
//! that stops when the search's deadline passes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::query::Weight;
use tantivy::{DocAddress, DocId, DocSet, Score, SegmentOrdinal, SegmentReader, TERMINATED};

/// Documents scored between two looks at the clock.
const CHECK_EVERY: u32 = 4096;

/// The best documents of each session, best first.
pub(crate) type Groups = HashMap<String, Vec<(Score, DocAddress)>>;

/// Keeps the best `per` documents of every session that matches.
pub(crate) struct GroupTop {
    field: &'static str,
    per: usize,
    deadline: Option<Instant>,
    late: AtomicBool,
}

impl GroupTop {
    pub(crate) fn new(field: &'static str, per: usize, deadline: Option<Instant>) -> Self {
        Self {
            field,
            per: per.max(1),
            deadline,
            late: AtomicBool::new(false),
        }
    }

    /// Whether the search was stopped by its deadline.
    pub(crate) fn timed_out(&self) -> bool {
        self.late.load(Ordering::Relaxed)
    }

    fn check(&self) -> tantivy::Result<()> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.late.store(true, Ordering::Relaxed);
            return Err(tantivy::TantivyError::SystemError(
                "the search passed its deadline".into(),
            ));
        }
        Ok(())
    }
}

/// The best `per` documents of one session in one segment.
#[derive(Default)]
struct Top {
    docs: Vec<(Score, DocId)>,
    /// The lowest score in `docs` once it is full.
    floor: Score,
}

impl Top {
    fn push(&mut self, per: usize, doc: DocId, score: Score) {
        if self.docs.len() < per {
            self.docs.push((score, doc));
            if self.docs.len() == per {
                self.floor = lowest(&self.docs).1;
            }
            return;
        }
        if score <= self.floor {
            return;
        }
        let (i, _) = lowest(&self.docs);
        self.docs[i] = (score, doc);
        self.floor = lowest(&self.docs).1;
    }
}

fn lowest(docs: &[(Score, DocId)]) -> (usize, Score) {
    docs.iter()
        .enumerate()
        .fold((0, Score::INFINITY), |best, (i, (s, _))| {
            if *s < best.1 { (i, *s) } else { best }
        })
}

pub(crate) struct GroupSegment {
    segment: SegmentOrdinal,
    sessions: StrColumn,
    per: usize,
    /// Session ordinal → index in `tops`.
    index: HashMap<u64, usize>,
    tops: Vec<(u64, Top)>,
    /// The last session seen: neighbouring documents mostly share one.
    last: Option<(u64, usize)>,
}

impl SegmentCollector for GroupSegment {
    type Fruit = Vec<(String, Vec<(Score, DocAddress)>)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        let Some(ord) = self.sessions.ords().first(doc) else {
            return;
        };
        let slot = match self.last {
            Some((o, i)) if o == ord => i,
            _ => {
                let next = self.tops.len();
                let i = *self.index.entry(ord).or_insert(next);
                if i == next {
                    self.tops.push((ord, Top::default()));
                }
                self.last = Some((ord, i));
                i
            }
        };
        self.tops[slot].1.push(self.per, doc, score);
    }

    fn harvest(mut self) -> Self::Fruit {
        // Ordinals are resolved in one ordered pass over the segment's session dictionary.
        self.tops.sort_unstable_by_key(|(ord, _)| *ord);
        let ords: Vec<u64> = self.tops.iter().map(|(o, _)| *o).collect();
        let mut names = Vec::with_capacity(ords.len());
        let resolved = self
            .sessions
            .dictionary()
            .sorted_ords_to_term_cb(&ords, |b| {
                names.push(String::from_utf8_lossy(b).into_owned());
            });
        if !matches!(resolved, Ok(true)) || names.len() != self.tops.len() {
            tracing::warn!(segment = self.segment, "session ordinals did not resolve");
            return Vec::new();
        }
        let segment = self.segment;
        names
            .into_iter()
            .zip(self.tops)
            .map(|(name, (_, top))| {
                let docs = top
                    .docs
                    .into_iter()
                    .map(|(s, d)| (s, DocAddress::new(segment, d)))
                    .collect();
                (name, docs)
            })
            .collect()
    }
}

impl Collector for GroupTop {
    type Fruit = Groups;
    type Child = GroupSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<GroupSegment> {
        self.check()?;
        let sessions = reader.fast_fields().str(self.field)?.ok_or_else(|| {
            tantivy::TantivyError::SchemaError(format!("{} is not a fast field", self.field))
        })?;
        Ok(GroupSegment {
            segment,
            sessions,
            per: self.per,
            index: HashMap::new(),
            tops: Vec::new(),
            last: None,
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    /// Scores the segment's matches one by one, looking at the clock every few thousand, so a
    /// search past its deadline stops instead of running on unobserved.
    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<<GroupSegment as SegmentCollector>::Fruit> {
        let mut child = self.for_segment(segment, reader)?;
        let mut scorer = weight.scorer(reader, 1.0)?;
        let alive = reader.alive_bitset();
        let mut doc = scorer.doc();
        let mut n: u32 = 0;
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                child.collect(doc, scorer.score());
            }
            n = n.wrapping_add(1);
            if n.is_multiple_of(CHECK_EVERY) {
                self.check()?;
            }
            doc = scorer.advance();
        }
        Ok(child.harvest())
    }

    fn merge_fruits(
        &self,
        segments: Vec<Vec<(String, Vec<(Score, DocAddress)>)>>,
    ) -> tantivy::Result<Groups> {
        let mut out: Groups = HashMap::new();
        for (session, docs) in segments.into_iter().flatten() {
            out.entry(session).or_default().extend(docs);
        }
        for docs in out.values_mut() {
            docs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            docs.truncate(self.per);
        }
        Ok(out)
    }
}

/// Sessions in order of their best document (ties by id, so pages are stable).
pub(crate) fn order(groups: &Groups) -> Vec<String> {
    let mut order: Vec<(&String, Score)> = groups
        .iter()
        .map(|(s, docs)| (s, docs.first().map_or(Score::MIN, |d| d.0)))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    order.into_iter().map(|(s, _)| s.clone()).collect()
}
