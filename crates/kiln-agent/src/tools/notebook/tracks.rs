//! Metric tracks: a branch's notebook names the batches on its lineage (`tracks`: name → batch
//! refs in append order); the points live in kiln-db. Appending stores a batch and names it;
//! reads page through the named batches by index or step; stats add up the batches' own.

use std::collections::{BTreeMap, HashMap};

use kiln_session::{Caller, Error, FieldStats, SessionManager, TrackBatch};
use kiln_types::ErrorKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::NotebookState;
use crate::tool::ToolError;

/// The most points one read returns, and the default.
pub const MAX_READ: u64 = 10_000;
const DEFAULT_READ: u64 = 1000;

/// A batch a branch sees: its number in the session's store and how many points it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRef {
    pub batch: i64,
    pub count: u64,
}

/// Which part of a track to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackRange {
    /// The first index (over the branch's points in order) to consider.
    pub offset: u64,
    /// At most this many points (default 1,000, at most 10,000).
    pub limit: Option<u64>,
    /// Only points whose `step` is within `[lo, hi]`.
    pub steps: Option<(f64, f64)>,
}

fn no_track(nb: &NotebookState, name: &str) -> ToolError {
    let known: Vec<&str> = nb.tracks.keys().map(String::as_str).collect();
    Error::new(
        ErrorKind::NotFound,
        "no_such_track",
        format!(
            "no track `{name}` on this branch (tracks: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ),
    )
    .into()
}

/// The batch refs of `name` on the branch.
pub fn refs<'a>(nb: &'a NotebookState, name: &str) -> Result<&'a [BatchRef], ToolError> {
    nb.tracks
        .get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| no_track(nb, name))
}

/// Stores points (JSON objects of numbers) as one batch of `name` and names it on the branch.
pub async fn append(
    mgr: &SessionManager,
    caller: &Caller,
    session: &str,
    nb: &mut NotebookState,
    name: &str,
    points: &[Value],
) -> Result<TrackBatch, ToolError> {
    kiln_session::check_track_name(name)?;
    let points = kiln_session::points_from_json(points)?;
    let batch = mgr
        .store_track_batch(caller, session, name, &points)
        .await?;
    nb.tracks
        .entry(name.to_owned())
        .or_default()
        .push(BatchRef {
            batch: batch.batch,
            count: batch.count,
        });
    Ok(batch)
}

/// A page of a track's points in the branch's order, each with its `index`.
pub async fn read(
    mgr: &SessionManager,
    caller: &Caller,
    session: &str,
    nb: &NotebookState,
    name: &str,
    range: TrackRange,
) -> Result<Value, ToolError> {
    let refs = refs(nb, name)?;
    let total: u64 = refs.iter().map(|r| r.count).sum();
    let limit = range.limit.unwrap_or(DEFAULT_READ).clamp(1, MAX_READ);
    if let Some((lo, hi)) = range.steps
        && (!lo.is_finite() || !hi.is_finite() || lo > hi)
    {
        return Err(super::bad(
            "`step_min` and `step_max` must be numbers, the first not above the second",
        ));
    }
    // The batches' step ranges let a step read skip whole batches.
    let ranges: HashMap<i64, (Option<f64>, Option<f64>)> = if range.steps.is_some() {
        let ids: Vec<i64> = refs.iter().map(|r| r.batch).collect();
        mgr.track_batches(caller, session, &ids)
            .await?
            .into_iter()
            .map(|b| (b.batch, (b.min_step, b.max_step)))
            .collect()
    } else {
        HashMap::new()
    };
    let chunk = kiln_db::TRACK_CHUNK as u64;
    let mut points: Vec<Value> = Vec::new();
    let mut next: Option<u64> = None;
    let mut first = 0u64;
    'batches: for r in refs {
        let end = first + r.count;
        let start = range.offset.max(first);
        if start >= end {
            first = end;
            continue;
        }
        if let Some((lo, hi)) = range.steps {
            match ranges.get(&r.batch) {
                Some((Some(bl), Some(bh))) if *bh >= lo && *bl <= hi => {}
                _ => {
                    first = end;
                    continue;
                }
            }
        }
        let from = (start - first) / chunk;
        // Without a step filter the page ends within `limit` points of `start`.
        let last = if range.steps.is_some() {
            (r.count - 1) / chunk
        } else {
            ((start - first + limit).min(r.count) - 1) / chunk
        };
        let pts = mgr
            .track_points(
                caller,
                session,
                r.batch,
                (from as i64, last as i64),
                range.steps,
            )
            .await?;
        for (i, p) in pts {
            let index = first + i;
            if index < start {
                continue;
            }
            if let Some((lo, hi)) = range.steps {
                match p.get("step") {
                    Some(s) if *s >= lo && *s <= hi => {}
                    _ => continue,
                }
            }
            if points.len() as u64 == limit {
                next = Some(index);
                break 'batches;
            }
            let mut o: Map<String, Value> = p.into_iter().map(|(k, v)| (k, json!(v))).collect();
            o.insert("index".into(), json!(index));
            points.push(Value::Object(o));
        }
        first = end;
    }
    Ok(json!({
        "track": name,
        "total": total,
        "offset": range.offset,
        "points": points,
        "next_offset": next,
    }))
}

/// Count, min, max, mean and last of every field of a track on the branch, from the stored
/// batches' own stats (no point is read).
pub async fn stats(
    mgr: &SessionManager,
    caller: &Caller,
    session: &str,
    nb: &NotebookState,
    name: &str,
) -> Result<Value, ToolError> {
    let refs = refs(nb, name)?;
    let ids: Vec<i64> = refs.iter().map(|r| r.batch).collect();
    let stored: HashMap<i64, TrackBatch> = mgr
        .track_batches(caller, session, &ids)
        .await?
        .into_iter()
        .map(|b| (b.batch, b))
        .collect();
    let mut fields: BTreeMap<String, FieldStats> = BTreeMap::new();
    let mut count = 0u64;
    for r in refs {
        let Some(b) = stored.get(&r.batch) else {
            return Err(ToolError::Failed(format!(
                "batch {} of track `{name}` is missing from the store",
                r.batch
            )));
        };
        count += b.count;
        for (k, s) in &b.stats {
            match fields.get_mut(k) {
                Some(acc) => acc.then(s),
                None => {
                    fields.insert(k.clone(), *s);
                }
            }
        }
    }
    let fields: Map<String, Value> = fields
        .into_iter()
        .map(|(k, s)| {
            let mean = if s.count > 0 {
                s.sum / s.count as f64
            } else {
                0.0
            };
            (
                k,
                json!({"count": s.count, "min": s.min, "max": s.max, "mean": mean, "last": s.last}),
            )
        })
        .collect();
    Ok(json!({"track": name, "points": count, "batches": refs.len(), "fields": fields}))
}

/// Merges two branches' refs of one track: ours in order, then theirs not in ours.
pub fn union(ours: &mut Vec<BatchRef>, theirs: &[BatchRef]) {
    for r in theirs {
        if !ours.contains(r) {
            ours.push(*r);
        }
    }
}
